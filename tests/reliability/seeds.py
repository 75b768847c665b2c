"""Valid sample files for the fuzzers to mutate: images in every format Pillow writes here, IDX
files, a run folder, a checkpoint, an npz. Tiny and seeded."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def image_samples() -> dict[str, bytes]:
    """name -> bytes of a small valid image."""
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 256, (9, 7), dtype=np.uint8), "L")
    rgb = Image.fromarray(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8), "RGB")
    out: dict[str, bytes] = {}

    def put(name: str, im: Image.Image, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        out[name] = buf.getvalue()

    put("grey.png", grey, "PNG")
    put("rgb.png", rgb, "PNG")
    put("rgba.png", rgb.convert("RGBA"), "PNG")
    put("palette.png", rgb.convert("P"), "PNG")
    put("interlaced.png", rgb, "PNG", interlace=1)
    put("grey16.png", Image.fromarray(np.arange(63, dtype=np.uint16).reshape(9, 7) * 1000), "PNG")
    put("base.jpg", rgb, "JPEG", quality=80)
    put("progressive.jpg", rgb, "JPEG", quality=80, progressive=True)
    put("grey.jpg", grey, "JPEG")
    put("anim.gif", rgb.convert("P"), "GIF", save_all=True,
        append_images=[grey.convert("P").resize((10, 6))])
    put("rgb.bmp", rgb, "BMP")
    put("grey.bmp", grey, "BMP")
    put("raw.tif", rgb, "TIFF")
    put("lzw.tif", grey, "TIFF", compression="tiff_lzw")
    put("deflate.tif", rgb, "TIFF", compression="tiff_adobe_deflate")
    put("float.tif", Image.fromarray(rng.random((5, 4)).astype(np.float32), "F"), "TIFF")
    put("lossy.webp", rgb, "WEBP", quality=50)
    put("lossless.webp", rgb, "WEBP", lossless=True)
    put("grey.pgm", grey, "PPM")
    put("rgb.ppm", rgb, "PPM")
    return out


def png_with_header(width: int, height: int, depth: int, colour: int, interlace: int,
                    payload: bytes) -> bytes:
    """A PNG whose IHDR says anything (CRC correct, so only the values are wrong)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(payload))
            + chunk(b"IEND", b""))


def set_dims(name: str, data: bytes, width: int, height: int) -> bytes:
    """Overwrite the declared size in a sample's header (formats with a fixed-offset size)."""
    b = bytearray(data)
    if name.endswith(".png"):
        b[16:24] = struct.pack(">II", width & 0xFFFFFFFF, height & 0xFFFFFFFF)
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    elif name.endswith(".gif"):
        b[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
        i = b.find(b"\x2c")  # first image descriptor (good enough for the samples)
        if i > 0:
            b[i + 5 : i + 9] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    elif name.endswith(".bmp"):
        b[18:26] = struct.pack("<ii", width & 0x7FFFFFFF, height & 0x7FFFFFFF)
    elif name.endswith(".jpg"):
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            i = b.find(marker)
            if i > 0:
                b[i + 5 : i + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    elif name.endswith((".pgm", ".ppm")):
        head = data.split(b"\n", 3)
        return b"\n".join([head[0], f"{width} {height}".encode(), *head[2:]])
    return bytes(b)


def write_run(folder: Path, dataset: str = "digits") -> Path:
    """A small real run folder (dense model on 12x12 grey) with weights and a checkpoint."""
    import torch

    from aekit.config import ModelConfig, TrainConfig
    from aekit.core.io import save_weights, write_config, write_metrics
    from aekit.models import build_model
    from aekit.train.checkpoint import save_checkpoint

    cfg = ModelConfig(name="dense", height=12, width=12, latent_dim=4, widths=(16,))
    torch.manual_seed(0)
    model = build_model(cfg)
    write_config(folder, cfg, TrainConfig(dataset=dataset, epochs=2, batch_size=32))
    save_weights(folder, model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 1, 12, 12))["x_hat"].mean().backward()
    opt.step()
    best = {k: v.clone() for k, v in model.state_dict().items()}
    meta = {"epoch": 1, "step": 3, "best_val": 0.5, "bad_epochs": 0, "train_seconds": 0.1,
            "best_epoch": 1, "history": [{"epoch": 1, "train_loss": 0.6, "val_loss": 0.5}]}
    save_checkpoint(folder, model, opt, best, meta)
    write_metrics(folder, {"model": "dense", "test": {"mse": 0.1}, "history": []})
    return folder


def cli_commands() -> set[str]:
    """The subcommands of this build (feature modules may be absent)."""
    from aekit.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def untrained_run(folder: Path, name: str, size: int = 12, corrupt: str = "", **cfg) -> Path:
    """An untrained but complete run folder (the weights' values do not matter here)."""
    import torch

    from aekit.config import ModelConfig, TrainConfig
    from aekit.core.io import save_weights, write_config
    from aekit.models import build_model

    mcfg = ModelConfig(name=name, height=size, width=size, latent_dim=8, **cfg)
    torch.manual_seed(0)
    model = build_model(mcfg)
    if hasattr(model, "finalize"):
        model.finalize()
    write_config(folder, mcfg, TrainConfig(dataset="digits", corrupt=corrupt))
    save_weights(folder, model.eval())
    return folder

"""Python API of the codec: `compress(model, x) -> bytes`, `decompress(data, model) -> x`.

`model` is a codec: an `aekit.Autoencoder(model="codec")` fitted on images (its pixel units
apply), a run folder trained with `--model codec`, or the codec network itself. Images are numpy
or torch, (N, H, W), (N, C, H, W), (N, H, W, C) or one image (C, H, W) of the model's shape;
uint8/integers 0..255 or floats 0..1 (0..`pixel_max_` for an Autoencoder).

The bytes carry no array library, so `decompress` returns numpy unless `like` asks otherwise:
`like="torch"` for a tensor, or `like=x` (e.g. the images that were compressed) for x's library
and layout. Without `like` the result is float32 (N, C, H, W).

The model does the tensor work (images <-> integer symbols), `entropy` turns symbols into
payloads and `io` packs payloads into the `.aez` container.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.codec.io import FINGERPRINT_BYTES, AezFile, pack, shape_runs, unpack
from aekit.codec.payload import StepSpec, decode_payloads, encode_images, file_version
from aekit.codec.steps import MAX_STEP
from aekit.data.units import as_images as read_images
from aekit.data.units import layout_of, like_input, read_array, to_layout, to_unit
from aekit.errors import (
    AekitTypeError,
    ConfigError,
    DataError,
    FormatError,
    Param,
    check_params,
)
from aekit.models.base import AutoencoderModule

DEFAULT_BATCH = 1024
_fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(model: torch.nn.Module) -> bytes:
    """First 4 bytes of SHA-256 over every tensor of the state dict (name, dtype, shape, data),
    frozen entropy tables included: a file decodes only with the exact weights that made it.
    Cached per model until a tensor changes (PyTorch bumps a tensor's version on every
    in-place write: optimizer steps, load_state_dict, finalize)."""
    state = model.state_dict(keep_vars=True)  # the tensors themselves: stable ids
    key = tuple((name, id(t), t._version) for name, t in state.items())
    cached = _fingerprints.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        if t.numel() == 0:  # an empty tensor holds no weights (e.g. a codec without deblocking)
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        a = (t if t.dtype != torch.bfloat16 else t.float()).numpy()
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())  # little-endian
    fp = h.digest()[:FINGERPRINT_BYTES]
    _fingerprints[model] = (key, fp)
    return fp


def _check_codec(model: torch.nn.Module) -> None:
    if not (isinstance(model, AutoencoderModule) and model.entropy_coded):
        name = model.cfg.name if isinstance(model, AutoencoderModule) else type(model).__name__
        raise ConfigError(f"model: {name!r} is not a codec; compression needs one trained with "
                          "--model codec (or aekit.Autoencoder(model='codec'))")
    if not model.frozen:
        raise ConfigError("model: the codec has no frozen entropy tables; call model.finalize() "
                          "after training (aekit's training loop does this)")


def resolve(model: Any) -> tuple[torch.nn.Module, float, float]:
    """(codec network, value of white for integer images, for float images) of `model`: a
    fitted aekit.Autoencoder, a run folder or the network itself."""
    if isinstance(model, str | Path):
        from aekit.core.io import load_model

        model, _ = load_model(model)
    if isinstance(model, torch.nn.Module):
        _check_codec(model)
        return model, 255.0, 1.0
    if hasattr(model, "get_params") and hasattr(model, "transform"):  # an aekit.Autoencoder
        from aekit.errors import check_fitted

        check_fitted(model, "call fit(X) or aekit.load(dir)")
        _check_codec(model.module_)
        pixel_max = model.get_params().get("pixel_max")
        return model.module_, 255.0 if pixel_max is None else float(pixel_max), \
            float(model.pixel_max_)
    raise AekitTypeError(f"model: expected a codec (a fitted aekit.Autoencoder(model='codec'), "
                         f"a run folder or the codec network), got {type(model).__name__}")


def as_images(x: Any, model: torch.nn.Module, int_white: float = 255.0,
              float_white: float = 1.0) -> list[torch.Tensor]:
    """Images of any size with the model's channel count -> runs of equal-shaped images, each
    (n, C, H, W) (uint8, or float32 in [0, 1]), in input order. x: numpy or torch (N, H, W)
    grey, (N, C, H, W), (N, H, W, C), one image (C, H, W) or (H, W, C) of a colour model, or a
    list of such single images (of any sizes); also rows (N, C*H*W) of training-size images or
    one grey image (H, W). Anything else is a DataError or AekitTypeError naming x."""
    c = model.cfg.in_channels
    if isinstance(x, list | tuple):
        if not x:
            raise DataError("x: an empty list; expected images")
        parts = [_one_image(read_array(a, f"x[{i}]"), c, f"x[{i}]") for i, a in enumerate(x)]
        parts = [_units(t, f"x[{i}]", int_white, float_white) for i, t in enumerate(parts)]
        runs: list[torch.Tensor] = []
        for i, t in enumerate(parts):
            if i and tuple(t.shape[1:]) == tuple(parts[i - 1].shape[1:]) \
                    and t.dtype == parts[i - 1].dtype:
                runs[-1] = torch.cat([runs[-1], t])
            else:
                runs.append(t)
        return runs
    t = read_array(x, "x")
    if t.ndim == 2 and t.shape[1] == math.prod(model.cfg.shape):  # rows of training-size images
        t = t.reshape(len(t), *model.cfg.shape)
    elif t.ndim == 2 and c == 1:  # one grey image (H, W)
        t = t[None, None]
    elif t.ndim == 3 and c > 1:
        t = _one_image(t, c, "x")
    return [_units(t, "x", int_white, float_white)]


def _one_image(t: torch.Tensor, c: int, name: str) -> torch.Tensor:
    """One image (C, H, W), (H, W, C) or grey (H, W) -> (1, C, H, W) (layout by channels)."""
    if t.ndim == 2 and c == 1:
        return t[None, None]
    if t.ndim == 3 and t.shape[0] == c:
        return t[None]
    if t.ndim == 3 and t.shape[-1] == c:
        return t.permute(2, 0, 1)[None]
    if t.ndim == 4 and len(t) == 1:
        return _one_image(t[0], c, name)
    raise DataError(f"{name}: expected one image with {c} channel(s) ((C, H, W) or (H, W, C)), "
                    f"got shape {tuple(t.shape)}")


def _units(t: torch.Tensor, name: str, int_white: float, float_white: float) -> torch.Tensor:
    """(N, C, H, W) / (N, H, W, C) / (N, H, W) images of their own size -> (N, C, H, W) in
    aekit's units, checked."""
    if t.ndim == 4 and t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.ndim not in (3, 4):
        raise DataError(f"{name}: expected images (N, H, W), (N, C, H, W), (N, H, W, C) or "
                        f"one image, got shape {tuple(t.shape)}")
    shape = tuple(t.shape[1:]) if t.ndim == 4 else (1, *t.shape[1:])
    if shape[0] > 4:
        raise DataError(f"{name}: images with {shape[0]} channels; a codec takes 1 or 3")
    t, _ = read_images(t, name, shape, owner="this codec", int_white=int_white,
                       float_white=float_white)
    return to_unit(t) if t.dtype != torch.uint8 else t


_BATCH = {"batch_size": Param("int", 1, 1 << 20)}


def _check_model_channels(model, runs: list[torch.Tensor]) -> None:
    c = model.cfg.in_channels
    for t in runs:
        if t.shape[1] != c:
            raise DataError(f"x: images have {t.shape[1]} channel(s) but this codec codes "
                            f"{c}-channel images")


def encode_payloads(model, x, batch_size: int = DEFAULT_BATCH, step: StepSpec = 0
                    ) -> list[bytes]:
    """Images -> one entropy-coded payload per image (no container)."""
    net, runs = _inputs(model, x, batch_size)
    return [p for xb in runs for p in encode_images(net, xb, batch_size, step)[0]]


def _inputs(model, x, batch_size: int) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    check_params("compress", {"batch_size": batch_size}, _BATCH)
    net, int_white, float_white = resolve(model)
    runs = as_images(x, net, int_white, float_white)
    _check_model_channels(net, runs)
    return net, runs



def rate_control(quality: int | None = None, target_psnr: float | None = None,
                 target_bpp: float | None = None) -> StepSpec:
    """The step spec of at most one of: `quality` (a step from -16 to 16: 0 is the run's own
    rate point, each step ~1.2 dB more (or less) PSNR at a higher (or lower) rate),
    `target_psnr` (dB, per image) or `target_bpp` (bits per pixel, per image)."""
    given = [n for n, v in (("quality", quality), ("target_psnr", target_psnr),
                            ("target_bpp", target_bpp)) if v is not None]
    if len(given) > 1:
        raise ConfigError(f"compress: give at most one of quality, target_psnr, target_bpp "
                          f"(got {', '.join(given)})")
    check_params("compress", {"quality": quality, "target_psnr": target_psnr,
                              "target_bpp": target_bpp}, _RATE)
    if target_psnr is not None:
        return ("psnr", float(target_psnr))
    if target_bpp is not None:
        return ("bpp", float(target_bpp))
    return int(quality or 0)


_RATE = {"quality": Param("int", -MAX_STEP, MAX_STEP, none=True),
         "target_psnr": Param("float", 1.0, 100.0, none=True),
         "target_bpp": Param("float", 0.0, 64.0, none=True, low_open=True)}


def compress(model, x, batch_size: int = DEFAULT_BATCH, quality: int | None = None,
             target_psnr: float | None = None, target_bpp: float | None = None) -> bytes:
    """Images of any size -> one `.aez` container holding all of them (see `as_images` for
    the accepted forms). Rate control, at most one of: `quality` (-16..16, 0 = the run's own
    point), `target_psnr` (dB) or `target_bpp` (bits per pixel), per image."""
    step = rate_control(quality, target_psnr, target_bpp)
    net, runs = _inputs(model, x, batch_size)
    payloads, shapes = [], []
    for xb in runs:
        payloads += encode_images(net, xb, batch_size, step)[0]
        shapes += [tuple(xb.shape[1:])] * len(xb)
    return pack(container(net, shapes, payloads))


def container(model, shapes, payloads) -> AezFile:
    """The .aez file of `payloads` (images of `shapes`) made by `model`: its fingerprint,
    and version 4 when it has an intra predictor (else 3)."""
    return AezFile(fingerprint(model), tuple(shapes), tuple(payloads), file_version(model))


def compress_each(model, x, batch_size: int = DEFAULT_BATCH, quality: int | None = None,
                  target_psnr: float | None = None, target_bpp: float | None = None
                  ) -> list[bytes]:
    """Images -> one complete single-image `.aez` file per image."""
    step = rate_control(quality, target_psnr, target_bpp)
    net, runs = _inputs(model, x, batch_size)
    out = []
    for xb in runs:
        shape = tuple(xb.shape[1:])
        payloads = encode_images(net, xb, batch_size, step)[0]
        out += [pack(container(net, (shape,), (p,))) for p in payloads]
    return out


def check_file_matches(f: AezFile, model) -> None:
    fp = fingerprint(model)
    if f.fingerprint != fp:
        raise FormatError(f"made by a different model (file fingerprint {f.fingerprint.hex()}, "
                          f"this model {fp.hex()}); decompress with the run that compressed it")
    c = model.cfg.in_channels
    for shape in set(f.shapes):
        if shape[0] != c:
            raise FormatError(f"holds {shape[0]}-channel images but the model codes {c}-channel "
                              "images")
    if (f.version >= 4) != bool(model.intra.numel()):
        raise FormatError(f"format version {f.version} does not match the model (version 4 is "
                          "written by codecs with an intra predictor, and only by them); the "
                          "file is damaged")
    if f.version == 2 and tuple(f.shapes[0]) != tuple(model.cfg.shape):
        raise FormatError(f"a version-2 file holds images of shape {f.shapes[0]} but the model "
                          f"makes {tuple(model.cfg.shape)}")
    values = sum(math.prod(s) for s in f.shapes)
    if values > MAX_DECODE_VALUES:
        raise FormatError(f"declares {values:,} pixel values in all, more than one call decodes "
                          f"({MAX_DECODE_VALUES:,}); split the images over several files")


# At most this many decoded values (C*H*W summed over a file's images) per decompress call:
# 2**27 (a 44-megapixel colour photo) take ~1.5 GiB while decoding (symbols, float64 blocks,
# float32 images).
MAX_DECODE_VALUES = 1 << 27


def read_data(data: Any) -> bytes:
    """`.aez` bytes as given (bytes, bytearray, memoryview) or read from a file path."""
    if isinstance(data, str | Path):
        try:
            return Path(data).read_bytes()
        except OSError as e:
            raise DataError(f"data: cannot read {data} ({e.strerror or e})") from None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise AekitTypeError(f"data: expected the bytes of an .aez file (or its path), got "
                         f"{type(data).__name__}")


LIKES = ("numpy", "torch")


def decompress(data: Any, model, batch_size: int = DEFAULT_BATCH, like: Any = None) -> Any:
    """`.aez` bytes (or a path) -> the images: exactly the model's quantized reconstruction of
    what was compressed, float32 in [0, 1] (0..`pixel_max_` for an Autoencoder), each at the
    size it was compressed at.

    When all images share one size: like None or "numpy" gives numpy (N, C, H, W), "torch" a
    tensor (N, C, H, W), and an array or tensor of images (e.g. the compressed ones) its
    library and layout. Images of different sizes come back as a list with one (C, H, W)
    array per image (a tensor with like="torch").
    """
    check_params("decompress", {"batch_size": batch_size}, _BATCH)
    if isinstance(like, str) and like not in LIKES:
        raise ConfigError(f"decompress: like={like!r} is not allowed; expected 'numpy', "
                          "'torch', an array or a tensor")
    data = read_data(data)
    net, _, float_white = resolve(model)
    f = unpack(data)
    check_file_matches(f, net)
    images = decode_file(net, f, batch_size)
    if float_white != 1.0:
        images = [x * float_white for x in images]
    if len(set(f.shapes)) > 1:
        if isinstance(like, str) and like == "torch":
            return [x[0] for x in images]
        return [x[0].numpy() for x in images]
    x = torch.cat(images)
    layout = "nchw" if like is None or isinstance(like, str) else \
        layout_of(like, tuple(x.shape[1:]), "like", "this codec")
    x = to_layout(x, layout)
    if isinstance(like, str) and like == "torch":
        return x
    return like_input(x, np.empty(0, np.float32) if like is None or isinstance(like, str)
                      else like)


def decode_file(model, f: AezFile, batch_size: int = DEFAULT_BATCH) -> list[torch.Tensor]:
    """A parsed file -> its images, one (1, C, H, W) tensor each."""
    out: list[torch.Tensor] = []
    i = 0
    for length, shape in shape_runs(f.shapes):
        for start in range(0, length, batch_size):
            chunk = f.payloads[i + start : i + min(start + batch_size, length)]
            out += list(decode_payloads(model, chunk, shape, f.version).split(1))
        i += length
    return out


def info(data: Any) -> dict:
    """What `aekit codec-info` shows: the parsed header and where the bytes go. `data`: the
    bytes of an `.aez` file or its path."""
    data = read_data(data)
    f = unpack(data)
    payload = sum(len(p) for p in f.payloads)
    shapes = [list(s) for s in dict.fromkeys(f.shapes)]
    return {"version": f.version, "fingerprint": f.fingerprint.hex(), "images": f.count,
            "shape": shapes[0] if len(shapes) == 1 else None, "shapes": shapes,
            "pixels": f.pixels, "bytes": len(data), "payload_bytes": payload,
            "header_bytes": len(data) - payload,
            "bits_per_pixel": len(data) * 8.0 / f.pixels,
            "payload_bits_per_pixel": payload * 8.0 / f.pixels}

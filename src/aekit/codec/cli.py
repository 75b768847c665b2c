"""CLI subcommands of the codec: compress, decompress, codec-info.

`compress` over many files compresses every good image at its own size and lists the bad ones
(unreadable, or not the codec's channel count, unless --resize converts them) on stderr, exit 1.
Every other bad input (a corrupt or foreign `.aez`, a run that is not a codec, no good image at
all) raises an AekitError before anything is written; outputs are written atomically, so a
failure never leaves a partial file under the final name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from aekit.errors import ConfigError, DataError, FormatError, RunError

if TYPE_CHECKING:  # annotations only: the command line must start without importing torch
    import torch

DEFAULT_RUNS_DIR = "runs"
CHUNK = 1024  # images read and encoded at a time: bounded memory for any folder


def add_parsers(sub) -> None:
    from aekit.args import add_resize, add_threads
    p = sub.add_parser("compress", help="compress images into an .aez file with a codec run")
    p.add_argument("run", help="run folder of a model trained with --model codec")
    p.add_argument("images", nargs="*", help="image files or folders (or use --dataset)")
    p.add_argument("--dataset", default=None, help="compress a dataset's split instead of files")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    p.add_argument("-o", "--out", required=True,
                   help="output .aez file (with --each: a folder of one .aez per image)")
    p.add_argument("--each", action="store_true", help="one single-image .aez file per image")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=int, default=None, metavar="Q",
                      help="quantizer step from -16 (smallest files) to 16 (best quality); 0, "
                           "the default, is the run's own rate point; each step is ~1.2 dB")
    rate.add_argument("--target-psnr", type=float, default=None, metavar="DB",
                      help="per image, the smallest file whose PSNR reaches DB")
    rate.add_argument("--target-bpp", type=float, default=None, metavar="BPP",
                      help="per image, the best quality within BPP bits per pixel (payload)")
    add_resize(p)
    add_threads(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode an .aez file into PNG images")
    p.add_argument("file", help="an .aez file")
    p.add_argument("-o", "--out", required=True, help="output folder for PNGs")
    p.add_argument("--run", default=None,
                   help=f"codec run that made the file (default: search {DEFAULT_RUNS_DIR}/ for "
                        "the run whose fingerprint matches)")
    add_threads(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("codec-info", help="show an .aez file's header and size breakdown")
    p.add_argument("file", help="an .aez file")
    p.add_argument("--run", default=None, help="also check that this run can decode it")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_codec_info)


def load_codec(run_dir: str):
    from aekit.core.io import load_model

    model, _ = load_model(run_dir)
    if not model.entropy_coded:
        raise RunError(f"{run_dir}: holds a {model.cfg.name!r} model; compress/decompress need a "
                       "run trained with --model codec")
    if not model.frozen:
        raise RunError(f"{run_dir}: the codec's entropy tables are not frozen (unfinished "
                       "training?); finish it with `aekit train --resume`")
    return model


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected an .aez file") from None


def _dataset_images(args: argparse.Namespace, model) -> tuple[torch.Tensor, list[str]]:
    """uint8 (N, C, H, W) images of a dataset split and a name for each."""
    from aekit.data import load_dataset

    ds = load_dataset(args.dataset)
    x = ds.test_x if args.split == "test" else ds.train_x
    if args.limit:
        x = x[: args.limit]
    if x.shape[1] != model.cfg.in_channels:
        raise DataError(f"dataset {args.dataset} has {x.shape[1]}-channel images but the "
                        f"codec codes {model.cfg.in_channels}-channel images")
    prefix = args.dataset.replace(":", "_").replace("/", "_")
    return x, [f"{prefix}-{i:05d}" for i in range(len(x))]


def _inputs(args: argparse.Namespace, model):
    """(chunks of (uint8 (B, C, H, W) of one size, names), the ModelInputs of image files or
    None): a dataset split, or image files at their own size under the one rule for files of
    another channel count (skipped and listed unless --resize converts them: a codec never
    converts silently)."""
    if args.limit < 0:
        raise ConfigError(f"--limit {args.limit}: must be >= 0")
    if args.dataset and args.images:
        raise ConfigError("give image files or --dataset, not both")
    if args.dataset:
        x, names = _dataset_images(args, model)
        return [(x[i : i + CHUNK], names[i : i + CHUNK]) for i in range(0, len(x), CHUNK)], None
    if not args.images:
        raise ConfigError("compress needs image files/folders or --dataset NAME")
    from aekit.data.files import ModelInputs, collect_paths

    paths = collect_paths(args.images)
    inputs = ModelInputs(paths[: args.limit] if args.limit else paths, tuple(model.cfg.shape),
                         args.resize, model="the codec", keeps_size=True)
    inputs.require_some()
    return _file_chunks(inputs), inputs


def _file_chunks(inputs):
    """Consecutive files of one size, up to CHUNK images or ~16 M values at a time."""
    import torch

    run, names = [], []
    for path in inputs.files:
        x = inputs.load_own_size(path)
        if x is None:
            continue
        x = (x * 255).round_().to(torch.uint8)  # exact: the file's own 8-bit values
        if run and (x.shape != run[0].shape or len(run) >= CHUNK
                    or len(run) * x.numel() >= 1 << 24):
            yield torch.stack(run), names
            run, names = [], []
        run.append(x)
        names.append(Path(path).stem)
    if run:
        yield torch.stack(run), names


def _unique(name: str, used: set[str]) -> str:
    stem, k = name, 1
    while stem in used:
        stem, k = f"{name}-{k}", k + 1
    used.add(stem)
    return stem


def cmd_compress(args: argparse.Namespace) -> int:
    """Compress every good image; unreadable or wrongly sized files are listed on stderr and
    left out (exit 1). The container holds the good images in input order (folders sorted by
    path); with --each, one file per good image. No good image at all: an error, nothing
    written."""
    from aekit.codec.api import container, encode_payloads, rate_control
    from aekit.codec.io import pack
    from aekit.io import atomic_write_bytes

    step = rate_control(args.quality, args.target_psnr, args.target_bpp)
    model = load_codec(args.run)
    out = Path(args.out)
    if args.each and out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder (--each writes a folder)")
    payloads: list[bytes] = []
    shapes: list[tuple[int, int, int]] = []
    used: set[str] = set()
    done = total = pixels = 0
    chunks, inputs = _inputs(args, model)
    for x, names in chunks:
        if not names:
            continue
        shape = tuple(x.shape[1:])
        chunk = encode_payloads(model, x, step=step)
        done += len(chunk)
        pixels += len(chunk) * shape[1] * shape[2]
        if not args.each:
            payloads.extend(chunk)
            shapes += [shape] * len(chunk)
            continue
        for name, payload in zip(names, chunk, strict=True):
            data = pack(container(model, (shape,), (payload,)))
            atomic_write_bytes(out / f"{_unique(name, used)}.aez", data)
            total += len(data)
    if not done:
        if inputs is None:
            raise DataError(f"dataset {args.dataset}: no images to compress")
        inputs.finish(0)  # raises: nothing could be compressed, nothing written
    if not args.each:
        data = pack(container(model, shapes, payloads))
        atomic_write_bytes(out, data)
        total = len(data)
    bpp = total * 8 / pixels
    where = f"{done} file(s) written to {out}" if args.each else f"{done} image(s) -> {out}"
    code = inputs.finish(done) if inputs is not None else 0
    print(f"{where}: {total} bytes, {bpp:.3f} bits per pixel")
    return code


def find_run(fp_hex: str, runs_dir: str = DEFAULT_RUNS_DIR) -> str:
    """The codec run under `runs_dir` whose fingerprint is `fp_hex`."""
    from aekit.codec.api import fingerprint
    from aekit.io import read_json

    root = Path(runs_dir)
    for cfg_path in sorted(root.glob("*/config.json")) if root.is_dir() else []:
        try:
            if read_json(cfg_path).get("model", {}).get("name") != "codec":
                continue
            model = load_codec(str(cfg_path.parent))
        except (RunError, AttributeError, ConfigError):
            continue
        if fingerprint(model).hex() == fp_hex:
            return str(cfg_path.parent)
    raise RunError(f"no codec run with fingerprint {fp_hex} under {root}/; pass --run RUN "
                   "(the run that compressed the file)")


def cmd_decompress(args: argparse.Namespace) -> int:
    from aekit.codec.api import decompress
    from aekit.codec.io import unpack
    from aekit.data.images import save_png

    data = _read_file(args.file)
    try:
        f = unpack(data)
        run = args.run or find_run(f.fingerprint.hex())
        model = load_codec(run)
        x = decompress(data, model, like="torch")
    except FormatError as e:
        raise FormatError(f"{args.file}: {e}") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.file).stem
    if isinstance(x, list) and len(x) == 1:
        x = x[0][None]
    if len(x) == 1:
        names = [f"{stem}.png"]
    else:
        digits = len(str(len(x) - 1))
        names = [f"{stem}-{i:0{digits}d}.png" for i in range(len(x))]
    for name, img in zip(names, x, strict=True):
        save_png(out / name, img)
    print(f"{len(x)} image(s) written to {out}")
    return 0


def cmd_codec_info(args: argparse.Namespace) -> int:
    from aekit.codec.api import check_file_matches, info
    from aekit.codec.io import unpack

    data = _read_file(args.file)
    try:
        meta = info(data)
        if args.run:
            check_file_matches(unpack(data), load_codec(args.run))
            meta["decodable_with"] = args.run
    except FormatError as e:
        raise FormatError(f"{args.file}: {e}") from None
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    sizes = ", ".join("x".join(str(v) for v in s) for s in meta["shapes"][:4])
    if len(meta["shapes"]) > 4:
        sizes += f", ... ({len(meta['shapes'])} sizes)"
    print(f"file              {args.file}")
    print(f"format version    {meta['version']}")
    print(f"model fingerprint {meta['fingerprint']}")
    print(f"images            {meta['images']} of {sizes} (C x H x W)")
    print(f"size              {meta['bytes']} bytes ({meta['header_bytes']} header+CRC, "
          f"{meta['payload_bytes']} payload)")
    print(f"bits per pixel    {meta['bits_per_pixel']:.4f} "
          f"(payload only {meta['payload_bits_per_pixel']:.4f})")
    if args.run:
        print(f"decodable with    {args.run}")
    return 0

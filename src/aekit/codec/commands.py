"""CLI subcommands of the codec: compress, decompress, codec-info.

Every bad input (unreadable or wrongly sized image, corrupt or foreign `.aez`, a run that is not a
codec) raises an AekitError before anything is written; outputs are written atomically, so a
failure never leaves a partial file under the final name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from aekit.errors import ConfigError, DataError, FormatError, RunError

DEFAULT_RUNS_DIR = "runs"


def add_parsers(sub) -> None:
    p = sub.add_parser("compress", help="compress images into an .aez file with a codec run")
    p.add_argument("run", help="run folder of a model trained with --model codec")
    p.add_argument("images", nargs="*", help="image files or folders (or use --dataset)")
    p.add_argument("--dataset", default=None, help="compress a dataset's split instead of files")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    p.add_argument("-o", "--out", required=True,
                   help="output .aez file (with --each: a folder of one .aez per image)")
    p.add_argument("--each", action="store_true", help="one single-image .aez file per image")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode an .aez file into PNG images")
    p.add_argument("file", help="an .aez file")
    p.add_argument("-o", "--out", required=True, help="output folder for PNGs")
    p.add_argument("--run", default=None,
                   help=f"codec run that made the file (default: search {DEFAULT_RUNS_DIR}/ for "
                        "the run whose fingerprint matches)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("codec-info", help="show an .aez file's header and size breakdown")
    p.add_argument("file", help="an .aez file")
    p.add_argument("--run", default=None, help="also check that this run can decode it")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_codec_info)


def load_codec(run_dir: str):
    from aekit.runs import load_model

    model, _ = load_model(run_dir)
    if not (hasattr(model, "symbols") and hasattr(model, "coding_plan")):
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


def _load_inputs(args: argparse.Namespace, model) -> tuple[torch.Tensor, list[str]]:
    """uint8 (N, C, H, W) images and a name for each; any unreadable or wrongly sized image
    is a DataError naming it (a codec never silently resizes or skips)."""
    c, h, w = model.cfg.shape
    if args.limit < 0:
        raise ConfigError(f"--limit {args.limit}: must be >= 0")
    if args.dataset and args.images:
        raise ConfigError("give image files or --dataset, not both")
    if args.dataset:
        from aekit.data import load_dataset

        ds = load_dataset(args.dataset)
        x = ds.test_x if args.split == "test" else ds.train_x
        if args.limit:
            x = x[: args.limit]
        if tuple(x.shape[1:]) != (c, h, w):
            raise DataError(f"dataset {args.dataset} has images {tuple(x.shape[1:])} but the "
                            f"codec expects {(c, h, w)}")
        names = [f"{args.dataset.replace(':', '_').replace('/', '_')}-{i:05d}"
                 for i in range(len(x))]
        return x, names
    if not args.images:
        raise ConfigError("compress needs image files/folders or --dataset NAME")
    import numpy as np

    from aekit.batch import collect_paths
    from aekit.data.images import load_uint8

    paths = collect_paths(args.images)
    if args.limit:
        paths = paths[: args.limit]
    mode = "L" if c == 1 else "RGB"
    if c not in (1, 3):
        raise ConfigError(f"image files have 1 or 3 channels; this codec takes {c}")
    arrays = []
    for p in paths:
        a = load_uint8(p, mode)
        if a.shape[:2] != (h, w):
            raise DataError(f"{p}: image is {a.shape[0]}x{a.shape[1]} but the codec expects "
                            f"{h}x{w}; resize it first (a codec never resizes silently)")
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))  # (C, H, W)
    return torch.from_numpy(np.stack(arrays)), [p.stem for p in paths]


def cmd_compress(args: argparse.Namespace) -> int:
    from aekit.codec.api import compress, compress_each
    from aekit.io import atomic_write_bytes

    model = load_codec(args.run)
    x, names = _load_inputs(args, model)
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    if args.each:
        files = compress_each(model, x)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out}: exists and is not a folder (--each writes a folder)")
        used: set[str] = set()
        for name, data in zip(names, files, strict=True):
            stem, k = name, 1
            while stem in used:
                stem, k = f"{name}-{k}", k + 1
            used.add(stem)
            atomic_write_bytes(out / f"{stem}.aez", data)
        total = sum(len(f) for f in files)
        print(f"{len(files)} file(s) written to {out}: {total} bytes, "
              f"{total * 8 / pixels:.3f} bits per pixel")
        return 0
    data = compress(model, x)
    atomic_write_bytes(args.out, data)
    print(f"{len(x)} image(s) -> {args.out}: {len(data)} bytes, "
          f"{len(data) * 8 / pixels:.3f} bits per pixel")
    return 0


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
    from aekit.codec.bitstream import unpack
    from aekit.data.images import save_png

    data = _read_file(args.file)
    try:
        f = unpack(data)
        run = args.run or find_run(f.fingerprint.hex())
        model = load_codec(run)
        x = decompress(data, model)
    except FormatError as e:
        raise FormatError(f"{args.file}: {e}") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.file).stem
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
    from aekit.codec.bitstream import unpack

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
    c, h, w = meta["shape"]
    print(f"file              {args.file}")
    print(f"format version    {meta['version']}")
    print(f"model fingerprint {meta['fingerprint']}")
    print(f"images            {meta['images']} x {c}x{h}x{w}")
    print(f"size              {meta['bytes']} bytes ({meta['header_bytes']} header+CRC, "
          f"{meta['payload_bytes']} payload)")
    print(f"bits per pixel    {meta['bits_per_pixel']:.4f} "
          f"(payload only {meta['payload_bits_per_pixel']:.4f})")
    if args.run:
        print(f"decodable with    {args.run}")
    return 0

"""`aekit denoise | inpaint | colorize RUN IMAGES... -o DIR`.

Inputs are checked before anything is written: a run that cannot do the task, masks of the wrong
size or not binary end with one line and exit 2. Unreadable image files, and images of another
channel count than the model's (unless --resize converts them), are skipped and listed (exit 1),
like every batch command; images of another size are tiled or resized (--fit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aekit.errors import ConfigError, DataError

if TYPE_CHECKING:  # annotations only: the command line must start without importing torch
    import torch


def add_parsers(sub) -> None:
    from aekit.args import add_device, add_resize, add_seed, add_threads

    helps = {
        "denoise": "remove noise from images with a run trained with --corrupt gaussian/...",
        "inpaint": "fill the masked pixels of images (known pixels are kept exactly)",
        "colorize": "colorize grey images with a run trained with --corrupt grayscale",
    }
    for task, text in helps.items():
        p = sub.add_parser(task, help=text, description=text)
        p.add_argument("run", help="run folder of a restoration model")
        p.add_argument("images", nargs="+", help="image files or folders")
        p.add_argument("-o", "--out", required=True, help="output folder for PNGs")
        if task == "inpaint":
            g = p.add_mutually_exclusive_group(required=True)
            g.add_argument("--mask", nargs="+", metavar="MASK",
                           help="mask images (white = fill, black = keep): one for all images "
                                "or one per image, in the same order")
            g.add_argument("--mask-spec", metavar="SPEC",
                           help="draw random masks, e.g. mask:blocks or mask:crosshair; they are "
                                "saved in OUT/masks/")
            add_seed(p, help="seed for --mask-spec")
        if task == "colorize":
            p.add_argument("--model-luma", action="store_true",
                           help="take the model's luma too (default: keep the input's exactly)")
        p.add_argument("--fit", choices=["tile", "resize"], default="tile",
                       help="images of another size than the model's: overlapping tiles "
                            "(default, keeps the resolution) or resize to the model and back")
        if task != "colorize":  # colorize takes grey and colour images alike
            add_resize(p, keeps_size=True)
        p.add_argument("--batch-size", type=int, default=256)
        add_device(p, default="cpu")
        add_threads(p)
        p.set_defaults(func=_command(task))


def _command(task: str):
    return lambda args: run_task(task, args)


def run_task(task: str, args: argparse.Namespace) -> int:
    import torch

    from aekit.data.files import ModelInputs, output_path
    from aekit.data.images import save_png
    from aekit.restore.restorer import Restorer

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: must be at least 1")
    restorer = Restorer.load(args.run, task, args.device, args.batch_size)
    # Each image keeps its own size (--fit); its channel count must be the model's (--resize
    # converts), except for colorize, which takes grey and colour images alike.
    shape = (3, *restorer.size) if task == "colorize" else (restorer.shape[0], *restorer.size)
    inputs = ModelInputs(args.images, shape, task == "colorize" or args.resize, keeps_size=True,
                         model=f"the model in {args.run}", keep_alpha=True)
    inputs.require_some()
    if task == "colorize":
        inputs.converted = 0  # not a conversion worth a note: colorize reads the luma anyway
    good, sizes = [str(p) for p in inputs.files], inputs.sizes
    masks = _masks(args, good, sizes) if task == "inpaint" else None

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if task == "inpaint" and args.mask_spec:
        (out_dir / "masks").mkdir(exist_ok=True)
    used: set[str] = set()
    other_size, done = 0, 0
    for start in range(0, len(good), args.batch_size):
        chunk = range(start, min(start + args.batch_size, len(good)))
        loaded = {}
        for i in chunk:
            img = inputs.load_own_size(good[i])  # None (listed) when the pixels are unreadable
            if img is not None:
                loaded[i] = img[None]
        # Model-size images go through the model together; others one by one (tiled/resized).
        same = [i for i in loaded if tuple(loaded[i].shape[2:]) == restorer.size]
        groups = ([same] if same else []) + [[i] for i in loaded if i not in same]
        other_size += len(loaded) - len(same)
        for group in groups:
            x = torch.cat([loaded[i] for i in group])
            if task == "denoise":
                y = restorer.denoise(x, args.fit)
            elif task == "inpaint":
                y = restorer.inpaint(x, torch.stack([masks[i] for i in group]), args.fit)
            else:
                y = restorer.colorize(x, args.fit, keep_luma=not args.model_luma)
            for i, img in zip(group, y, strict=True):
                target = output_path(out_dir, Path(good[i]), used)
                save_png(target, img, inputs.take_alpha(good[i]))
                if task == "inpaint" and args.mask_spec:
                    save_png(out_dir / "masks" / target.name, masks[i].float())
            done += len(group)
    if other_size:
        h, w = restorer.size
        how = (f"in overlapping {h}x{w} tiles" if args.fit == "tile"
               else f"resized to {h}x{w} and back")
        print(f"aekit: {other_size} image(s) are not {h}x{w} (the model's size): processed {how}",
              file=sys.stderr)
    code = inputs.finish(done)
    print(f"{done} image(s) {_PAST[task]} into {out_dir}")
    return code


_PAST = {"denoise": "denoised", "inpaint": "inpainted", "colorize": "colorized"}


def _masks(args, good: list[str], sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """One bool (1, H, W) mask per good image, checked against its size."""
    import torch

    from aekit.data.corrupt import parse_corruption
    from aekit.data.files import collect_paths
    from aekit.restore.restorer import read_mask

    if args.mask_spec:
        spec = parse_corruption(args.mask_spec)
        if not spec.has_mask or spec.mask_only().spec != spec.spec:
            raise ConfigError(f"--mask-spec {args.mask_spec!r}: give mask operations only, e.g. "
                              "mask:blocks, mask:crosshair or mask:random-pixels:0.3")
        gen = torch.Generator().manual_seed(args.seed)
        return [spec.apply(torch.zeros(1, 1, *hw), gen).mask[0] for hw in sizes]
    mask_paths = collect_paths(args.mask)
    if len(mask_paths) not in (1, len(good)):
        raise DataError(f"{len(mask_paths)} masks for {len(good)} images; give one mask for all "
                        "images or one per image (in the same order)")
    loaded = [read_mask(p) for p in mask_paths]
    masks = loaded * len(good) if len(loaded) == 1 else loaded
    names = [mask_paths[0]] * len(good) if len(loaded) == 1 else mask_paths
    for img, hw, m, name in zip(good, sizes, masks, names, strict=True):
        if tuple(m.shape[1:]) != tuple(hw):
            raise DataError(f"mask {name} is {m.shape[1]}x{m.shape[2]} but image {img} is "
                            f"{hw[0]}x{hw[1]} (HxW); masks must match their image's size")
    return masks

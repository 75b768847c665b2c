"""Colorization benchmark: 32x32 patches of scikit-learn's two sample photos, through the CLI.

Data: `sklearn.datasets.load_sample_images()` (china.jpg and flower.jpg, 427x640 RGB, shipped
inside the installed scikit-learn; nothing is downloaded). Each photo is split by columns: patches
for training come from the left 70% (x < 448, stride --train-stride, every patch entirely inside),
test patches from the right 30% (x >= 448, stride 32: non-overlapping, none touching the training
region). Horizontal flips are added at training time (`--augment hflip`, a random half of each
batch), never by flipping the photos: a flipped photo's left part is the original's right part.
The patches are written as PNGs (train/, test/; grey inputs as 8-bit grey PNGs = BT.601 luma),
the model is trained with `aekit train --model unet --dataset folder:DIR --corrupt grayscale`,
and the grey test patches are colorized with `aekit colorize` (keeps the input's luma exactly,
chroma from the model). Scores are computed on the written PNGs vs the true colour patches:
PSNR (RGB in [0, 1], pooled MSE over all test patches), SSIM (mean per patch), chroma RMSE
(Cb and Cr of BT.601 YCbCr, in 8-bit levels) and the saturation ratio (mean chroma magnitude of
the output / of the truth: 1 = as colourful as the truth, 0 = grey). Baselines on the same
patches: the grey input itself (luma on R, G and B); the input's luma + the training patches'
mean chroma (one constant Cb, Cr); and the input's luma + the mean chroma of the training pixels
that have the same 8-bit luma (a 256-entry lookup table: colour as a function of brightness
alone). Both keep the luma exactly and shrink out-of-gamut chroma as `aekit colorize` does.

Run: python bench/colorize.py   (trains ~4 minutes on 2 cores; writes bench/results/colorize.json
and docs/img/colorize_grid.png, prints a table).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PATCH = 32
TRAIN_FRACTION = 0.7
# BT.601 full-range YCbCr: Cb = (B - Y) / 1.772, Cr = (R - Y) / 1.402.
CB_SCALE, CR_SCALE = 1.772, 1.402


# ---- patch cutting (tested in tests/test_bench_colorize.py) -------------------------------------

def starts(lo: int, hi: int, size: int, stride: int) -> list[int]:
    """Start offsets s = lo, lo + stride, ... of windows [s, s + size) that lie inside [lo, hi)."""
    if size < 1 or stride < 1:
        raise ValueError(f"size {size} and stride {stride} must be >= 1")
    return list(range(lo, hi - size + 1, stride))


def split_boxes(height: int, width: int, size: int = PATCH, train_stride: int = 8,
                train_fraction: float = TRAIN_FRACTION) -> tuple[list, list, int]:
    """Boxes (y, x) of size x size patches of one image -> (train boxes, test boxes, boundary).

    Columns x < boundary = round(width * train_fraction) are the training region: training
    patches (stride `train_stride` in y and x) lie entirely left of it. Test patches start at the
    boundary and tile the rest without overlap (stride = size); rows likewise from y = 0.
    """
    boundary = int(round(width * train_fraction))
    train = [(y, x) for y in starts(0, height, size, train_stride)
             for x in starts(0, boundary, size, train_stride)]
    test = [(y, x) for y in starts(0, height, size, size)
            for x in starts(boundary, width, size, size)]
    return train, test, boundary


def cut(image: np.ndarray, boxes: list, size: int = PATCH) -> np.ndarray:
    """(H, W, C) image, boxes (y, x) -> (N, size, size, C) patches (copies)."""
    if not boxes:
        return np.empty((0, size, size, image.shape[2]), image.dtype)
    return np.stack([image[y : y + size, x : x + size] for y, x in boxes])


def boxes_overlap(a: tuple[int, int], b: tuple[int, int], size: int = PATCH) -> bool:
    return abs(a[0] - b[0]) < size and abs(a[1] - b[1]) < size


# ---- colour measures ----------------------------------------------------------------------------

def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 2, H, W): BT.601 Cb, Cr (0 = grey)."""
    r, g, b = rgb.double().unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([(b - y) / CB_SCALE, (r - y) / CR_SCALE], 1)


def colour_scores(out: torch.Tensor, true: torch.Tensor) -> dict:
    from aekit.eval.evaluate import measure

    q = measure(out, true)
    c_out, c_true = chroma(out), chroma(true)
    rmse = float(((c_out - c_true) ** 2).mean().sqrt()) * 255
    sat = float(c_out.norm(dim=1).mean() / c_true.norm(dim=1).mean())
    return {"psnr": round(q["psnr"], 3), "ssim": round(q["ssim"], 4),
            "chroma_rmse_8bit": round(rmse, 3), "saturation_ratio": round(sat, 3)}


# ---- data -------------------------------------------------------------------------------------

def sample_photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    b = load_sample_images()
    return {Path(f).stem: img for f, img in zip(b.filenames, b.images, strict=True)}


def write_patches(root: Path, photos: dict[str, np.ndarray], train_stride: int) -> dict:
    """root/data/train/*.png, root/data/test/*.png (colour), root/grey/*.png (grey test inputs).
    Returns the layout: names, boxes and counts per photo."""
    from aekit.data.corrupt import to_grayscale
    from aekit.data.images import to_pil

    def save_png(path: Path, img) -> None:  # plain PIL: aekit's atomic writer fsyncs every file
        to_pil(img).save(path)

    layout: dict = {"photos": {}, "test_names": []}
    for d in ("data/train", "data/test", "grey"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, img in photos.items():
        h, w = img.shape[:2]
        train, test, boundary = split_boxes(h, w, PATCH, train_stride)
        # The split's guarantee, checked on the real boxes (the pairwise test is in tests/).
        assert all(x + PATCH <= boundary for _, x in train) and all(x >= boundary for _, x in test)
        for (y, x), p in zip(train, cut(img, train), strict=True):
            save_png(root / f"data/train/{name}_y{y:03d}_x{x:03d}.png", p.transpose(2, 0, 1))
        for (y, x), p in zip(test, cut(img, test), strict=True):
            stem = f"{name}_y{y:03d}_x{x:03d}"
            save_png(root / f"data/test/{stem}.png", p.transpose(2, 0, 1))
            rgb = torch.from_numpy(p.transpose(2, 0, 1).copy()).float()[None] / 255
            save_png(root / f"grey/{stem}.png", to_grayscale(rgb)[0, :1])  # 8-bit grey PNG
            layout["test_names"].append(stem)
        layout["photos"][name] = {"size": [h, w], "boundary_x": boundary,
                                  "train_patches": len(train), "test_patches": len(test)}
    return layout


def load_pngs(folder: Path, names: list[str]) -> torch.Tensor:
    from aekit.data.images import load_uint8

    a = np.stack([load_uint8(folder / f"{n}.png", "RGB") for n in names])
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255


def training_colours(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean RGB of every training pixel (3,), and the per-luma chroma table (256, 3): the mean
    chroma offset (R - Y, G - Y, B - Y) of the training pixels whose 8-bit luma round(Y) is each
    value (the overall mean offset where no training pixel has that luma)."""
    from aekit.data.images import load_uint8

    pixels = np.concatenate([load_uint8(p, "RGB").reshape(-1, 3)
                             for p in sorted(folder.glob("*.png"))]).astype(np.float64) / 255
    return torch.from_numpy(pixels.mean(0)).float(), luma_chroma_table(pixels)


def luma_chroma_table(pixels: np.ndarray) -> torch.Tensor:
    """(N, 3) RGB pixels in [0, 1] -> (256, 3) mean chroma offset per 8-bit luma value."""
    y = pixels @ np.array([0.299, 0.587, 0.114])
    offsets = pixels - y[:, None]
    bins = np.clip(np.round(y * 255), 0, 255).astype(np.int64)
    counts = np.bincount(bins, minlength=256)
    table = np.stack([np.bincount(bins, offsets[:, c], 256) for c in range(3)], 1)
    table = np.where(counts[:, None] > 0, table / np.maximum(counts, 1)[:, None],
                     offsets.mean(0))
    return torch.from_numpy(table).float()


def apply_luma_table(grey: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Grey images (B, 3, H, W) (luma on every channel) -> luma + the table's chroma for that
    luma, out-of-gamut chroma shrunk as `aekit colorize` does (the luma stays exact)."""
    from aekit.restore.restorer import with_luma

    y = grey[:, :1]
    bins = (y * 255).round().clamp(0, 255).long()[:, 0]  # (B, H, W)
    return with_luma(y + table[bins].permute(0, 3, 1, 2), y)


# ---- figure -------------------------------------------------------------------------------------

def figure(path: Path, rows: list[tuple[str, torch.Tensor]]) -> None:
    from bench.common import image_rows_figure

    image_rows_figure(path, rows, cell=(1.0, 1.05))


# ---- main -------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-stride", type=int, default=8)
    p.add_argument("--widths", default="32,64,128")
    p.add_argument("--option", action="append", default=[], help="unet option KEY=VALUE")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--limit", type=int, default=None, help="training patches (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run", default=str(ROOT / "runs/bench/colorize"),
                   help="run folder (replaced: trained afresh every time)")
    p.add_argument("--figure-patches", type=int, default=10)
    p.add_argument("--out", default=str(ROOT / "bench/results/colorize.json"))
    p.add_argument("--figure", default=str(ROOT / "docs/img/colorize_grid.png"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aekit import cli
    from aekit.restore.restorer import with_luma
    from bench.common import environment

    t_start = time.perf_counter()
    run = Path(args.run)
    if run.exists():
        shutil.rmtree(run)
    run.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aekit-colorize-") as tmp:
        root = Path(tmp)
        layout = write_patches(root, sample_photos(), args.train_stride)
        names = layout["test_names"]
        train_cmd = ["train", "--model", "unet", "--dataset", f"folder:{root / 'data'}",
                     "--image-size", f"{PATCH}x{PATCH}", "--corrupt", "grayscale",
                     "--augment", "hflip", "--widths", args.widths,
                     *[a for o in args.option for a in ("--option", o)],
                     "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                     "--lr", str(args.lr), "--seed", str(args.seed),
                     "--threads", str(args.threads), "--quiet", "--out", str(run)]
        if args.limit:
            train_cmd += ["--limit", str(args.limit)]
        t0 = time.perf_counter()
        if cli.main(train_cmd) != 0:
            raise SystemExit("training failed")
        train_wall = time.perf_counter() - t0

        out_dir = root / "colorized"
        colorize_cmd = ["colorize", str(run), str(root / "grey"), "-o", str(out_dir),
                        "--threads", str(args.threads)]
        t0 = time.perf_counter()
        if cli.main(colorize_cmd) != 0:
            raise SystemExit("colorize failed")
        colorize_wall = time.perf_counter() - t0

        true = load_pngs(root / "data/test", names)
        grey = load_pngs(root / "grey", names)
        aekit_out = load_pngs(out_dir, names)
        mean_rgb, table = training_colours(root / "data/train")
        lookup = apply_luma_table(grey, table)
        mean_chroma = with_luma(mean_rgb.view(1, 3, 1, 1).expand_as(grey).contiguous(),
                                grey[:, :1])

    methods = {"grey input": grey, "luma + training mean chroma": mean_chroma,
               "luma + training chroma per luma value": lookup,
               "aekit unet (colorize)": aekit_out}
    photo_of = np.array([n.split("_y")[0] for n in names])
    scores: dict = {}
    for m, out in methods.items():
        scores[m] = {"all": colour_scores(out, true)}
        for photo in layout["photos"]:
            idx = torch.from_numpy(np.flatnonzero(photo_of == photo))
            scores[m][photo] = colour_scores(out[idx], true[idx])
    luma_err = float(((grey[:, 0] - (0.299 * true[:, 0] + 0.587 * true[:, 1]
                                     + 0.114 * true[:, 2])).abs()).max() * 255)

    pick = np.linspace(0, len(names) - 1, args.figure_patches).round().astype(int).tolist()
    figure(Path(args.figure), [("grey input", grey[pick]), ("aekit", aekit_out[pick]),
                               ("true colour", true[pick])])

    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() \
        else None
    config = json.loads((run / "config.json").read_text())
    result = {
        "protocol": " ".join(__doc__.split("\n\n")[1].split()),
        "patch": PATCH, "train_fraction": TRAIN_FRACTION, "train_stride": args.train_stride,
        "layout": layout["photos"], "test_patches": len(names),
        "figure_patches": [names[i] for i in pick],
        "mean_training_rgb": [round(float(v), 4) for v in mean_rgb],
        "max_luma_error_8bit_of_grey_input": round(luma_err, 3),
        "train_command": "aekit " + " ".join(train_cmd),
        "colorize_command": "aekit " + " ".join(colorize_cmd),
        "run_config": config, "run_metrics": metrics,
        "train_wall_seconds": round(train_wall, 1),
        "colorize_wall_seconds": round(colorize_wall, 2),
        "total_wall_seconds": round(time.perf_counter() - t_start, 1),
        "scores": scores,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    from aekit.io import atomic_write_text

    atomic_write_text(out_path, json.dumps({"environment": environment(), **result}, indent=2)
                      + "\n")

    from bench.common import print_table

    rows = []
    for m, s in scores.items():
        a = s["all"]
        rows.append([m, a["psnr"], a["ssim"], a["chroma_rmse_8bit"], a["saturation_ratio"],
                     *(s[ph]["psnr"] for ph in layout["photos"])])
    print_table(["method", "PSNR", "SSIM", "chroma RMSE", "saturation",
                 *(f"PSNR {ph}" for ph in layout["photos"])], rows)
    print(f"train {train_wall:.0f}s, colorize {colorize_wall:.2f}s; wrote {out_path}, "
          f"{args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

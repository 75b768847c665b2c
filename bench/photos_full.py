"""Whole photos in, whole photos out: a denoiser trained on a folder of photos of mixed sizes.

The user's path with nothing but defaults: a folder of photos (here the ones bundled in
scikit-learn, scikit-image and matplotlib, written as PNG files; no download), each a different
size, is trained on with `aekit train --dataset folder:DIR --patch 32 --corrupt gaussian:0.098`
(sigma = 25/255; the grid of 32x32 patches of every photo, no resize), and held-out photos with
Gaussian noise, saved as 8-bit PNG files as a camera or an editor would, are denoised whole with
`aekit denoise RUN FILES` (overlapping 32x32 tiles, stitched at each photo's own size). PSNR and
SSIM over each held-out photo against the noisy file and BM3D (the `bm3d` package, in the
`bench` extra, at the true sigma); seconds for `aekit denoise` (one process for all photos, model
load included) and BM3D.

Training photos: bench.codec_photos.TRAIN; held out: bench.codec_photos.TEST (the codec
benchmark's split).

    python -m bench.photos_full --threads 2
    python -m bench.photos_full --threads 2 --reuse      # read the trained run back
    python -m bench.photos_full --flags="--augment dihedral+colours" --name photos_full_augment
    python -m bench.photos_full --quick                  # smoke test: 20 steps, photo centres

Writes bench/results/photos_full.json and docs/img/photos_full_denoise.png (a crop of each
held-out photo: clean, noisy, aekit, BM3D); --quick writes both under runs/photos-full-quick/
and never into bench/results or docs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.codec_photos import TEST, TRAIN, photo
from bench.common import IMG, RESULTS, ROOT, image_rows_figure, print_table, write_result

SIGMA = 25 / 255
PATCH = 32
DATA = ROOT / "runs" / "data" / "photos-full"
RUN = ROOT / "runs" / "photos-full-denoise"
CROP = 96  # the picture's crop of each held-out photo, from its centre
QUICK = {"steps": 20, "side": 128}  # --quick: training steps; held-out photos' centre crops
RESULTS_PATH = RESULTS / "photos_full.json"


def write_photos() -> dict[str, list[tuple[str, int, int]]]:
    """The training and held-out photos as PNG files under DATA/{train,test}; (name, H, W) of
    each, per split."""
    from PIL import Image

    sizes: dict[str, list[tuple[str, int, int]]] = {}
    for split, names in (("train", TRAIN), ("test", TEST)):
        (DATA / split).mkdir(parents=True, exist_ok=True)
        sizes[split] = []
        for name in names:
            img = photo(name)  # (3, H, W) uint8
            path = DATA / split / f"{name.split(':')[1]}.png"
            if not path.exists():
                Image.fromarray(img.transpose(1, 2, 0)).save(path)
            sizes[split].append((name, img.shape[1], img.shape[2]))
    return sizes


def noisy_files(out: Path, side: int = 0) -> tuple[list[Path], list[np.ndarray], list[np.ndarray]]:
    """Each held-out photo (its centre `side` x `side` crop when side > 0) with seeded Gaussian
    noise, saved as an 8-bit PNG: (paths, clean float (H, W, 3), noisy float (H, W, 3) as
    saved)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    paths, clean, noisy = [], [], []
    for i, name in enumerate(TEST):
        x = photo(name).transpose(1, 2, 0).astype(np.float64) / 255.0
        if side:
            top, left = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
            x = x[top : top + side, left : left + side]
        rng = np.random.default_rng(i)
        y = np.clip(x + rng.normal(0.0, SIGMA, x.shape), 0, 1)
        y8 = np.round(y * 255).astype(np.uint8)
        path = out / f"{name.split(':')[1]}.png"
        Image.fromarray(y8).save(path)
        paths.append(path)
        clean.append(x)
        noisy.append(y8.astype(np.float64) / 255.0)
    return paths, clean, noisy


def measure(a: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    from skimage.metrics import structural_similarity

    mse = float(((a - ref) ** 2).mean())
    return {"psnr": 10 * np.log10(1.0 / mse),
            "ssim": float(structural_similarity(a, ref, channel_axis=2, data_range=1.0))}


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from aekit.cli import main as aekit

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="read a trained run back")
    ap.add_argument("--patch", type=int, default=PATCH, help="patch side for training")
    ap.add_argument("--flags", default="", help="more `aekit train` flags (a variant)")
    ap.add_argument("--name", default="photos_full", help="result name (and run folder)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 20 training steps, the held-out photos' centres; writes "
                         "under runs/photos-full-quick only")
    args = ap.parse_args(argv)
    quick = ROOT / "runs" / "photos-full-quick" if args.quick else None
    if quick is not None:  # a fresh smoke test each time
        shutil.rmtree(quick, ignore_errors=True)
        run = quick / "run"
        args.flags += f" --steps {QUICK['steps']}"
    else:
        run = RUN if args.name == "photos_full" else ROOT / "runs" / args.name
    torch.set_num_threads(args.threads)
    sizes = write_photos()
    threads = ["--threads", str(args.threads)]
    t0 = time.perf_counter()
    if not (args.reuse and (run / "model.safetensors").exists()):
        code = aekit(["train", "--dataset", f"folder:{DATA}", "--patch", str(args.patch),
                      "--corrupt", f"gaussian:{SIGMA:.3f}", "--out", str(run), *threads,
                      *args.flags.split()])
        if code != 0:
            return code
    train_s = time.perf_counter() - t0
    paths, clean, noisy = noisy_files(
        run.with_name(run.name + "-noisy") if quick else ROOT / "runs" / "photos-full-noisy",
        QUICK["side"] if quick else 0)
    outdir = run.with_name(run.name + "-denoised")
    t0 = time.perf_counter()
    if aekit(["denoise", str(run), *map(str, paths), "--out", str(outdir), *threads]) != 0:
        return 1
    aekit_s = time.perf_counter() - t0
    denoised = [np.asarray(Image.open(outdir / p.name), dtype=np.float64) / 255.0 for p in paths]
    import bm3d

    t0 = time.perf_counter()
    bm = [np.clip(bm3d.bm3d(y, SIGMA), 0, 1) for y in noisy]
    bm3d_s = time.perf_counter() - t0
    rows, table = {}, []
    for name, x, y, d, b in zip(TEST, clean, noisy, denoised, bm, strict=True):
        assert d.shape == x.shape, f"{name}: denoised {d.shape} vs {x.shape}"
        rows[name] = {"size": list(x.shape[:2]), "noisy": measure(y, x), "aekit": measure(d, x),
                      "bm3d": measure(b, x)}
        r = rows[name]
        table.append([name, f"{x.shape[0]}x{x.shape[1]}", r["noisy"]["psnr"], r["aekit"]["psnr"],
                      r["bm3d"]["psnr"], r["aekit"]["ssim"], r["bm3d"]["ssim"]])
    pixels = sum(x.shape[0] * x.shape[1] for x in clean)
    mean = {k: float(np.mean([r[k]["psnr"] for r in rows.values()]))
            for k in ("noisy", "aekit", "bm3d")}
    print_table(["photo", "HxW", "noisy dB", "aekit dB", "BM3D dB", "aekit SSIM", "BM3D SSIM"],
                table)
    print(f"mean PSNR: noisy {mean['noisy']:.2f}, aekit {mean['aekit']:.2f}, "
          f"BM3D {mean['bm3d']:.2f}; aekit denoise {aekit_s:.1f} s, BM3D {bm3d_s:.1f} s "
          f"for {pixels / 1e6:.2f} MP")
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    # the grid `--patch` cuts: whole P x P squares per side (aekit.data.patches)
    n_patches = {split: sum((h // args.patch) * (w // args.patch) for _, h, w in photos)
                 for split, photos in sizes.items()}
    result = {
        "sigma": SIGMA, "patch": args.patch, "flags": args.flags,
        "photos": {split: [f"{n} {h}x{w}" for n, h, w in photos]
                   for split, photos in sizes.items()},
        "per_photo": rows, "mean_psnr": mean,
        "megapixels": pixels / 1e6, "aekit_denoise_seconds": round(aekit_s, 2),
        "bm3d_seconds": round(bm3d_s, 2),
        "train": {"seconds_this_call": round(train_s, 1), "train_seconds":
                  metrics["train_seconds"], "epochs": metrics["epochs"],
                  "patches": n_patches, "model": metrics["model"],
                  "test_patches": metrics["test"]},
    }
    # a smoke test's numbers are not results: they stay under runs/
    write_result("photos_full" if quick else args.name, result, quick or RESULTS)
    crops = []
    for x, y, d, b in zip(clean, noisy, denoised, bm, strict=True):
        h, w = x.shape[:2]
        top, left = (h - CROP) // 2, (w - CROP) // 2
        crops.append([torch.from_numpy(a[top : top + CROP, left : left + CROP]).permute(2, 0, 1)
                      .float() for a in (x, y, d, b)])
    picture = "photos_full_denoise" if args.name == "photos_full" else args.name
    image_rows_figure((quick or IMG) / f"{picture}.png",
                      [(label, torch.stack([c[i] for c in crops]))
                       for i, label in enumerate(("clean", "noisy", "aekit", "BM3D"))],
                      cell=(1.6, 1.7))
    return 0


if __name__ == "__main__":
    sys.exit(main())

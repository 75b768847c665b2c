"""Inpainting benchmark: random 8x8 blocks and a crosshair on Fashion-MNIST test images.

Masks are drawn once per mask kind with a fixed seed (`aekit.data.corrupt`: mask:blocks = 3
random 8x8 squares on 28x28, mask:crosshair = a 2-pixel horizontal + vertical bar), the same for
every method. Every method keeps the known pixels, so the score that matters is the PSNR on the
masked pixels only (MSE over all masked pixels of the set); full-image PSNR/SSIM are reported too.
Baseline: scikit-image's `inpaint_biharmonic`, on the first --subset test images (it is slow);
aekit runs (`Restorer.inpaint`: fill with 0, predict, keep known pixels) on the subset and on all
10,000 test images.

Train runs first, e.g.
    aekit train --model unet --widths 32,64 --option shuffle=2 --corrupt mask:blocks
                --epochs 4 --out runs/inpaint-blocks   (one command)
then: python bench/inpaint.py --runs runs/inpaint-blocks [runs/...]
Writes bench/results/inpaint.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MASKS = ("mask:blocks", "mask:crosshair")
MASK_SEED = 2024


def masked_psnr(out: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.expand_as(clean)
    err = float(((out[m].double() - clean[m].double()) ** 2).mean())
    return float("inf") if err <= 0 else 10 * math.log10(1 / err)


def scores(out: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> dict:
    from aekit.eval.evaluate import measure

    full = measure(out, clean)
    return {"masked_psnr": round(masked_psnr(out, clean, mask), 3),
            "psnr": round(full["psnr"], 3), "ssim": round(full["ssim"], 4),
            "masked_fraction": round(float(mask.float().mean()), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="*", default=[], help="inpainting run folders")
    p.add_argument("--subset", type=int, default=500, help="test images for the baseline")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench/results/inpaint.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aekit.data import load_dataset
    from aekit.data.corrupt import parse_corruption
    from aekit.eval.classical import inpaint_batch
    from aekit.restore.restorer import Restorer

    ds = load_dataset("fashion-mnist")
    clean = ds.test_x.float() / 255.0
    n = args.subset
    restorers = [(r, Restorer.load(r, "inpaint", batch_size=1000)) for r in args.runs]
    result: dict = {"protocol": __doc__.split("\n\n")[1].replace("\n", " "), "subset": n,
                    "masks": {}, "runs": {r: rest.corruption.spec for r, rest in restorers}}
    for spec in MASKS:
        mask = parse_corruption(spec).apply(clean, torch.Generator().manual_seed(MASK_SEED)).mask
        entry: dict = {}
        filled = clean.masked_fill(mask, 0.0)  # what the methods see: known pixels only
        t0 = time.perf_counter()
        out, rate = inpaint_batch(filled[:n], mask[:n])
        entry["biharmonic"] = {"subset": scores(out, clean[:n], mask[:n]),
                               "images_per_second": round(rate, 1)}
        print(f"  {spec} biharmonic: {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        for r, rest in restorers:
            t = time.perf_counter()
            out = rest.inpaint(filled, mask)
            rate = len(clean) / (time.perf_counter() - t)
            entry[f"aekit {r}"] = {"subset": scores(out[:n], clean[:n], mask[:n]),
                                   "full_test": scores(out, clean, mask),
                                   "trained_on": rest.corruption.spec,
                                   "images_per_second_wall": round(rate, 1)}
        result["masks"][spec] = entry
    result["environment"] = {"threads": args.threads, "cpus": os.cpu_count(),
                             "load_average": [round(v, 2) for v in os.getloadavg()]}
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'mask':<16}{'method':<44}{'masked PSNR':>12}{'PSNR':>8}{'SSIM':>8}"
          f"{'10k masked':>11}")
    for spec, entry in result["masks"].items():
        for name, r in entry.items():
            full = r.get("full_test", {}).get("masked_psnr")
            print(f"{spec:<16}{name[:43]:<44}{r['subset']['masked_psnr']:>12.2f}"
                  f"{r['subset']['psnr']:>8.2f}{r['subset']['ssim']:>8.3f}"
                  f"{'' if full is None else f'{full:.2f}':>11}")
    print(f"(subset = first {n} test images; wrote {out_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training budgets in steps: the default `conv` at several step budgets on a large-ish, a small
and a tiny dataset, to choose the automatic budget's minimum number of optimizer steps
(aekit.config.MIN_STEPS, aekit.train.budget).

    python -m bench.budget --threads 1

Each cell is `aekit train --dataset D [--latent-dim L] --steps S` (S = 0: `--epochs 10`, the
budget before steps existed); test PSNR next to PCA at the same code size, training seconds.
Datasets: 8,000 MNIST digits (latent 16, as in "defaults on sparse images"), scikit-learn's
1,797 `digits` (8x8) and the photo patches of bench/photos.py at 64x64 (572 train). Writes
bench/results/budget.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from aekit.config import ModelConfig, TrainConfig
from aekit.core.training import train_run
from bench.common import ROOT, print_table, write_result

MNIST = "idx:" + str(ROOT.parent / "shared" / "data" / "mnist")


def cells(photos: str) -> list[tuple[str, str, int]]:
    return [("mnist-8k", MNIST, 16), ("digits", "digits", 32), ("photos64", photos, 32)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 1000, 3000, 6000],
                    help="step budgets (0: 10 epochs)")
    ap.add_argument("--datasets", nargs="+", default=["mnist-8k", "digits", "photos64"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="budget")
    ap.add_argument("--reuse", action="store_true",
                    help="read a cell from its finished run folder instead of training it again")
    args = ap.parse_args(argv)
    import torch

    from bench.photos import write as write_photos

    torch.set_num_threads(args.threads)
    photos = "npz:" + str(write_photos(64, ROOT / "runs" / "data" / "photos64.npz"))
    rows, results = [], []
    for tag, dataset, latent in cells(photos):
        if tag not in args.datasets:
            continue
        for steps in args.steps:
            out = ROOT / "runs" / "bench" / f"budget-{tag}-{steps}"
            if args.reuse and (out / "metrics.json").exists():
                m = json.loads((out / "metrics.json").read_text())
            else:
                shutil.rmtree(out, ignore_errors=True)
                cfg = TrainConfig(dataset=dataset, epochs=0 if steps else 10, steps=steps)
                m = train_run(out, ModelConfig(name="conv", latent_dim=latent), cfg,
                              progress=False, log=lambda s: None)
            r = {"dataset": tag, "steps_asked": steps, "epochs": m["epochs"],
                 "best_epoch": m["best_epoch"], "psnr": m["test"]["psnr"],
                 "pca_psnr": m["baselines"]["pca"]["psnr"], "seconds": m["train_seconds"],
                 "warnings": m["warnings"]}
            results.append(r)
            rows.append([tag, steps or "10 ep", r["epochs"], r["psnr"], r["pca_psnr"],
                         r["seconds"]])
            print_table(["dataset", "steps", "epochs", "PSNR", "PCA", "s"], rows[-1:])
            sys.stdout.flush()
    print_table(["dataset", "steps", "epochs", "PSNR", "PCA", "s"], rows)
    print(write_result(args.name, {"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

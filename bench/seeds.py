"""Reproduce every seed preset on Fashion-MNIST next to `conv`: test MSE/PSNR after the seed's own
number of epochs (capped by --max-epochs; the table says when a cap applied).

    python -m bench.seeds [--max-epochs 50]
"""

from __future__ import annotations

import argparse
import shutil

from aekit.config import TrainConfig
from aekit.core.training import train_run
from aekit.device import setup_threads
from aekit.models import default_config
from aekit.registry import get_model_class
from bench.common import ROOT, print_table, write_result

PRESETS = ["seed-dense", "seed-deep", "seed-keras-conv", "seed-torch-conv", "seed-tf-conv"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--max-epochs", type=int, default=50)
    ap.add_argument("--models", nargs="+", default=PRESETS + ["conv"])
    ap.add_argument("--tag", default="seeds", help="result file name (bench/results/TAG.json)")
    args = ap.parse_args()
    setup_threads()
    rows, results = [], {}
    for name in args.models:
        cls = get_model_class(name)
        seed_epochs = getattr(cls, "seed_epochs", 0) or 20
        epochs = min(seed_epochs, args.max_epochs)
        cfg = TrainConfig(dataset=args.dataset, epochs=epochs,
                          batch_size=getattr(cls, "seed_batch_size", None) or 128,
                          lr=getattr(cls, "seed_lr", None) or 2e-3)
        out = ROOT / "runs" / "bench" / f"seed-table-{name}"
        if out.exists():
            shutil.rmtree(out)
        m = train_run(out, default_config(name), cfg, progress=False,
                      log=lambda s: print(s, flush=True))
        results[name] = {"seed_epochs": seed_epochs, "epochs": epochs, "test": m["test"],
                         "parameters": m["parameters"], "code_size": m["code_size"],
                         "loss": get_model_class(name).default_loss,
                         "pca_same_size": m["baselines"]["pca"],
                         "train_images_per_second": m["train_images_per_second"],
                         "train_seconds": m["train_seconds"]}
        rows.append([name, m["code_size"], f"{epochs}/{seed_epochs}", m["test"]["mse"],
                     m["test"]["psnr"], m["test"]["ssim"], m["baselines"]["pca"]["psnr"],
                     round(m["train_images_per_second"])])
    print_table(["model", "code", "epochs run/seed", "MSE", "PSNR", "SSIM", "PCA PSNR",
                 "img/s"], rows)
    write_result(args.tag, {"dataset": args.dataset, "max_epochs": args.max_epochs,
                           "results": results})


if __name__ == "__main__":
    main()

"""Every model family on every kind of image: does it train, or does it collapse?

The matrix (bench/matrix.py) runs each task's default model; this table runs every family —
`dense`, `deep`, `conv`, `unet`, `vae` and the seed presets where their fixed 28x28 grey input
allows — on the matrix's columns, with one budget for every cell (`--steps`, the same flag
everywhere, nothing per dataset):

    aekit train --model M --dataset D --steps N --out runs/families/<D>-<M>

Per cell: test PSNR, PCA at the same code size, the predict-the-mean level (the training mean
image, per pixel, scored on the test images: what a collapsed network outputs) and any warning
the run wrote to metrics.json. A cell trains when it has no warning and ends at least 3 dB above
the mean level.

    python -m bench.families --threads 2                 # every column (about an hour, 2 cores)
    python -m bench.families --columns digits --quick    # smoke: 20 steps, 600 images
    python -m bench.families --report                    # the markdown table from the JSON

Writes bench/results/families.json (quick: families_quick.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

import numpy as np
import torch

from bench.common import RESULTS, ROOT, environment, write_result
from bench.matrix import COLUMNS, dataset

FAMILIES = ("dense", "deep", "conv", "unet", "vae")
SEEDS = ("seed-dense", "seed-deep", "seed-keras-conv", "seed-torch-conv", "seed-tf-conv")
SEED_COLUMNS = ("fashion-mnist", "mnist")  # the presets' fixed input: 28x28, one channel
STEPS = 1000
MARGIN_DB = 3.0  # above the predict-the-mean level: a trained model, not a constant image
QUICK = {"steps": 20, "limit": 600}


def mean_level_db(col: str) -> float:
    """PSNR of the training mean image (per pixel) on the test images."""
    from aekit.data.load import load_dataset

    ds = load_dataset(dataset(col))
    mean = ds.train_x.double().mean(0, keepdim=True) / 255  # (1, C, H, W)
    mse = float(((ds.test_x.double() / 255 - mean) ** 2).mean())
    return 10 * np.log10(1 / mse)


def cell(col: str, model: str, steps: int, quick: bool) -> dict:
    from aekit.cli import main as cli_main

    out = ROOT / "runs" / "families" / f"{col}-{model}{'-quick' if quick else ''}"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["train", "--model", model, "--dataset", dataset(col), "--steps", str(steps),
            "--out", str(out), "-q"]
    argv += ["--limit", str(QUICK["limit"])] if quick else []
    if cli_main(argv) not in (0, 1):
        raise RuntimeError(f"aekit {' '.join(argv)} failed")
    m = json.loads((out / "metrics.json").read_text())
    train = json.loads((out / "config.json").read_text())["train"]
    return {"psnr": m["test"]["psnr"], "pca_psnr": m["baselines"]["pca"]["psnr"],
            "code_size": m["code_size"], "parameters": m["parameters"], "epochs": m["epochs"],
            "best_epoch": m["best_epoch"], "augment": train["augment"],
            "train_seconds": m["train_seconds"], "warnings": m["warnings"]}


def report(results: dict) -> str:
    models = [*FAMILIES, *SEEDS]
    cols = [c for c in COLUMNS if c in results["columns"]]
    lines = ["| model | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for model in models:
        row = [f"`{model}`"]
        for col in cols:
            c = results["columns"][col]["cells"].get(model)
            if c is None:
                row.append("—")
                continue
            ok = not c["warnings"] and c["psnr"] >= results["columns"][col]["mean_db"] + MARGIN_DB
            # A code as large as the image (the U-Net's skips) makes PCA lossless.
            pca = "lossless" if c["pca_psnr"] > 100 else f"{c['pca_psnr']:.2f}"
            row.append(f"{c['psnr']:.2f} ({pca})" + ("" if ok else " **✗**"))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| mean image | " + " | ".join(
        f"{results['columns'][c]['mean_db']:.2f}" for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=COLUMNS)
    ap.add_argument("--models", nargs="+", default=[*FAMILIES, *SEEDS])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--quick", action="store_true", help="20 steps on 600 images (smoke test)")
    ap.add_argument("--report", action="store_true", help="print the table from the JSON only")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    name = "families_quick" if args.quick else "families"
    path = RESULTS / f"{name}.json"
    if args.report:
        print(report(json.loads(path.read_text())))
        return 0
    torch.set_num_threads(args.threads)
    steps = QUICK["steps"] if args.quick else args.steps
    results = json.loads(path.read_text()) if path.exists() else {"columns": {}}
    results["steps"] = steps
    for col in args.columns:
        if col == "mnist" and not (ROOT.parent / "shared" / "data" / "mnist").is_dir():
            print("mnist: ../shared/data/mnist is absent; column skipped", flush=True)
            continue
        column = results["columns"].setdefault(col, {"cells": {}})
        column["mean_db"] = mean_level_db(col)
        for model in args.models:
            if model in SEEDS and col not in SEED_COLUMNS:
                continue
            print(f"== {col} / {model}", flush=True)
            column["cells"][model] = cell(col, model, steps, args.quick)
            column["environment"] = environment()
            write_result(name, {k: v for k, v in results.items() if k != "environment"})
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

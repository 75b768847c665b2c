"""Recorded recipes as defaults: what a user gets without flags, before and after, on the short
budgets (Fashion-MNIST, 6 epochs by default), one run each with the same seed.

    python -m bench.recipe_defaults --threads 1
    python -m bench.recipe_defaults --threads 1 --epochs 2 --denoise-epochs 1   # shorter

- few labels: `aekit train --model conv --epochs 6`, then `aekit finetune RUN --labels 100`
  with the defaults (the recorded recipe) and with the former defaults spelled out (OLD_FINETUNE)
- denoising: `aekit train --corrupt gaussian:0.5 --epochs 6` with the default model (now the
  recorded U-Net) and with `--model conv` (the former default)

Writes bench/results/recipe_defaults.json (`--name` for another name).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

from bench.common import ROOT, print_table, write_result

# `aekit finetune`'s defaults before they became the recorded recipe.
OLD_FINETUNE = ["--steps", "300", "--encoder-lr-scale", "0.1", "--no-semi", "--no-consistency",
                "--no-lp-cmn", "--lp-k", "50", "--lp-iters", "40", "--threshold", "0.95",
                "--strength", "1.0"]


def run(argv: list[str]) -> float:
    from aekit.cli import main as cli_main

    t0 = time.perf_counter()
    if cli_main(argv) != 0:
        raise RuntimeError(f"aekit {' '.join(argv)} failed")
    return round(time.perf_counter() - t0, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=6, help="the autoencoder's pretraining")
    ap.add_argument("--denoise-epochs", type=int, default=6)
    ap.add_argument("--parts", nargs="+", default=["fewlabel", "denoise"])
    ap.add_argument("--name", default="recipe_defaults",
                    help="result name: bench/results/NAME.json (default: %(default)s)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    root = ROOT / "runs" / "recipe_defaults"
    out: dict = {"epochs": args.epochs, "denoise_epochs": args.denoise_epochs}
    rows = []
    if "fewlabel" in args.parts:
        ae = root / f"conv{args.epochs}"
        if not (ae / "metrics.json").exists():
            shutil.rmtree(ae, ignore_errors=True)
            out["pretrain_seconds"] = run(["train", "--model", "conv", "--epochs",
                                           str(args.epochs), "--out", str(ae), "-q"])
        for tag, extra in (("default", []), ("former_default", OLD_FINETUNE)):
            clf = root / f"clf-{tag}"
            shutil.rmtree(clf, ignore_errors=True)
            seconds = run(["finetune", str(ae), "--labels", "100", "--out", str(clf), *extra])
            acc = 100 * json.loads((clf / "metrics.json").read_text())["test_accuracy"]
            out[f"finetune_{tag}"] = {"accuracy": acc, "seconds": seconds, "flags": extra}
            rows.append([f"finetune --labels 100 ({tag})", acc, seconds])
    if "denoise" in args.parts:
        for tag, extra in (("default", []), ("former_default", ["--model", "conv"])):
            den = root / f"denoise-{tag}"
            shutil.rmtree(den, ignore_errors=True)
            seconds = run(["train", "--corrupt", "gaussian:0.5", "--epochs",
                           str(args.denoise_epochs),
                           "--out", str(den), "-q", *extra])
            m = json.loads((den / "metrics.json").read_text())
            out[f"denoise_{tag}"] = {"model": m["model"], "psnr": m["test"]["psnr"],
                                     "noisy_psnr": m["corrupted_input"]["psnr"],
                                     "train_seconds": m["train_seconds"], "seconds": seconds}
            rows.append([f"train --corrupt gaussian:0.5 ({tag}: {m['model']})",
                         m["test"]["psnr"], seconds])
    print_table(["what", "accuracy % / PSNR dB", "seconds"], rows)
    print(write_result(args.name, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Few labels (DESIGN.md protocol): 10 / 100 / 1000 balanced labels x 3 seeds from Fashion-MNIST
train; test accuracy of (a) logistic regression on PCA-32, (b) the same network (encoder + head)
trained from scratch, (c) the autoencoder-pretrained encoder fine-tuned; mean ± std.

The autoencoder (`conv`, 64-d code) is pretrained once on the 55k training images of the standard
run split, without labels; (b) and (c) then run the same recipe (tasks/fewlabel.py: standardised
features, a logistic-regression probe as the head's start, fine-tuning with random shifts),
(b) from a random encoder at its own (higher) learning rate for every layer. (c) also reports the
frozen-encoder linear probe alone.

    python -m bench.fewlabel
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.device import setup_threads
from bench.common import IMG, ROOT, print_table, write_result

WORK = ROOT / "runs" / "bench"


def pretrain(args) -> tuple:
    """The autoencoder pretrained without labels; --reuse keeps an existing run of the same
    configuration (checked) instead of training it again."""
    from aekit.experiment import train_run
    from aekit.runs import load_model, read_config

    out = WORK / "fewlabel-pretrain"
    model_cfg = ModelConfig(args.model, latent_dim=args.latent, widths=tuple(args.widths))
    train_cfg = TrainConfig(dataset="fashion-mnist", epochs=args.pretrain_epochs, seed=0,
                            corrupt=args.corrupt)
    if args.reuse and (out / "model.safetensors").exists():
        run = read_config(out)
        same = run.train_cfg == train_cfg and all(
            getattr(run.model_cfg, f) == getattr(model_cfg, f)
            for f in ("name", "latent_dim", "widths", "options"))
        if not same:
            raise SystemExit(f"{out} was trained with another configuration; drop --reuse")
        print(f"reusing the pretrained autoencoder in {out}")
    else:
        if out.exists():
            shutil.rmtree(out)
        train_run(out, model_cfg, train_cfg, progress=False, log=lambda s: print(s, flush=True))
    return load_model(out)


def pca_lr(ds, n: int, seed: int, pca, z_test) -> float:
    from sklearn.linear_model import LogisticRegression

    from aekit.tasks.fewlabel import balanced_indices

    idx = balanced_indices(ds.train_y, n, 10, seed)
    z = pca.transform(ds.train_x[idx].reshape(len(idx), -1).numpy() / 255.0)
    lr = LogisticRegression(max_iter=5000).fit(z, ds.train_y[idx].numpy())
    return float(lr.score(z_test, ds.test_y.numpy()))


def network(ds, n: int, seed: int, model_cfg: ModelConfig, state: dict | None, args,
            probe_only: bool = False) -> float:
    """Encoder + linear head: from `state` (pretrained weights) or from scratch (None)."""
    from aekit.models import build_model
    from aekit.tasks.fewlabel import (
        Classifier,
        FinetuneConfig,
        accuracy,
        balanced_indices,
        finetune,
    )

    idx = balanced_indices(ds.train_y, n, 10, seed)
    scratch = state is None
    torch.manual_seed(seed)
    ae = build_model(model_cfg)
    if state is not None:
        ae.load_state_dict(state)
    cfg = FinetuneConfig(head="linear", steps=0 if probe_only else args.steps,
                         batch_size=args.batch_size, augment=args.augment,
                         lr=args.scratch_lr if scratch else args.lr,
                         encoder_lr_scale=1.0 if scratch else args.encoder_lr_scale, seed=seed)
    clf = Classifier(ae, 10, cfg.head)
    unlabeled = ds.train_x[torch.randperm(len(ds.train_x),
                                          generator=torch.Generator().manual_seed(0))[:10_000]]
    finetune(clf, ds.train_x[idx], ds.train_y[idx], cfg, unlabeled=unlabeled)
    return accuracy(clf, ds.test_x, ds.test_y)


def summarize(values: list[float]) -> dict:
    a = np.array(values) * 100
    return {"mean": float(a.mean()), "std": float(a.std()), "runs": [float(v) for v in a]}


def main() -> None:
    from sklearn.decomposition import PCA

    from aekit.data import load_dataset
    from aekit.report.plots import plot_curves

    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="conv")
    ap.add_argument("--widths", type=int, nargs="*", default=[], help="default: the model's")
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--corrupt", default="", help="denoising pretraining, e.g. mask:blocks")
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="reuse an existing pretrained run")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--encoder-lr-scale", type=float, default=0.3)
    ap.add_argument("--scratch-lr", type=float, default=1e-3, help="every layer, from scratch")
    ap.add_argument("--augment", default="shift")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    setup_threads(args.threads)
    ds = load_dataset("fashion-mnist")
    t0 = time.perf_counter()
    ae, run = pretrain(args)
    pretrain_seconds = time.perf_counter() - t0
    state, cfg = ae.state_dict(), ae.cfg
    pca = PCA(32, svd_solver="randomized", random_state=0).fit(
        ds.train_x.reshape(len(ds.train_x), -1).numpy() / 255.0)
    z_test = pca.transform(ds.test_x.reshape(len(ds.test_x), -1).numpy() / 255.0)
    methods = {
        "pca32_logreg": lambda n, s: pca_lr(ds, n, s, pca, z_test),
        "scratch": lambda n, s: network(ds, n, s, cfg, None, args),
        "pretrained_probe": lambda n, s: network(ds, n, s, cfg, state, args, probe_only=True),
        "pretrained_finetuned": lambda n, s: network(ds, n, s, cfg, state, args),
    }
    results: dict = {name: {} for name in methods}
    rows = []
    for n in args.labels:
        row = [n]
        for name, fn in methods.items():
            accs = []
            for seed in args.seeds:
                t = time.perf_counter()
                accs.append(fn(n, seed))
                print(f"{name} labels={n} seed={seed}: {accs[-1] * 100:.2f}% "
                      f"({time.perf_counter() - t:.0f}s)", flush=True)
            results[name][str(n)] = summarize(accs)
            row.append(f"{results[name][str(n)]['mean']:.1f} ± {results[name][str(n)]['std']:.1f}")
        rows.append(row)
    print_table(["labels", *methods], rows)
    plot_curves({name: (args.labels, [results[name][str(n)]["mean"] for n in args.labels])
                 for name in methods}, IMG / "fewlabel_accuracy.png", "labelled images",
                "test accuracy (%)", "Fashion-MNIST with few labels (mean of 3 seeds)", logx=True)
    write_result("fewlabel", {"args": vars(args), "pretrain_run": str(run.path),
                              "pretrain_seconds": round(pretrain_seconds, 1),
                              "pretrain_config": run.model_cfg.to_dict(),
                              "results": results})


if __name__ == "__main__":
    main()

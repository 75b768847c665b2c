"""Few labels (docs/DESIGN.md): 10 / 100 / 1000 balanced labels x 3 seeds from Fashion-MNIST
train; test accuracy of (a) logistic regression on PCA-32, (b) the same network (encoder + head)
trained from scratch, (c) the autoencoder-pretrained encoder fine-tuned; mean ± std.

The autoencoder (`conv`, 64-d code) is pretrained once on the 55k training images of the standard
run split, without labels; (b) and (c) then run the same recipe (tasks/fewlabel.py: standardised
features, a logistic-regression probe as the head's start, fine-tuning with random shifts),
(b) from a random encoder at its own (higher) learning rate for every layer. (c) also reports the
frozen-encoder linear probe alone.

`--consistency` adds FixMatch-style training on the unlabeled images (tasks/fewlabel.py), to (b)
and (c) alike. `--select val` is the pilot mode used to choose settings: the labelled images and
the unlabeled pool come from the 55k training part of the pretraining's split, and accuracy is
measured on its 5k validation part (so the test labels are never used for a choice). `--resume`
keeps every finished (method, labels, seed) result under runs/bench, so the full protocol can
run in several shorter jobs with the same command.

    python -m bench.fewlabel
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time

import numpy as np
import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.device import setup_threads
from bench.common import IMG, ROOT, print_table, write_result

WORK = ROOT / "runs" / "bench"
METHODS = ("pca32_logreg", "scratch", "pretrained_probe", "pretrained_finetuned")


def pretrain(args) -> tuple:
    """The autoencoder pretrained without labels; --reuse keeps an existing run of the same
    configuration (checked) instead of training it again."""
    from aekit.core.io import load_model, read_config
    from aekit.core.training import train_run
    from aekit.models import resolve_options

    tag = f"{args.model}{args.latent}-e{args.pretrain_epochs}" + (
        f"-w{'_'.join(map(str, args.widths))}" if args.widths else "") + (
        f"-{args.corrupt.replace(':', '_').replace('+', '_')}" if args.corrupt else "") + (
        f"-{args.pretrain_augment}" if args.pretrain_augment else "")
    out = WORK / f"fewlabel-pretrain-{tag}"
    model_cfg = ModelConfig(args.model, latent_dim=args.latent, widths=tuple(args.widths))
    train_cfg = TrainConfig(dataset="fashion-mnist", epochs=args.pretrain_epochs, seed=0,
                            corrupt=args.corrupt, augment=args.pretrain_augment)
    if args.reuse and (out / "model.safetensors").exists():
        run = read_config(out)
        # Runs made since options are stored resolved hold the defaults; older ones do not.
        wants = (model_cfg, resolve_options(model_cfg))
        same = run.train_cfg == train_cfg and any(all(
            getattr(run.model_cfg, f) == getattr(want, f)
            for f in ("name", "latent_dim", "widths", "options")) for want in wants)
        if not same:
            raise SystemExit(f"{out} was trained with another configuration; drop --reuse")
        print(f"reusing the pretrained autoencoder in {out}")
    else:
        if out.exists():
            shutil.rmtree(out)
        train_run(out, model_cfg, train_cfg, progress=False, log=lambda s: print(s, flush=True))
    return load_model(out)


def pca_lr(ds, n: int, seed: int, pca, z_eval, y_eval, pool_idx: torch.Tensor) -> float:
    from sklearn.linear_model import LogisticRegression

    idx = balanced_in_pool(ds.train_y, pool_idx, n, seed)
    z = pca.transform(ds.train_x[idx].reshape(len(idx), -1).numpy() / 255.0)
    lr = LogisticRegression(max_iter=5000).fit(z, ds.train_y[idx].numpy())
    return float(lr.score(z_eval, y_eval.numpy()))


def split(ds, select: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(candidate train indices, evaluation images, their labels): the whole train split and
    the test split, or for --select val the pretraining's 55k / 5k train / validation split."""
    from aekit.data import split_train_val

    if select == "test":
        return torch.arange(len(ds.train_x)), ds.test_x, ds.test_y
    train_idx, val_idx = split_train_val(len(ds.train_x), TrainConfig().val_fraction, 0)
    return train_idx, ds.train_x[val_idx], ds.train_y[val_idx]


class Networks:
    """Encoder + linear head runs, from the pretrained weights or from scratch, all with the same
    recipe. Label-propagation graphs depend only on the encoder (frozen at that point) and the
    unlabeled pool, so each is built once and reused across label counts."""

    def __init__(self, ds, model_cfg: ModelConfig, state: dict, args, candidates: torch.Tensor,
                 x_eval: torch.Tensor, y_eval: torch.Tensor) -> None:
        self.ds, self.cfg, self.state, self.args = ds, model_cfg, state, args
        self.x_eval, self.y_eval = x_eval, y_eval
        gen = torch.Generator().manual_seed(0)
        pool = candidates[torch.randperm(len(candidates), generator=gen)[: args.unlabeled or None]]
        self.pool = pool.sort().values  # train indices used as unlabeled images
        self.graphs: dict = {}
        self.last_pseudo: float | None = None

    def run(self, n: int, seed: int, pretrained: bool, probe_only: bool = False) -> float:
        from aekit.args import config_from_args
        from aekit.models import build_model
        from aekit.represent.config import FinetuneConfig
        from aekit.represent.fewlabel import Classifier, accuracy, finetune
        from aekit.represent.semisup import embedding_graph, pseudo_labels

        args, ds = self.args, self.ds
        idx = balanced_in_pool(ds.train_y, self.pool, n, seed)
        torch.manual_seed(seed)
        ae = build_model(self.cfg)
        if pretrained:
            ae.load_state_dict(self.state)
        semi = args.semi and not probe_only
        cfg = config_from_args(FinetuneConfig, args, steps=0 if probe_only else args.steps,
                               lr=args.lr if pretrained else args.scratch_lr,
                               encoder_lr_scale=args.encoder_lr_scale if pretrained else 1.0,
                               semi=semi, consistency=args.consistency and not probe_only,
                               seed=seed)
        clf = Classifier(ae, 10, cfg.head)
        unlabeled = ds.train_x[self.pool]
        pseudo = None
        if semi:
            clf.set_normalization(unlabeled)
            key = "pretrained" if pretrained else f"scratch-{seed}"
            if key not in self.graphs:
                self.graphs[key] = embedding_graph(clf, unlabeled, args.lp_k)
            rows = torch.searchsorted(self.pool, idx)  # labelled images are nodes of the pool
            pseudo = pseudo_labels(self.graphs[key], rows, ds.train_y[idx], 10, cfg.lp_alpha,
                                   cfg.lp_iters, cfg.lp_cmn)
            acc = pseudo.accuracy(ds.train_y[self.pool])  # a diagnostic, never used in training
            self.last_pseudo = round(acc * 100, 2)
            print(f"  pseudo-label accuracy on the unlabeled pool: {acc * 100:.2f}%", flush=True)
        history = finetune(clf, ds.train_x[idx], ds.train_y[idx], cfg, unlabeled=unlabeled,
                           pseudo=pseudo, normalize=not semi)
        if cfg.consistency and history:
            print(f"  confident unlabeled images at the end: {history[-1]['confident']:.2f}",
                  flush=True)
        return accuracy(clf, self.x_eval, self.y_eval)


def balanced_in_pool(y: torch.Tensor, pool: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The seed's n balanced labelled train indices, drawn from the pool (so they are nodes of
    the propagation graph)."""
    from aekit.represent.fewlabel import balanced_indices

    return pool[balanced_indices(y[pool], n, 10, seed)]


class Cache:
    """--resume: one JSON file per finished (method, labels, seed) run, in a folder named by a
    hash of every option that changes a result."""

    VOLATILE = ("labels", "seeds", "methods", "name", "reuse", "resume", "threads")

    def __init__(self, args, enabled: bool) -> None:
        key = {k: v for k, v in sorted(vars(args).items()) if k not in self.VOLATILE}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        self.dir = WORK / f"fewlabel-cache-{digest}"
        self.enabled, self.key = enabled, key

    def get(self, name: str, n: int, seed: int) -> dict | None:
        path = self.dir / f"{name}-{n}-{seed}.json"
        if self.enabled and path.is_file():
            return json.loads(path.read_text())
        return None

    def put(self, name: str, n: int, seed: int, entry: dict) -> None:
        from aekit.io import atomic_write_text

        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.dir / "options.json", json.dumps(self.key, indent=2) + "\n")
        atomic_write_text(self.dir / f"{name}-{n}-{seed}.json", json.dumps(entry) + "\n")


def summarize(values: list[float]) -> dict:
    a = np.array(values) * 100
    return {"mean": float(a.mean()), "std": float(a.std()), "runs": [float(v) for v in a]}


def main() -> None:
    from sklearn.decomposition import PCA

    from aekit.args import add_config_flags
    from aekit.data import load_dataset
    from aekit.eval.plots import plot_curves
    from aekit.represent.config import FinetuneConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--model", default="conv")
    ap.add_argument("--widths", type=int, nargs="*", default=[], help="default: the model's")
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--corrupt", default="", help="denoising pretraining, e.g. mask:blocks")
    ap.add_argument("--pretrain-epochs", type=int, default=6)
    ap.add_argument("--pretrain-augment", default="", help="pretraining augmentation (hflip)")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing pretrained run")
    ap.add_argument("--resume", action="store_true",
                    help="keep finished runs (runs/bench/fewlabel-cache-*); implies --reuse")
    # Every FinetuneConfig setting, with its help and default from the dataclass.
    add_config_flags(ap, FinetuneConfig)
    ap.add_argument("--scratch-lr", type=float, default=1e-3, help="every layer, from scratch")
    ap.add_argument("--unlabeled", type=int, default=0, help="unlabeled pool size (0: all)")
    ap.add_argument("--select", default="test", choices=["test", "val"],
                    help="val: pilot mode, accuracy on the 5k validation part of train")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--name", default="fewlabel", help="result JSON / plot name (pilots)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    args.reuse = args.reuse or args.resume
    setup_threads(args.threads)
    ds = load_dataset("fashion-mnist")
    t0 = time.perf_counter()
    ae, run = pretrain(args)
    pretrain_seconds = time.perf_counter() - t0
    if args.reuse:  # the time it took when it was trained
        pretrain_seconds = json.loads((run.path / "metrics.json").read_text()).get(
            "train_seconds", pretrain_seconds)
    state, cfg = ae.state_dict(), ae.cfg
    pca = PCA(32, svd_solver="randomized", random_state=0).fit(
        ds.train_x.reshape(len(ds.train_x), -1).numpy() / 255.0)
    candidates, x_eval, y_eval = split(ds, args.select)
    z_eval = pca.transform(x_eval.reshape(len(x_eval), -1).numpy() / 255.0)
    nets = Networks(ds, cfg, state, args, candidates, x_eval, y_eval)
    cache = Cache(args, args.resume)
    every = {
        "pca32_logreg": lambda n, s: pca_lr(ds, n, s, pca, z_eval, y_eval, nets.pool),
        "scratch": lambda n, s: nets.run(n, s, pretrained=False),
        "pretrained_probe": lambda n, s: nets.run(n, s, pretrained=True, probe_only=True),
        "pretrained_finetuned": lambda n, s: nets.run(n, s, pretrained=True),
    }
    methods = {name: every[name] for name in args.methods}
    results: dict = {name: {} for name in methods}
    pseudo_acc: dict = {}
    rows = []
    for n in args.labels:
        row = [n]
        for name, fn in methods.items():
            accs, secs = [], []
            for seed in args.seeds:
                entry = cache.get(name, n, seed)
                if entry is None:
                    t, nets.last_pseudo = time.perf_counter(), None
                    entry = {"accuracy": fn(n, seed), "seconds": time.perf_counter() - t,
                             "pseudo_label_accuracy": nets.last_pseudo}
                    cache.put(name, n, seed, entry)
                    where = ""
                else:
                    where = ", kept from an earlier job"
                accs.append(entry["accuracy"])
                if entry.get("pseudo_label_accuracy") is not None:
                    pseudo_acc.setdefault(name, {}).setdefault(str(n), []).append(
                        entry["pseudo_label_accuracy"])
                secs.append(entry["seconds"])
                print(f"{name} labels={n} seed={seed}: {accs[-1] * 100:.2f}% "
                      f"({entry['seconds']:.0f}s{where})", flush=True)
            results[name][str(n)] = summarize(accs)
            results[name][str(n)]["seconds"] = [round(v, 1) for v in secs]
            row.append(f"{results[name][str(n)]['mean']:.1f} ± {results[name][str(n)]['std']:.1f}")
        rows.append(row)
    print_table(["labels", *methods], rows)
    split_name = "test" if args.select == "test" else "validation (5k of train)"
    plot_curves({name: (args.labels, [results[name][str(n)]["mean"] for n in args.labels])
                 for name in methods}, IMG / f"{args.name}_accuracy.png", "labelled images",
                f"{split_name} accuracy (%)",
                f"Fashion-MNIST with few labels (mean of {len(args.seeds)} seeds)", logx=True,
                xticks=args.labels)
    compute = sum(sum(r["seconds"]) for m in results.values() for r in m.values())
    write_result(args.name, {"args": vars(args), "evaluated_on": split_name,
                              "runs_seconds": round(compute, 1),
                              "pretrain_run": str(run.path),
                              "pretrain_seconds": round(pretrain_seconds, 1),
                              "pretrain_config": run.model_cfg.to_dict(),
                              "pseudo_label_accuracy_percent": pseudo_acc,
                              "results": results})


if __name__ == "__main__":
    main()

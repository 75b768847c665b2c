"""One-class anomaly detection benchmark (Ruff et al. 2018; docs/DESIGN.md's protocol).

For each class K of a labelled dataset: fit on the training images of class K only, score the
whole test split, AUROC with the other classes as anomalies; the mean over classes is the
headline. PCA reconstruction error (k=32, fit on the same normal images) runs side by side in the
same process, and the single score parts of aekit's default (e.g. pixel MSE, SSIM) are reported
too, from the same fitted detectors. Time per class is wall clock and CPU time / threads (what the
same work takes on otherwise idle cores; the machine may be shared, its load average is recorded).

    python -m bench.anomaly                         # fashion-mnist, digits, mnist if present
    python -m bench.anomaly --datasets fashion-mnist --classes 0,6 --threads 2
    python -m bench.anomaly --protocol val --classes 2,4,6 --name anomaly_val   # model selection

Every run fits the detectors with all score parts and evaluates every combination of them
from the same fitted models ("combos"); the headline "aekit" is the default score. The `val`
protocol touches no test image: it holds out VAL_NORMAL training images of class K as normal and
VAL_ANOMALIES training images of the other classes as anomalies, and fits on the rest of class K;
settings (score, training) are chosen on it, then the `test` protocol is run once.

Writes bench/results/anomaly.json and docs/img/anomaly_auroc.png; prints a per-class table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from bench.common import IMG, print_table, write_result

# Published one-class AUROC (%) on Fashion-MNIST, per class (GEOM: Golan & El-Yaniv 2018).
GEOM_FASHION = [99.4, 97.6, 91.1, 89.9, 92.1, 93.4, 83.3, 98.9, 90.8, 99.2]
PUBLISHED_MEAN = {
    "fashion-mnist": {"Deep SVDD": 89.2, "GEOM": 93.5, "ARNet": 93.9},
    "mnist": {"DCAE": 89.7, "Deep SVDD": 94.8, "OCGAN": 97.5, "GEOM": 98.0},
}
TARGET = {"fashion-mnist": 94.0}
PCA_K = 32
EXAMPLE_CLASS = 0  # its detector draws docs/img/anomaly_heatmaps.png
VAL_NORMAL, VAL_ANOMALIES = 1000, 2000


def combos(det, parts: dict[str, np.ndarray], is_anomaly: np.ndarray) -> dict[str, float]:
    """AUROC (%) of every combination of parts, combined as the detector combines them (the sum
    of z-scores with held-out normal stats; `local` by its excess, Detector.combine_parts)."""
    from itertools import combinations

    from aekit.eval.metrics import auroc

    return {"+".join(c): 100 * auroc(det.combine_parts(parts, c), is_anomaly)
            for r in range(1, len(parts) + 1) for c in combinations(parts, r)}


def val_split(ds, k: int, seed: int = 0):
    """(fit images, evaluation images, is_anomaly) from the training split only."""
    gen = torch.Generator().manual_seed(seed + k)
    normal = ds.train_x[ds.train_y == k]
    perm = torch.randperm(len(normal), generator=gen)
    n_val = min(VAL_NORMAL, len(normal) // 5)
    others = ds.train_x[ds.train_y != k]
    n_anom = min(VAL_ANOMALIES, 2 * n_val)
    anom = others[torch.randperm(len(others), generator=gen)[:n_anom]]
    evalx = torch.cat([normal[perm[:n_val]], anom])
    is_anomaly = np.r_[np.zeros(n_val, bool), np.ones(len(anom), bool)]
    return normal[perm[n_val:]], evalx, is_anomaly


def example_grid(det, test_x: torch.Tensor, test_y: torch.Tensor, k: int, score: np.ndarray,
                 path, n: int = 9) -> None:
    """Rows: normal test images at regular score ranks (lowest to highest), their error maps;
    one image of each anomalous class (the one with its class's median score), their maps."""
    from aekit.data.images import save_grid

    y = test_y.numpy()
    normal_idx = np.flatnonzero(y == k)
    normal_idx = normal_idx[np.argsort(score[normal_idx])]
    normal_idx = normal_idx[np.linspace(0, len(normal_idx) - 1, n).round().astype(int)]
    anomal_idx = []
    for c in sorted(set(y.tolist()) - {k}):
        idx = np.flatnonzero(y == c)
        anomal_idx.append(idx[np.argsort(score[idx])][len(idx) // 2])
    rows = []
    for idx in (normal_idx, np.array(anomal_idx)):
        x = test_x[torch.as_tensor(idx)]
        rows += [x.float() / 255.0, det.heatmaps(x)]
    IMG.mkdir(parents=True, exist_ok=True)
    save_grid(path, rows)


def pca_scores(train_x: torch.Tensor, test_x: torch.Tensor, k: int = PCA_K) -> np.ndarray:
    """Squared reconstruction error of PCA-k fit on the normal images."""
    from sklearn.decomposition import PCA

    tr = train_x.reshape(len(train_x), -1).numpy().astype(np.float32) / 255.0  # (N, D)
    te = test_x.reshape(len(test_x), -1).numpy().astype(np.float32) / 255.0
    pca = PCA(n_components=min(k, *tr.shape), random_state=0).fit(tr)
    return ((pca.inverse_transform(pca.transform(te)) - te) ** 2).sum(1)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_dataset(name: str, classes: list[int] | None, params: dict, threads: int,
                protocol: str = "test") -> dict:
    from aekit.anomaly.detector import COMPONENTS, DEFAULT_SCORE, Detector, parse_score
    from aekit.data import load_dataset
    from aekit.eval.metrics import auroc

    ds = load_dataset(name)
    classes = classes if classes is not None else list(range(len(ds.classes)))
    default = "+".join(parse_score(params.get("scores", DEFAULT_SCORE)))
    fit_params = {**params, "scores": "+".join(COMPONENTS)}
    rows, t_all, c_all = [], *_clock()
    for k in classes:
        if protocol == "val":
            normal, eval_x, is_anomaly = val_split(ds, k)
        else:
            normal, eval_x, is_anomaly = ds.train_x[ds.train_y == k], ds.test_x, \
                (ds.test_y != k).numpy()
        t0, c0 = _clock()
        det = Detector(**fit_params).fit(normal)
        _, parts = det.score_parts(eval_x)
        t1, c1 = _clock()
        pca = pca_scores(normal, eval_x)
        t2, c2 = _clock()
        score = det.combine_parts(parts, default)
        held = det.combine_parts(det.heldout_parts_, default)
        rate = det.contamination if det.contamination is not None else det.fpr
        flagged = score > np.quantile(held, 1.0 - rate, method="higher")
        if name == "fashion-mnist" and k == EXAMPLE_CLASS and protocol == "test":
            example_grid(det, ds.test_x, ds.test_y, k, score, IMG / "anomaly_heatmaps.png")
        row = {"class": k, "name": ds.classes[k], "n_train": len(normal),
               "aekit": 100 * auroc(score, is_anomaly),
               "parts": {p: 100 * auroc(v, is_anomaly) for p, v in parts.items()},
               "combos": combos(det, parts, is_anomaly),
               "pca32": 100 * auroc(pca, is_anomaly),
               "test_fpr": float(flagged[~is_anomaly].mean()),
               "test_tpr": float(flagged[is_anomaly].mean()),
               "seconds": round(t1 - t0, 1),
               "cpu_seconds_per_thread": round((c1 - c0) / threads, 1),
               "pca_seconds": round(t2 - t1, 2)}
        rows.append(row)
        print(f"  {name} class {k} ({ds.classes[k]}): aekit {row['aekit']:.2f}  "
              f"PCA-32 {row['pca32']:.2f}  ({row['seconds']:.0f}s)", flush=True)
    t_end, c_end = _clock()
    mean = {key: float(np.mean([r[key] for r in rows])) for key in ("aekit", "pca32")}
    mean["parts"] = {p: float(np.mean([r["parts"][p] for r in rows])) for p in rows[0]["parts"]}
    mean["combos"] = {c: float(np.mean([r["combos"][c] for r in rows]))
                      for c in rows[0]["combos"]}
    return {"dataset": name, "protocol": protocol, "default_score": default, "classes": classes,
            "rows": rows, "mean": mean,
            "wall_seconds": round(t_end - t_all, 1),
            "cpu_seconds_per_thread": round((c_end - c_all) / threads, 1),
            "published_mean": PUBLISHED_MEAN.get(name, {}), "target_mean": TARGET.get(name)}


def plot(results: list[dict], path) -> None:
    from aekit.eval.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 3.6 * len(results)), squeeze=False)
    for ax, res in zip(axes[:, 0], results, strict=True):
        labels = [r["name"] for r in res["rows"]] + ["mean"]
        series = {"aekit": [r["aekit"] for r in res["rows"]] + [res["mean"]["aekit"]],
                  f"PCA-{PCA_K}": [r["pca32"] for r in res["rows"]] + [res["mean"]["pca32"]]}
        if res["dataset"] == "fashion-mnist" and res["classes"] == list(range(10)):
            series["GEOM (published)"] = GEOM_FASHION + [float(np.mean(GEOM_FASHION))]
        x = np.arange(len(labels))
        width = 0.8 / len(series)
        for i, (name, vals) in enumerate(series.items()):
            bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=name)
            if name == "aekit":
                ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        if res.get("target_mean"):
            ax.axhline(res["target_mean"], color="k", lw=0.8, ls="--",
                       label=f"target mean {res['target_mean']}")
        low = min(min(v) for v in series.values())
        ax.set_ylim(max(0, low - 5), 100.5)
        ax.set_xticks(x, labels, rotation=20, fontsize=8)
        ax.set_ylabel("AUROC (%)")
        ax.set_title(f"one-class AUROC on {res['dataset']} (normal class vs the rest)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="lower left", ncol=len(series) + 1)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default="fashion-mnist,digits,mnist")
    p.add_argument("--classes", default=None, help="comma-separated class indices (default all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--params", default="{}", help="JSON of Detector settings to override")
    p.add_argument("--name", default="anomaly", help="result file name (bench/results/NAME.json)")
    p.add_argument("--protocol", choices=("test", "val"), default="test",
                   help="test: the one-class protocol; val: train split only, for model selection")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = {"random_state": 0, **json.loads(args.params)}
    classes = [int(c) for c in args.classes.split(",")] if args.classes else None
    load_before = os.getloadavg()
    results, skipped = [], {}
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        why = _missing(name)
        if why:
            skipped[name] = why
            print(f"== {name}: skipped: {why}")
            continue
        print(f"== {name}", flush=True)
        results.append(run_dataset(name, classes, params, args.threads, args.protocol))
    for res in results:
        print(f"\n{res['dataset']}: one-class AUROC (%), wall {res['wall_seconds']:.0f} s, "
              f"CPU time / {args.threads} threads {res['cpu_seconds_per_thread']:.0f} s")
        parts = list(res["rows"][0]["parts"])
        head = ["class", "name", "aekit", *parts, f"PCA-{PCA_K}", "sec"]
        if res["dataset"] == "fashion-mnist":
            head.insert(-1, "GEOM")
        table = []
        for r in res["rows"]:
            line = [r["class"], r["name"], r["aekit"], *[r["parts"][q] for q in parts],
                    r["pca32"], r["seconds"]]
            if res["dataset"] == "fashion-mnist":
                line.insert(-1, GEOM_FASHION[r["class"]])
            table.append(line)
        mean = ["mean", "", res["mean"]["aekit"], *[res["mean"]["parts"][q] for q in parts],
                res["mean"]["pca32"], res["wall_seconds"]]
        if res["dataset"] == "fashion-mnist":
            mean.insert(-1, float(np.mean([GEOM_FASHION[c] for c in res["classes"]])))
        print_table(head, [*table, mean])
        best = sorted(res["mean"]["combos"].items(), key=lambda kv: -kv[1])[:12]
        print(f"best score combinations ({res['protocol']} protocol, mean AUROC %):")
        print_table(["score", "mean", *[str(r["class"]) for r in res["rows"]]],
                    [[c, m, *[r["combos"][c] for r in res["rows"]]] for c, m in best])
    out = write_result(args.name, {"params": params, "results": results, "skipped": skipped,
                                   "load_average_before": load_before,
                                   "load_average_after": os.getloadavg()})
    if results and args.protocol == "test":
        IMG.mkdir(parents=True, exist_ok=True)
        img = IMG / f"{args.name}_auroc.png"
        plot(results, img)
        print(f"\nwrote {out} and {img}")
    return 0


def _missing(name: str) -> str:
    """Why a dataset cannot be loaded here ('' when it can), in the loader's own words."""
    from aekit.data import load_dataset
    from aekit.errors import AekitError

    try:
        load_dataset(name)
    except AekitError as e:
        return str(e)
    return ""


if __name__ == "__main__":
    sys.exit(main())

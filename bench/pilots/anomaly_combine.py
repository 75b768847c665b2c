"""Pilot: can another rule for combining the detector's score parts serve every column at once?

The default detector adds the z-scores of its network parts (ssim, knn, gauss) and lets the
`local` part add only its excess over the 0.95 quantile of the held-out normal images' local
z-scores. One fitted `Detector()` per set (the matrix's anomaly protocol: the three textures of
bench/textures.py, the photo patches with bench.matrix's defects, and three one-class sets each of
`digits`, `fashion-mnist` and `mnist`); its raw parts on the test and held-out images are kept
under runs/pilots/anomaly_combine/ (reused when present), and every rule is an AUROC of the same
parts:

- each part alone, `rest` (the sum of the network parts' z-scores);
- `gate Q`: the default rule with the local gate at the held-out quantile Q (1: the maximum);
- `max`, `sum`: the network composite in units of its held-out spread, and the local z-score,
  combined by their maximum or their sum;
- `p-max`, `p-sum`: each of the two as its held-out tail probability (-log p), max or sum.

    python -m bench.pilots.anomaly_combine --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import ROOT, print_table, write_result

CACHE = ROOT / "runs" / "pilots" / "anomaly_combine"
SETS = ("brick", "grass", "gravel", "photos32", "photos64", "digits@0", "digits@3", "digits@8",
        "fashion-mnist@0", "fashion-mnist@6", "fashion-mnist@8", "mnist@2", "mnist@7")
NETWORK_PARTS = ("ssim", "knn", "gauss")
GATES = (1.0, 0.95, 0.9, 0.5)


def _set(name: str) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray, np.ndarray]:
    """(normal images, test images, is_anomaly) of one set, as the matrix draws them."""
    from aekit.data import load_dataset
    from bench import matrix
    from bench import textures as T

    if name in T.TEXTURES:
        img = T.texture(name)
        rng = np.random.default_rng(T.TEXTURES.index(name))  # seed 0, as bench/textures.py
        train = T.crops(img, (0, T.TRAIN_ROWS), T.N_TRAIN, T.PATCH, rng)
        test, _, kinds = T.test_set(img, rng)
        return train[:, None], test[:, None], kinds != "clean"
    if name.startswith("photos"):
        ds = load_dataset(matrix.dataset(name))
        return ds.train_x, *matrix._defective(ds.test_x)
    col, k = name.split("@")
    ds = load_dataset(matrix.dataset(col))
    return ds.train_x[ds.train_y == int(k)], ds.test_x, (ds.test_y != int(k)).numpy()


def parts_of(name: str) -> dict[str, np.ndarray]:
    """The fitted detector's raw parts (t_*: test, h_*: held-out), stats (s_*) and labels."""
    from aekit.anomaly.detector import Detector

    path = CACHE / f"{name}.npz"
    if not path.exists():
        normal, test, is_anom = _set(name)
        det = Detector().fit(normal)
        _, parts = det.score_parts(test)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, y=np.asarray(is_anom).astype(int),
                 **{f"t_{k}": v for k, v in parts.items()},
                 **{f"h_{k}": np.asarray(v) for k, v in det.heldout_parts_.items()},
                 **{f"s_{k}": np.array(v) for k, v in det.stats_.items()})
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def rules(d: dict[str, np.ndarray]) -> dict[str, float]:
    from aekit.eval.metrics import auroc

    y = d["y"]
    names = [k[2:] for k in d if k.startswith("t_")]
    zt = {k: (d[f"t_{k}"] - d[f"s_{k}"][0]) / d[f"s_{k}"][1] for k in names}
    zh = {k: (d[f"h_{k}"] - d[f"s_{k}"][0]) / d[f"s_{k}"][1] for k in names}
    rest_t = sum(zt[k] for k in NETWORK_PARTS)
    rest_h = sum(zh[k] for k in NETWORK_PARTS)
    spread = float(rest_h.std()) or 1.0
    out = {k: auroc(d[f"t_{k}"], y) for k in names} | {"rest": auroc(rest_t, y)}
    for q in GATES:
        top = np.quantile(zh["local"], q)
        out[f"gate {q}"] = auroc(rest_t + spread * np.maximum(zt["local"] - top, 0.0), y)
    a, a_held, b = rest_t / spread, rest_h / spread, zt["local"]
    out["max"], out["sum"] = auroc(np.maximum(a, b), y), auroc(a + b, y)

    def tail(v: np.ndarray, held: np.ndarray) -> np.ndarray:  # -log of the held-out tail share
        return -np.log((1 + (held[None, :] >= v[:, None]).sum(1)) / (len(held) + 1))
    pa, pb, tie = tail(a, a_held), tail(b, zh["local"]), 1e-6 * (a + b)
    out["p-max"], out["p-sum"] = auroc(np.maximum(pa, pb) + tie, y), auroc(pa + pb + tie, y)
    return {k: round(100 * v, 2) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sets", nargs="+", default=list(SETS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    table = {name: rules(parts_of(name)) for name in args.sets}
    cols = list(next(iter(table.values())))
    print_table(["set", *cols], [[name, *(r[c] for c in cols)] for name, r in table.items()])
    write_result("anomaly_combine", {"sets": table, "seconds": round(time.perf_counter() - t0)},
                 ROOT / "bench" / "results" / "pilots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

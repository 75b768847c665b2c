"""Pilot: does a multi-scale filter-bank feature, compared by nearest neighbour, localise defects
on stochastic textures where the raw-pixel `local` part does not?

The `local` part (the default heat map) compares each raw 5x5 neighbourhood with its nearest
normal one; a larger raw window is too many dimensions for a nearest neighbour to mean anything.
Here every pixel gets a short vector of classic texture statistics at three scales (sigma 1, 2,
4 px: Gaussian local mean, local standard deviation, the smoothed gradient, the Laplacian of
Gaussian, and the three structure-tensor terms), each standardised on the normal patches. A
random sample of the normal patches' vectors is the memory bank; a pixel's score is the mean
distance to its K nearest bank vectors (PatchCore's rule, with hand-made instead of learned
features). Same data, seed and scoring as bench/pilots/texture_maps.py.

    python -m bench.pilots.texture_features --threads 1
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from bench import textures as T
from bench.pilots.texture_maps import HOLD, local_map, pilot_main, scores, to_u8

SCALES = (1.0, 2.0, 4.0)
BANK = 60_000  # normal feature vectors kept
K = 3
RESULT = Path("bench/results/pilots/texture_features.json")


def _g(x: np.ndarray, sigma: float, order=(0, 0)) -> np.ndarray:
    return np.stack([gaussian_filter(a, sigma, order=order, mode="reflect") for a in x])


def features(x: np.ndarray, scales=SCALES) -> np.ndarray:
    """(N, H, W) floats in [0, 1] -> (N, H, W, D) texture statistics, D = 8 per scale."""
    out = []
    for s in scales:
        m = _g(x, s)
        sd = np.sqrt(np.clip(_g(x * x, s) - m * m, 0, None))
        gy, gx = _g(x, s, (1, 0)), _g(x, s, (0, 1))
        log = _g(x, s, (2, 0)) + _g(x, s, (0, 2))
        jxx, jyy, jxy = _g(gx * gx, 2 * s), _g(gy * gy, 2 * s), _g(gx * gy, 2 * s)
        out += [m, sd, gx * s, gy * s, log * s * s, jxx * s * s, jyy * s * s, jxy * s * s]
    return np.stack(out, -1).astype(np.float32)


def knn_map(bank: torch.Tensor, f: np.ndarray, k: int = K, chunk: int = 8192) -> np.ndarray:
    q = torch.from_numpy(f.reshape(-1, f.shape[-1]))  # (N*H*W, D)
    out = torch.empty(q.shape[0])
    for i in range(0, q.shape[0], chunk):
        d = torch.cdist(q[i : i + chunk], bank)  # (chunk, BANK)
        out[i : i + chunk] = d.topk(k, largest=False).values.mean(1)
    return out.reshape(f.shape[:3]).numpy()


def run(name: str, seed: int) -> dict:
    img = T.texture(name)
    rng = np.random.default_rng(seed + T.TEXTURES.index(name))  # as bench/textures.py draws
    train = T.crops(img, (0, T.TRAIN_ROWS), T.N_TRAIN, T.PATCH, rng)
    test, masks, kinds = T.test_set(img, rng)
    fit, hold = train[:-HOLD], train[-HOLD:]
    ff = features(fit).reshape(-1, 8 * len(SCALES))  # (pixels, D)
    mu, sd = ff.mean(0), ff.std(0) + 1e-6
    flat = (ff - mu) / sd
    pick = np.random.default_rng(seed).choice(flat.shape[0], BANK, replace=False)
    bank = torch.from_numpy(flat[pick])
    f_test, f_hold = (features(test) - mu) / sd, (features(hold) - mu) / sd  # (N, H, W, D)
    coarse = slice(-8, None)  # the 8 statistics of the largest scale
    maps = {"features": knn_map(bank, f_test),
            "features@4": knn_map(bank[:, coarse], f_test[..., coarse])}
    held = {"features": knn_map(bank, f_hold),
            "features@4": knn_map(bank[:, coarse], f_hold[..., coarse])}
    maps["local@1"] = local_map(to_u8(fit), to_u8(test), 1)
    held["local@1"] = local_map(to_u8(fit), to_u8(hold), 1)
    z = {k: (maps[k] - held[k].mean()) / (held[k].std() + 1e-9) for k in maps}
    maps["max(features, local@1)"] = np.maximum(z["features"], z["local@1"])
    maps["sum(features, local@1)"] = z["features"] + z["local@1"]
    return {k: scores(m, masks, kinds) for k, m in maps.items()}


def main(argv: list[str] | None = None) -> int:
    return pilot_main(argv, __doc__, run, "filter-bank kNN maps", RESULT,
                      {"scales": SCALES, "bank": BANK, "k": K})


if __name__ == "__main__":
    raise SystemExit(main())

"""Pilot: which per-pixel map finds stains and tone shifts on stochastic textures?

The textures benchmark (bench/textures.py) misses its targets on grass and gravel because the
default heat map (the `local` part: the distance of each 5x5 neighbourhood to the nearest normal
one) does not see a region whose grey level moved by a few standard deviations of the texture's
own local mean. This pilot scores the same test patches with maps that need no network, on the
benchmark's data and seed:

- `local@1`, `local@2`, `local@4`: the local part on the image average-pooled by 1, 2 and 4 (a
  5x5 neighbourhood then spans 5, 10 and 20 pixels), upsampled back;
- `tone`: the per-pixel z-score of the Gaussian-weighted local mean and standard deviation
  (sigma 2 px) against the same position in the normal patches, the larger of the two;
- combinations: each map standardised by its values on 200 held-out normal patches, then the
  pixelwise maximum (or sum).

Pixel AUROC (defective and clean patches, every pixel), image AUROC (the maximum of the map
blurred by 1 px), and the pixel AUROC per defect kind against the clean patches' pixels.

    python -m bench.pilots.texture_maps
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from aekit.anomaly.scores import local_bank, local_maps
from aekit.eval.metrics import auroc
from bench import textures as T

HOLD = 200  # normal training patches kept aside to standardise each map
RESULT = Path("bench/results/pilots/texture_maps.json")


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([gaussian_filter(a, sigma, mode="reflect") for a in x])


def tone_map(train: np.ndarray, test: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """max(|z| of the local mean, |z| of the local std), against each position's statistics
    over the normal patches (N, H, W) floats in [0, 1]."""
    def feats(x):
        m = _blur(x, sigma)
        s = np.sqrt(np.clip(_blur(x * x, sigma) - m * m, 0, None))
        return np.stack([m, s], 1)  # (N, 2, H, W)

    ft, fx = feats(train), feats(test)
    z = np.abs((fx - ft.mean(0, keepdims=True)) / (ft.std(0, keepdims=True) + 1e-6))
    return z.max(1)


def _pooled(x: torch.Tensor, f: int) -> torch.Tensor:
    """uint8 (N, C, H, W) average-pooled by f, still uint8."""
    if f == 1:
        return x
    return (F.avg_pool2d(x.float() / 255, f) * 255).round().to(torch.uint8)


def to_u8(a: np.ndarray) -> torch.Tensor:
    """(N, H, W) floats in [0, 1] -> uint8 (N, 1, H, W), what the `local` part reads."""
    return torch.from_numpy((a[:, None] * 255).round().astype(np.uint8))


def local_map(fit: torch.Tensor, x: torch.Tensor, f: int) -> np.ndarray:
    m = local_maps(_pooled(x, f), local_bank(_pooled(fit, f)))  # (N, H/f, W/f)
    if f > 1:
        m = F.interpolate(m[:, None], size=x.shape[2:], mode="bilinear",
                          align_corners=False)[:, 0]
    return m.numpy()


def scores(m: np.ndarray, masks: np.ndarray, kinds: np.ndarray) -> dict:
    keep = kinds != "pure noise"
    clean = m[kinds == "clean"].ravel()
    per_kind = {}
    for k in T.DEFECTS:
        values = np.r_[clean, m[kinds == k].ravel()]
        labels = np.r_[np.zeros(clean.size), masks[kinds == k].ravel()]
        per_kind[k] = round(100 * auroc(values, labels), 1)
    return {"pixel_auroc": round(100 * auroc(m[keep].ravel().astype(np.float64),
                                             masks[keep].ravel().astype(int)), 1),
            "image_auroc": round(100 * auroc(_blur(m, 1.0).max((1, 2)),
                                             (kinds != "clean").astype(int)), 1),
            "per_kind_pixel_auroc": per_kind}


def run(name: str, seed: int) -> dict:
    img = T.texture(name)
    rng = np.random.default_rng(seed + T.TEXTURES.index(name))  # as bench/textures.py draws
    train = T.crops(img, (0, T.TRAIN_ROWS), T.N_TRAIN, T.PATCH, rng)
    test, masks, kinds = T.test_set(img, rng)
    fit, hold, x = to_u8(train[:-HOLD]), to_u8(train[-HOLD:]), to_u8(test)
    maps, held = {}, {}
    for f in (1, 2, 4):
        maps[f"local@{f}"], held[f"local@{f}"] = local_map(fit, x, f), local_map(fit, hold, f)
    maps["tone"] = tone_map(train[:-HOLD], test)
    held["tone"] = tone_map(train[:-HOLD], train[-HOLD:])
    z = {k: (maps[k] - held[k].mean()) / (held[k].std() + 1e-9) for k in maps}
    combos = {"max(local@1, local@2, local@4)": np.maximum.reduce([z["local@1"], z["local@2"],
                                                                  z["local@4"]]),
              "max(local@1, tone)": np.maximum(z["local@1"], z["tone"]),
              "max(local@1, local@2, tone)": np.maximum.reduce([z["local@1"], z["local@2"],
                                                               z["tone"]]),
              "sum(local@1, local@2, tone)": z["local@1"] + z["local@2"] + z["tone"]}
    return {k: scores(m, masks, kinds) for k, m in {**maps, **combos}.items()}


def main(argv: list[str] | None = None) -> int:
    return pilot_main(argv, __doc__, run, "maps without a network", RESULT)


def pilot_main(argv, doc: str, run_one, what: str, result: Path, extra: dict | None = None) -> int:
    """The texture pilots' command: every texture through run_one(name, seed), the JSON to
    result, the table to stdout."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = {"protocol": f"bench/textures.py data, seed {args.seed}; {what}", **(extra or {}),
           "textures": {name: run_one(name, args.seed) for name in T.TEXTURES}}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps(out, indent=1))
    print_rows(out["textures"])
    return 0


def print_rows(textures: dict) -> None:
    """One line per map and texture: pixel and image AUROC, then the pixel AUROC per kind."""
    for name, rows in textures.items():
        print(name)
        for k, r in rows.items():
            print(f"  {k:32s} pixel {r['pixel_auroc']:5.1f}  image {r['image_auroc']:5.1f}  "
                  + " ".join(f"{d} {v}" for d, v in r["per_kind_pixel_auroc"].items()))


if __name__ == "__main__":
    raise SystemExit(main())

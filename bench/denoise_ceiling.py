"""How much can any denoiser gain on a dataset at sigma = 25/255? Three reference estimators
fitted on the training images, scored on the test split with the same clipped noise the
denoising row of bench/matrix.py uses:

- linear MMSE (Wiener): the best affine map from noisy to clean pixels, fitted by least squares
  on noisy copies of the training images (clipping included, so no noise model is assumed);
- empirical-prior posterior mean: the clean image's expectation when the prior is the training
  set itself (a kernel-weighted average of training images), best of a few kernel widths;
- Gaussian-mixture posterior mean: the exact expectation under a full-covariance mixture fitted
  to the training images (each component's Wiener filter, weighted by how well it explains the
  noisy image; the clipping is not modelled), for a few component counts.

    python -m bench.denoise_ceiling --datasets digits fashion-mnist idx:../shared/data/mnist

Writes bench/results/denoise_ceiling.json. Images of more than MAX_PIXELS values are skipped:
the linear map is a (D, D) matrix.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SIGMA = 25 / 255
MAX_PIXELS = 3072
FIT_IMAGES = 20_000  # training images the linear map is fitted on (noisy copies)
PRIOR_IMAGES = 10_000  # training images the empirical prior holds
TEST_IMAGES = 2_000
WIDTHS = (1.0, 2.0, 4.0)  # kernel variance as a multiple of sigma^2
COMPONENTS = (5, 10, 20)  # Gaussian-mixture sizes tried
MIXTURE_IMAGES = 10_000  # training images the mixture is fitted on
MIXTURE_RIDGE = 3e-3  # added to each component's covariance diagonal: 1,500 images of 64 pixels
#                       leave some components with few members
OUT = Path(__file__).resolve().parent / "results" / "denoise_ceiling.json"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def _noisy(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(x + SIGMA * rng.standard_normal(x.shape), 0, 1)


def linear_mmse(train: np.ndarray, test_noisy: np.ndarray, rng) -> np.ndarray:
    x = train[:FIT_IMAGES]
    y = _noisy(x, rng)
    mx, my = x.mean(0), y.mean(0)
    cyy = (y - my).T @ (y - my) / len(y)  # (D, D)
    cxy = (x - mx).T @ (y - my) / len(y)
    a = np.linalg.solve(cyy + 1e-6 * np.eye(len(cyy)), cxy.T).T  # x_hat = A (y - my) + mx
    return np.clip((test_noisy - my) @ a.T + mx, 0, 1)


def posterior_mean(train: np.ndarray, test_noisy: np.ndarray, width: float) -> np.ndarray:
    prior = train[:PRIOR_IMAGES]
    out = []
    for q in np.array_split(test_noisy, max(1, len(test_noisy) // 250)):
        d2 = (q ** 2).sum(1)[:, None] - 2 * q @ prior.T + (prior ** 2).sum(1)[None]
        logw = -d2 / (2 * width * SIGMA ** 2)
        w = np.exp(logw - logw.max(1, keepdims=True))
        out.append((w / w.sum(1, keepdims=True)) @ prior)
    return np.concatenate(out)


def mixture_mean(train: np.ndarray, test_noisy: np.ndarray, components: int) -> np.ndarray:
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(components, covariance_type="full", reg_covar=MIXTURE_RIDGE,
                          max_iter=100, random_state=0).fit(train[:MIXTURE_IMAGES])
    noise = SIGMA ** 2 * np.eye(train.shape[1])
    parts = list(zip(gmm.means_, gmm.covariances_, gmm.weights_, strict=True))
    # log p(y, k) for each test image and component: the noisy image is N(mean_k, cov_k + s^2 I)
    logp = np.stack([multivariate_normal(m, c + noise).logpdf(test_noisy) + np.log(w)
                     for m, c, w in parts], 1)  # (N, K)
    resp = np.exp(logp - logsumexp(logp, 1, keepdims=True))
    out = np.zeros_like(test_noisy)
    for k, (m, c, _) in enumerate(parts):
        # the component's Wiener filter c (c + s^2 I)^-1, transposed for row vectors
        out += resp[:, k:k + 1] * (m + (test_noisy - m) @ np.linalg.solve(c + noise, c))
    return np.clip(out, 0, 1)


def run(name: str) -> dict:
    from aekit.data import load_dataset

    try:
        ds = load_dataset(name)
    except ValueError as err:  # e.g. the MNIST files are not on this machine
        return {"skipped": str(err)}
    train = ds.train_x.numpy().reshape(len(ds.train_x), -1).astype(np.float64) / 255
    test = ds.test_x.numpy().reshape(len(ds.test_x), -1).astype(np.float64)[:TEST_IMAGES] / 255
    if train.shape[1] > MAX_PIXELS:
        return {"skipped": f"{train.shape[1]} values an image (limit {MAX_PIXELS})"}
    rng = np.random.default_rng(0)
    noisy = _noisy(test, rng)
    t0 = time.perf_counter()
    row = {"train_images": len(train), "test_images": len(test), "noisy": _psnr(noisy, test),
           "linear_mmse": _psnr(linear_mmse(train, noisy, rng), test)}
    row["posterior_mean"] = {str(w): _psnr(posterior_mean(train, noisy, w), test)
                             for w in WIDTHS}
    row["mixture_mean"] = {str(k): _psnr(mixture_mean(train, noisy, k), test)
                           for k in COMPONENTS}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"])
    p.add_argument("--out", type=Path, default=OUT, help="result JSON (default: %(default)s)")
    args = p.parse_args(argv)
    rows = {}
    for name in args.datasets:
        rows[name] = run(name)
        print(name, json.dumps(rows[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"sigma": SIGMA, "date": time.strftime("%Y-%m-%d"),
                                    "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

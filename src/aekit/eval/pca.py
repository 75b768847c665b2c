"""PCA, fitted one way for every use: the reconstruction baseline next to each run, the codec's
PCA + quantization baseline, and the anomaly detector's PCA-residual score.

Images are uint8 (N, C, H, W) or (N, ...); pixels are flattened and scaled to [0, 1]. The exact
fit is the eigendecomposition of the float64 D x D covariance: one pass over the data, seconds
even for D = 3,072. For a code much smaller than D (k < D / 4) a randomized SVD finds the leading
components in a few passes without forming the covariance, which is what keeps the baseline a
small share of a run on large images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PCA:
    mean: np.ndarray  # (D,) float64
    components: np.ndarray  # (k, D) float64, rows by descending variance
    fit_index: np.ndarray  # which training images the fit used

    @property
    def k(self) -> int:
        return len(self.components)

    def reconstruct(self, x: np.ndarray, keep: int | None = None) -> np.ndarray:
        """Float images (N, D) in [0, 1] projected on the first `keep` components (all when
        None) and back; not clipped."""
        basis = self.components[:keep]  # (keep, D)
        return (x - self.mean) @ basis.T @ basis + self.mean

    def as_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (D,), components (k, D)) as float32 tensors."""
        return (torch.from_numpy(self.mean).float(),
                torch.from_numpy(self.components).float().contiguous())


def flat_unit(x: torch.Tensor | np.ndarray, dtype=np.float64) -> np.ndarray:
    """uint8 images (N, ...) -> (N, D) floats in [0, 1]."""
    arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return arr.reshape(len(arr), -1).astype(dtype) / 255.0


def fit_pca(train_uint8: torch.Tensor | np.ndarray, k: int | None = None, *, seed: int = 0,
            max_images: int | None = None, shuffle: bool = False, exact: bool = False) -> PCA:
    """PCA with `k` components (None: all D) on up to `max_images` training images: the first
    ones, or a seeded random subset with `shuffle`. k is clipped to what the data allows. The
    fit is exact when `exact` or when k >= D / 4, else randomized."""
    n = len(train_uint8)
    index = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    index = index[:max_images] if max_images else index
    d = int(np.prod(train_uint8.shape[1:]))
    k = d if k is None else max(1, min(k, len(index), d))
    if exact or 4 * k >= d:
        x = flat_unit(train_uint8[index] if shuffle else train_uint8[:len(index)])
        mean = x.mean(0)
        _, vecs = np.linalg.eigh(np.cov((x - mean).T))  # ascending eigenvalues
        components = np.ascontiguousarray(vecs[:, ::-1][:, :k].T)
    else:
        from sklearn.decomposition import PCA as RandomizedPCA

        x = flat_unit(train_uint8[index] if shuffle else train_uint8[:len(index)], np.float32)
        fitted = RandomizedPCA(n_components=k, svd_solver="randomized", random_state=seed).fit(x)
        mean = fitted.mean_.astype(np.float64)
        components = fitted.components_.astype(np.float64)
    return PCA(mean, components, index)

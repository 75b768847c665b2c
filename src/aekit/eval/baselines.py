"""Classical baselines measured on the same test images as the model."""

from __future__ import annotations

import numpy as np
import torch

from aekit.eval.evaluate import input_batches, measure
from aekit.eval.pca import PCA, fit_pca, flat_unit

MAX_FIT = 60000  # training images the baseline PCA is fitted on (the first ones)


def pca_reconstruct(pca: PCA, x_uint8: torch.Tensor, keep: int | None = None) -> torch.Tensor:
    """Reconstruct with the first `keep` components (all when None), clipped to [0, 1]."""
    rec = pca.reconstruct(flat_unit(x_uint8, np.float32), keep)
    return torch.from_numpy(np.clip(rec, 0.0, 1.0).astype(np.float32)).reshape(x_uint8.shape)


def pca_baseline(train_x: torch.Tensor, test_x: torch.Tensor, k: int, seed: int = 0,
                 corrupt=None, batch_size: int = 1000) -> dict:
    """{mse, psnr, ssim, k} of PCA-k reconstruction of the test set.

    With `corrupt` (restoration runs) PCA, fitted on clean training images, projects the
    *corrupted* test images and is scored against the clean ones: classical PCA restoration,
    with the noise `evaluate_set` draws (`input_batches`: same seed, same batches).
    """
    pca = fit_pca(train_x, k, seed=seed, max_images=MAX_FIT)
    clean = test_x.float() / 255.0
    if corrupt is None:
        rec = pca_reconstruct(pca, test_x)
    else:
        noisy = torch.cat([x_in for _, x_in in input_batches(test_x, corrupt, seed, batch_size)])
        rec = _project(pca, noisy)
    out = measure(rec, clean)
    out["k"] = pca.k
    if corrupt is not None:
        out["input"] = "corrupted"
    return out


def _project(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    """PCA reconstruction of float images in [0, 1], clipped to [0, 1]."""
    flat = x.reshape(len(x), -1).numpy().astype(np.float32)  # (N, D)
    rec = pca.reconstruct(flat)
    return torch.from_numpy(np.clip(rec, 0.0, 1.0).astype(np.float32)).reshape(x.shape)

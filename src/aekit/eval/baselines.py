"""Classical baselines measured on the same test images as the model."""

from __future__ import annotations

import numpy as np
import torch

from aekit.eval.evaluate import input_batches, measure


def fit_pca(train_x_uint8: torch.Tensor, k: int, seed: int = 0, max_fit: int = 60000):
    """PCA with k components on flattened [0, 1] pixels (k is clipped to what the data allows)."""
    from sklearn.decomposition import PCA

    x = train_x_uint8[:max_fit].reshape(min(len(train_x_uint8), max_fit), -1)  # (N, C*H*W)
    x = x.numpy().astype(np.float32) / 255.0
    k = max(1, min(k, x.shape[0], x.shape[1]))
    # Randomized SVD costs several passes over the data per component block: fine for a small
    # code, but ~90 s for a 784-component code (a unet's). There the exact eigendecomposition of
    # the D x D covariance is one pass and takes seconds.
    solver = "covariance_eigh" if 4 * k >= x.shape[1] else "randomized"
    return PCA(n_components=k, svd_solver=solver, random_state=seed).fit(x)


def pca_reconstruct(pca, x_uint8: torch.Tensor, keep: int | None = None) -> torch.Tensor:
    """Reconstruct with the first `keep` components (all when None), clipped to [0, 1]."""
    shape = x_uint8.shape
    x = x_uint8.reshape(len(x_uint8), -1).numpy().astype(np.float32) / 255.0  # (N, D)
    z = pca.transform(x)
    if keep is not None:
        z = z[:, :keep]
        rec = z @ pca.components_[:keep] + pca.mean_
    else:
        rec = pca.inverse_transform(z)
    return torch.from_numpy(np.clip(rec, 0.0, 1.0).astype(np.float32)).reshape(shape)


def pca_baseline(train_x: torch.Tensor, test_x: torch.Tensor, k: int, seed: int = 0,
                 corrupt=None, batch_size: int = 1000) -> dict:
    """{mse, psnr, ssim, k} of PCA-k reconstruction of the test set.

    With `corrupt` (restoration runs) PCA, fitted on clean training images, projects the
    *corrupted* test images and is scored against the clean ones: classical PCA restoration,
    with the noise `evaluate_set` draws (`input_batches`: same seed, same batches).
    """
    pca = fit_pca(train_x, k, seed)
    clean = test_x.float() / 255.0
    if corrupt is None:
        rec = pca_reconstruct(pca, test_x)
    else:
        noisy = torch.cat([x_in for _, x_in in input_batches(test_x, corrupt, seed, batch_size)])
        rec = _project(pca, noisy)
    out = measure(rec, clean)
    out["k"] = int(pca.n_components_)
    if corrupt is not None:
        out["input"] = "corrupted"
    return out


def _project(pca, x: torch.Tensor) -> torch.Tensor:
    """PCA reconstruction of float images in [0, 1], clipped to [0, 1]."""
    flat = x.reshape(len(x), -1).numpy().astype(np.float32)  # (N, D)
    rec = pca.inverse_transform(pca.transform(flat))
    return torch.from_numpy(np.clip(rec, 0.0, 1.0).astype(np.float32)).reshape(x.shape)

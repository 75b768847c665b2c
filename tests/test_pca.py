"""The one PCA: exact and randomized fits agree, subsets are the documented ones, k is clipped."""

from __future__ import annotations

import numpy as np
import torch

from aekit.eval.pca import fit_pca, flat_unit


def _images(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis = torch.rand(6, 1, 8, 8, generator=g)
    w = torch.rand(n, 6, generator=g)
    x = torch.einsum("nk,kchw->nchw", w, basis) / 6 + 0.02 * torch.rand(n, 1, 8, 8, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def test_exact_and_randomized_fits_reconstruct_alike():
    x = _images()
    flat = flat_unit(x)
    exact = fit_pca(x, 6, exact=True)
    randomized = fit_pca(x, 6)  # 4 * 6 < 64: the randomized solver
    assert exact.components.shape == randomized.components.shape == (6, 64)
    a, b = exact.reconstruct(flat), randomized.reconstruct(flat)
    assert np.abs(a - b).max() < 1e-3
    # rows are orthonormal and sorted by variance
    assert np.allclose(exact.components @ exact.components.T, np.eye(6), atol=1e-8)
    var = ((flat - exact.mean) @ exact.components.T).var(0)
    assert np.all(np.diff(var) <= 1e-12)


def test_subsets_and_clipping():
    x = _images(50)
    first = fit_pca(x, None, max_images=20)
    assert list(first.fit_index) == list(range(20)) and first.k == 64  # None: a full basis
    shuffled = fit_pca(x, None, max_images=20, shuffle=True, seed=3)
    assert sorted(shuffled.fit_index) != list(range(20))
    assert list(shuffled.fit_index) == list(np.random.default_rng(3).permutation(50)[:20])
    assert fit_pca(x, 1000).k == 50 and fit_pca(x, 0).k == 1

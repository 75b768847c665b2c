"""Metrics agree with their reference definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from aekit.eval.evaluate import measure
from aekit.eval.metrics import bits_per_pixel, psnr, ssim_per_image


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 16, 20), (2, 1, 8, 8)])
def test_ssim_matches_scikit_image(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = ssim_per_image(y, x)
    for i in range(shape[0]):
        ref = structural_similarity(x[i].numpy(), y[i].numpy(), data_range=1.0, channel_axis=0,
                                    win_size=min(7, shape[2] - (1 - shape[2] % 2)))
        assert float(ours[i]) == pytest.approx(ref, abs=1e-6)


def test_psnr_is_of_the_pooled_mse():
    x = torch.zeros(2, 1, 4, 4)
    y = torch.cat([torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.1)])
    out = measure(y, x)
    assert out["mse"] == pytest.approx(0.005)
    assert out["psnr"] == pytest.approx(10 * np.log10(1 / 0.005))
    assert psnr(0.0) == float("inf")


def test_bits_per_pixel():
    assert bits_per_pixel(98, 784) == pytest.approx(1.0)

"""bench/pilots/codec_conv_pilot.py: the conv transform's shapes and GDN (tiny tensors)."""

from __future__ import annotations

import torch

from bench.pilots.codec_conv_pilot import GDN, LATENT_CHANNELS, build


def test_transform_maps_28x28_to_a_7x7_latent_and_back():
    analysis, synthesis = build(8)
    y = analysis(torch.rand(3, 1, 28, 28))
    assert y.shape == (3, LATENT_CHANNELS, 7, 7)
    assert synthesis(y).shape == (3, 1, 28, 28)


def test_gdn_divides_by_the_local_energy_and_inverse_multiplies():
    gdn, igdn = GDN(2), GDN(2, inverse=True)
    x = torch.full((1, 2, 1, 1), 3.0)
    norm = (1 + 0.1 * 9) ** 0.5  # beta 1, gamma 0.1 on the diagonal
    assert torch.allclose(gdn(x), x / norm)
    assert torch.allclose(igdn(x), x * norm)

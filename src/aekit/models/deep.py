"""`deep`: a symmetric stack of dense layers (seed 001's deep autoencoder, any input size)."""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import AutoencoderModule
from aekit.models.layers import Flatten, Unflatten
from aekit.registry import register_model

DEFAULT_WIDTHS = (512, 256, 128)


def mlp(sizes: list[int], last_activation: bool) -> list[nn.Module]:
    """Linear layers through `sizes` with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


@register_model("deep")
class DeepAE(AutoencoderModule):
    """D -> widths... -> latent -> reversed(widths)... -> D, ReLU between layers.

    The code layer is linear here (a ReLU code can lose dead units for good); `seed-deep`
    keeps the seed's ReLU code exactly.
    """

    latent_activation = False

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        d = math.prod(cfg.shape)
        widths = list(cfg.widths or DEFAULT_WIDTHS)
        self.latent_shape: tuple[int, ...] = (cfg.latent_dim,)
        self.encoder = nn.Sequential(
            Flatten(), *mlp([d, *widths, cfg.latent_dim], self.latent_activation)
        )
        self.decoder = nn.Sequential(
            *mlp([cfg.latent_dim, *widths[::-1], d], False), Unflatten(cfg.shape)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

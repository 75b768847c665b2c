"""`dense`: the vanilla autoencoder (seed 001): one hidden layer is the code."""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import AutoencoderModule
from aekit.models.layers import Flatten, Unflatten
from aekit.registry import register_model


@register_model("dense")
class DenseAE(AutoencoderModule):
    """flatten -> Linear(D, latent) + ReLU -> Linear(latent, D) -> logits (B, C, H, W)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        d = math.prod(cfg.shape)
        self.latent_shape: tuple[int, ...] = (cfg.latent_dim,)
        self.encoder = nn.Sequential(Flatten(), nn.Linear(d, cfg.latent_dim), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(cfg.latent_dim, d), Unflatten(cfg.shape))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

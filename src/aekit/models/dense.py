"""`dense`: the vanilla autoencoder (seed 001): one hidden layer is the code.

Started at PCA (option `pca_start`, default on; `init_from_data`): the code units are the PCA
codes shifted up so that the ReLU passes them unchanged on the training images, and the decoder
is the least-squares map from them to the images' logits (pca_start.py). Started at random, the
ReLU code of this model died on texture patches (every unit zero: a constant output).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import EncoderDecoderModule
from aekit.models.layers import Flatten, Unflatten
from aekit.models.pca_start import pca_start
from aekit.registry import register_model

# Each shifted PCA code stays this many of its standard deviations above zero on the sample.
RELU_MARGIN = 0.1


@register_model("dense")
class DenseAE(EncoderDecoderModule):
    """flatten -> Linear(D, latent) + ReLU -> Linear(latent, D) -> logits (B, C, H, W)."""

    closed_form_start = True  # the PCA start (pca_start.py)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        d = math.prod(cfg.shape)
        self.latent_shape: tuple[int, ...] = (cfg.latent_dim,)
        self.encoder = nn.Sequential(Flatten(), nn.Linear(d, cfg.latent_dim), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(cfg.latent_dim, d), Unflatten(cfg.shape))

    @torch.no_grad()
    def init_from_data(self, x, seed: int = 0) -> str | None:
        """PCA start (module docstring); code units beyond PCA's rank keep their random start
        and a zero decoder column, so they change nothing until trained."""
        start = pca_start(x, self.cfg.latent_dim, seed) if self.options.pca_start else None
        if start is None:
            return None
        r, enc, dec = start.rank, self.encoder[1], self.decoder[0]
        offset = (-start.codes.min(0).values).clamp_min(0) + RELU_MARGIN * start.codes.std(0)
        enc.weight[:r] = start.basis
        enc.bias[:r] = offset - start.basis @ start.mean
        dec.weight.zero_()
        dec.weight[:, :r] = start.decode.T
        dec.bias.copy_(start.logit_mean - start.decode.T @ offset)
        self.output_init_pending = False  # the output bias is part of the start
        return start.describe("code")

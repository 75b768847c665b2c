"""`deep`: a symmetric stack of dense layers (seed 001's deep autoencoder, any input size).

Started at PCA (option `pca_start`, default on; `init_from_data`): PCA's r codes travel through
the ReLU layers as r pairs of units carrying relu(c) and relu(-c) (their difference is c), the
code layer takes that difference, and the decoder's last layer is the least-squares map from the
codes to the images' logits (pca_start.py), so the untrained model reconstructs like PCA. All
other units keep their random start, and every weight from them into a carrying unit or the
output is zero: they change nothing until trained. r is PCA's rank, at most half the narrowest
hidden layer.
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
class DeepAE(EncoderDecoderModule):
    """D -> widths... -> latent -> reversed(widths)... -> D, ReLU between layers.

    The code layer is linear here (a ReLU code can lose dead units for good); `seed-deep`
    keeps the seed's ReLU code exactly.
    """

    closed_form_start = True  # the PCA start (pca_start.py)

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

    @torch.no_grad()
    def init_from_data(self, x, seed: int = 0) -> str | None:
        """PCA start (module docstring)."""
        widths = list(self.cfg.widths or DEFAULT_WIDTHS)
        k = min([self.cfg.latent_dim] + [w // 2 for w in widths])
        start = pca_start(x, k, seed) if self.options.pca_start and k > 0 else None
        if start is None:
            return None
        r, basis, mean = start.rank, start.basis, start.mean
        enc = [m for m in self.encoder if isinstance(m, nn.Linear)]
        dec = [m for m in self.decoder if isinstance(m, nn.Linear)]
        eye = torch.eye(r)
        pair = torch.cat([eye, -eye])  # (2r, r): c -> (c, -c), then ReLU
        _carry(enc[0], torch.cat([basis, -basis]), torch.cat([-basis @ mean, basis @ mean]))
        for layer in enc[1:-1] + dec[1:-1]:
            _carry(layer, torch.eye(2 * r), torch.zeros(2 * r))
        _carry(enc[-1], pair.T, torch.zeros(r))  # relu(c) - relu(-c) = c
        _carry(dec[0], pair, torch.zeros(2 * r))
        out = torch.cat([start.decode.T, -start.decode.T], 1)  # (D, 2r)
        dec[-1].weight.zero_()
        dec[-1].weight[:, : out.shape[1]] = out
        dec[-1].bias.copy_(start.logit_mean)
        self.output_init_pending = False  # the output bias is part of the start
        return start.describe("layers")


def _carry(layer: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """The first rows of `layer` read only its first inputs, through `weight` (rows, inputs)."""
    rows, cols = weight.shape
    layer.weight[:rows].zero_()
    layer.weight[:rows, :cols] = weight
    layer.bias[:rows] = bias

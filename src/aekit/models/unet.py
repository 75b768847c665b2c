"""`unet`: a small U-Net (Ronneberger et al., 2015) for restoration: denoising, inpainting,
colorization. It is not a compression model — its skip connections pass full-resolution features
around the bottleneck, which is what lets it keep fine detail the plain `conv` bottleneck loses.

Levels: one per width; level 0 runs at full resolution, each next one starts with a stride-2 3x3
conv (an axis shorter than 8 is not halved, as in `conv`). The decoder resizes to the exact size
of each encoder level (nearest + 3x3 conv, no checkerboard), concatenates that level's features
and mixes them with 3x3 convs, so any H x W round-trips. ReLU by default: on CPU it is the
cheapest activation, and inference speed is this model's point.

The code `encode(x)` returns is every level's feature map, flattened and concatenated (B, D), so
`decode(encode(x))` equals `forward(x)["logits"]`; `forward` skips that packing. `latent_dim` is
not used (there is no bottleneck to size).

Options (ModelConfig.options):
  activation: str = "relu"
  depth: int = 1          extra 3x3 convs per level after the first (encoder and decoder)
  residual: bool = True   predict a correction to the input: logits = logit(x_in) + f(x_in),
                          clamped; helps denoising, harmless elsewhere
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import check_range
from aekit.models.base import Autoencoder
from aekit.models.layers import UpConv, activation, conv_out, model_options
from aekit.registry import register_model

MIN_SIDE_TO_DOWNSAMPLE = 8
DEFAULT_WIDTHS = (16, 32, 64)
DEFAULT_OPTIONS = {"activation": "relu", "depth": 1, "residual": True}
# The residual path starts from logit(clamp(x, EPS, 1 - EPS)): finite for black/white pixels.
EPS = 1e-3


def _block(c_in: int, c_out: int, depth: int, act: str, stride=(1, 1)) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                               activation(act)]
    for _ in range(depth):
        layers += [nn.Conv2d(c_out, c_out, 3, padding=1), activation(act)]
    return nn.Sequential(*layers)


@register_model("unet")
class UNet(Autoencoder):
    """U-Net with skip connections for restoration (denoise / inpaint / colorize); any H x W."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        opts = model_options("unet", self.own_options(), DEFAULT_OPTIONS)
        act, depth = str(opts["activation"]), int(opts["depth"])
        self.residual = bool(opts["residual"])
        check_range("unet depth", depth, 0, 8)
        activation(act)
        c, h, w = cfg.shape
        widths = cfg.widths or DEFAULT_WIDTHS
        check_range("unet levels (len(widths))", len(widths), 1, 6)

        self.sizes: list[tuple[int, int]] = []  # (H, W) of each level's features
        self.down = nn.ModuleList()
        c_prev = c
        for level, c_i in enumerate(widths):
            stride = (1, 1)
            if level:
                stride = tuple(2 if s >= MIN_SIDE_TO_DOWNSAMPLE else 1 for s in (h, w))
                h, w = conv_out(h, 3, stride[0], 1), conv_out(w, 3, stride[1], 1)
            self.down.append(_block(c_prev, c_i, depth, act, stride))
            self.sizes.append((h, w))
            c_prev = c_i
        self.widths = tuple(widths)

        # Up path: from level k+1 to level k: resize + conv to width k, concat skip, mix.
        self.up = nn.ModuleList()
        self.mix = nn.ModuleList()
        for level in range(len(widths) - 2, -1, -1):
            c_k = widths[level]
            self.up.append(nn.Sequential(UpConv(widths[level + 1], c_k, self.sizes[level]),
                                         activation(act)))
            self.mix.append(_block(2 * c_k, c_k, depth, act))
        self.head = nn.Conv2d(widths[0], c, 1)
        packed = sum(c_i * s[0] * s[1] for c_i, s in zip(widths, self.sizes, strict=True))
        self.latent_shape = (packed + (math.prod(cfg.shape) if self.residual else 0),)
        # NHWC weights and activations: oneDNN's CPU convolutions run ~1.6x faster on them here
        # (saved weights are made contiguous, so files stay in the standard layout).
        self.to(memory_format=torch.channels_last)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = x.contiguous(memory_format=torch.channels_last)
        for block in self.down:
            x = block(x)
            feats.append(x)
        return feats

    def _decode_features(self, feats: list[torch.Tensor], x_in: torch.Tensor | None
                         ) -> torch.Tensor:
        y = feats[-1]
        for i, (up, mix) in enumerate(zip(self.up, self.mix, strict=True)):
            skip = feats[-2 - i]
            y = mix(torch.cat([up(y), skip], 1))
        logits = self.head(y)
        if self.residual and x_in is not None:
            logits = logits + torch.logit(x_in.clamp(EPS, 1 - EPS))
        return logits.clamp(-30.0, 30.0)  # sigmoid saturates long before; keeps BCE finite

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._features(x)
        if self.residual:
            feats.append(x)  # the residual path needs the input itself
        return torch.cat([f.flatten(1) for f in feats], 1)  # (B, D)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        shapes = [(c_i, *s) for c_i, s in zip(self.widths, self.sizes, strict=True)]
        if self.residual:
            shapes.append(self.cfg.shape)
        parts = torch.split(z, [math.prod(s) for s in shapes], dim=1)
        feats = [p.reshape(len(z), *s) for p, s in zip(parts, shapes, strict=True)]  # (B, C, H, W)
        x_in = feats.pop() if self.residual else None
        return self._decode_features(feats, x_in)

    def forward(self, x: torch.Tensor, keep: int | None = None) -> dict[str, torch.Tensor]:
        if keep is not None or (self.training and self.cfg.options.get("nested")):
            return super().forward(x, keep)  # the generic path on the packed code
        feats = self._features(x)
        logits = self._decode_features(feats, x)
        return {"x_hat": torch.sigmoid(logits), "logits": logits, "z": feats[-1]}

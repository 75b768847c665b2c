"""`unet`: a small U-Net (Ronneberger et al., 2015) for restoration: denoising, inpainting,
colorization. It is not a compression model — its skip connections pass full-resolution features
around the bottleneck, which is what lets it keep fine detail the plain `conv` bottleneck loses.

Levels: one per width; level 0 runs at the working resolution, each next one starts with a
stride-2 3x3 conv (an axis shorter than 8 is not halved, as in `conv`). The decoder resizes to the
exact size of each encoder level (nearest + 3x3 conv, no checkerboard), concatenates that level's
features and mixes them with 3x3 convs. ReLU and NHWC (channels-last) tensors by default: on CPU
they are the fastest choice, and inference speed is this model's point.

With `shuffle: 2` the image is first folded into 4 half-resolution sub-images (pixel unshuffle,
as FFDNet does, Zhang et al. 2018) and unfolded at the end: the network then runs at half the
resolution with 4x the channels, about 4x fewer FLOPs for the same widths.

The code `encode(x)` returns is every level's feature map, flattened and concatenated (B, D), so
`decode(encode(x))` equals `forward(x)["logits"]`; `forward` skips that packing. `latent_dim` is
not used (there is no bottleneck to size).

Options: `UNetOptions` in cards.py (activation, depth, norm, shuffle, residual).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import ConfigError, check_range
from aekit.models.base import AutoencoderModule
from aekit.models.layers import activation, conv_out
from aekit.registry import register_model

MIN_SIDE_TO_DOWNSAMPLE = 8
DEFAULT_WIDTHS = (16, 32, 64)
# The residual path starts from logit(clamp(x, EPS, 1 - EPS)): finite for black/white pixels.
EPS = 1e-3


def _conv(c_in: int, c_out: int, act: str, norm: bool, stride=(1, 1)) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return [*layers, activation(act)]


def _fuse(seq: nn.Sequential) -> nn.Sequential:
    """A copy of `seq` with every Conv2d + BatchNorm2d pair folded into one conv (eval only)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    layers, mods = [], list(seq)
    i = 0
    while i < len(mods):
        if isinstance(mods[i], nn.Conv2d) and i + 1 < len(mods) \
                and isinstance(mods[i + 1], nn.BatchNorm2d):
            layers.append(fuse_conv_bn_eval(copy.deepcopy(mods[i]), mods[i + 1]))
            i += 2
        else:
            layers.append(copy.deepcopy(mods[i]))
            i += 1
    return nn.Sequential(*layers).to(memory_format=torch.channels_last)


def _block(c_in: int, c_out: int, depth: int, act: str, norm: bool, stride=(1, 1)
           ) -> nn.Sequential:
    layers = _conv(c_in, c_out, act, norm, stride)
    for _ in range(depth):
        layers += _conv(c_out, c_out, act, norm)
    return nn.Sequential(*layers)


class _Up(nn.Module):
    """Nearest resize to the skip's size, 3x3 conv, then mix with the skip: one decoder level."""

    def __init__(self, c_in: int, c_out: int, depth: int, act: str, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(*_conv(c_in, c_out, act, norm))
        self.mix = _block(2 * c_out, c_out, depth, act, norm)

    def forward(self, y: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(y, size=skip.shape[-2:], mode="nearest")
        return self.mix(torch.cat([self.conv(y), skip], 1))

    def fused(self) -> _Up:
        up = copy.copy(self)  # shares nothing mutable below: both children are replaced
        up._modules = {"conv": _fuse(self.conv), "mix": _fuse(self.mix)}
        return up


@register_model("unet")
class UNet(AutoencoderModule):
    """U-Net with skip connections for restoration (denoise / inpaint / colorize); any H x W."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        opts = self.options  # UNetOptions, checked (models/cards.py)
        act, depth, norm = opts.activation, opts.depth, opts.norm
        self.residual, self.shuffle, self.norm = opts.residual, opts.shuffle, norm
        c, h, w = cfg.shape
        widths = cfg.widths or DEFAULT_WIDTHS
        check_range("unet levels (len(widths))", len(widths), 1, 6)
        s = self.shuffle
        if s > 1 and min(h, w) < 2 * s:
            raise ConfigError(f"unet shuffle={s} needs images of at least {2 * s}x{2 * s}, "
                              f"got {h}x{w}; use shuffle=1")
        h, w = -(-h // s), -(-w // s)  # the working resolution (padded up to a multiple of s)

        self.sizes: list[tuple[int, int]] = []  # (H, W) of each level's features
        self.down = nn.ModuleList()
        c_prev = c * s * s
        for level, c_i in enumerate(widths):
            stride = (1, 1)
            if level:
                stride = tuple(2 if n >= MIN_SIDE_TO_DOWNSAMPLE else 1 for n in (h, w))
                h, w = conv_out(h, 3, stride[0], 1), conv_out(w, 3, stride[1], 1)
            self.down.append(_block(c_prev, c_i, depth, act, norm, stride))
            self.sizes.append((h, w))
            c_prev = c_i
        self.widths = tuple(widths)
        self.up = nn.ModuleList(_Up(widths[k + 1], widths[k], depth, act, norm)
                                for k in range(len(widths) - 2, -1, -1))
        self.head = nn.Conv2d(widths[0], c * s * s, 1)
        packed = sum(c_i * a * b for c_i, (a, b) in zip(widths, self.sizes, strict=True))
        self.latent_shape = (packed + (math.prod(cfg.shape) if self.residual else 0),)
        # NHWC weights and activations: oneDNN's CPU convolutions run ~1.6x faster on them here
        # (saved weights are made contiguous, so files stay in the standard layout).
        self.to(memory_format=torch.channels_last)

    def output_bias(self) -> nn.Parameter | None:
        """The head's bias (data-dependent start, base.py); none with `residual`, whose logits
        start from the input's own and must not be shifted by the data's mean."""
        return None if self.residual else self.head.bias

    def _layers(self) -> tuple[nn.ModuleList, nn.ModuleList]:
        """(down, up) blocks; in eval mode without autograd (inference), copies with BN folded
        into the convs (~10% faster on CPU), rebuilt whenever a parameter or buffer changed or
        moved. With autograd on, the real modules run, so gradients reach the real parameters."""
        if self.training or not self.norm or torch.is_grad_enabled():
            return self.down, self.up
        key = tuple((t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))
        cached = self.__dict__.get("_fused")  # not a submodule: stays out of state_dict
        if cached is None or cached[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # usable outside inference too
                down = nn.ModuleList(_fuse(b) for b in self.down)
                up = nn.ModuleList(u.fused() for u in self.up)
            self.__dict__["_fused"] = cached = (key, down, up)
        return cached[1], cached[2]

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        s = self.shuffle
        if s > 1:
            ph, pw = (-x.shape[-2]) % s, (-x.shape[-1]) % s
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            x = F.pixel_unshuffle(x, s)  # (B, C*s*s, H/s, W/s)
        feats = []
        x = x.contiguous(memory_format=torch.channels_last)
        for block in self._layers()[0]:
            x = block(x)
            feats.append(x)
        return feats

    def _decode_features(self, feats: list[torch.Tensor], x_in: torch.Tensor | None,
                         size: tuple[int, int]) -> torch.Tensor:
        y = feats[-1]
        for i, up in enumerate(self._layers()[1]):
            y = up(y, feats[-2 - i])
        logits = self.head(y)
        if self.shuffle > 1:
            logits = F.pixel_shuffle(logits, self.shuffle)[..., : size[0], : size[1]]
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
        feats = [p.reshape(-1, *s) for p, s in zip(parts, shapes, strict=True)]  # (B, C, H, W)
        x_in = feats.pop() if self.residual else None
        return self._decode_features(feats, x_in, (self.cfg.height, self.cfg.width))

    def forward(self, x: torch.Tensor, keep: int | None = None) -> dict[str, torch.Tensor]:
        if keep is not None or (self.training and self.nested is not None):
            return super().forward(x, keep)  # the generic path on the packed code
        feats = self._features(x)
        logits = self._decode_features(feats, x, (x.shape[-2], x.shape[-1]))
        return {"x_hat": torch.sigmoid(logits), "logits": logits, "z": feats[-1]}

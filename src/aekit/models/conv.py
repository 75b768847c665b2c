"""`conv`: the default convolutional autoencoder, designed for FLOPs first, then quality.

Encoder: stride-2 3x3 convs that downsample at once (full-resolution feature maps are what make
CPU training slow), then a dense latent of `latent_dim`. Decoder: the mirror image, with
nearest-neighbour resize + 3x3 conv instead of transposed convs (no checkerboard artifacts).
Every resize goes to the exact size the encoder saw, so any H x W x C round-trips (28 -> 14 -> 7
-> 14 -> 28, 27 -> 14 -> 7 -> 14 -> 27); an axis shorter than 8 is no longer halved, so tiny
inputs keep a usable feature map (8x8 digits: 8 -> 4 -> 8).

Linear path (option `linear`, default on for a vector code): code = encoder(x) + A x, with A
started at PCA of the training images, while the last layer of each conv stack starts at zero
(`init_from_data`). The path decodes the code in one of two spaces (option `linear_space`):
logit, logits = decoder(code) + B code with B started at the least-squares map from the PCA codes
to the images' logits; or pixel, logits = decoder(code) + logit(clip(B code)) with B started at
PCA's own decoder, so the untrained model is PCA's reconstruction itself. "auto" takes the pixel
space when its start reconstructs a sample of the training images clearly (0.5 dB) better than
the logit fit (`options_from_data`): the logit fit suits mostly-black images (MNIST strokes),
where the sigmoid makes black exact, and gives up ~1 dB against PCA on photo patches and 8x8
digits, where the pixel start is PCA. Training therefore starts at (or near) PCA's
reconstruction and the conv stacks learn what PCA misses. Why: with a code as large as PCA's, a
conv started at random ends just under PCA on small or textured sets (8x8 digits, photo and
texture patches; docs/BENCHMARKS.md).

Options: `ConvOptions` in cards.py (spatial code map, activation, depth, dense hidden layer,
linear path).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import AutoencoderModule
from aekit.models.layers import (
    Flatten,
    Unflatten,
    UpConv,
    activation,
    conv_out,
)
from aekit.models.pca_start import (
    pca_start,
    pixel_logits,
    start_linear_paths,
    zero_last_layers,
)
from aekit.registry import register_model

# An axis is halved only while it is at least this long, so it never drops below 4.
MIN_SIDE_TO_DOWNSAMPLE = 8
# Default widths grow (doubling, capped) until the smaller side is at most this.
TARGET_SIDE = 8
MAX_DEFAULT_WIDTH = 256


def default_widths(height: int, width: int) -> tuple[int, ...]:
    """32, 64, 128, ... channels: one level per halving until the smaller side is <= 8."""
    widths = [32]
    side = min(height, width)
    side = _down(side)
    while side > TARGET_SIDE and len(widths) < 6:
        widths.append(min(2 * widths[-1], MAX_DEFAULT_WIDTH))
        side = _down(side)
    return tuple(widths)


def _down(side: int) -> int:
    return conv_out(side, 3, 2, 1) if side >= MIN_SIDE_TO_DOWNSAMPLE else side


@register_model("conv")
class ConvAE(AutoencoderModule):
    """Default conv autoencoder: stride-2 3x3 convs -> dense latent -> resize+conv back; any H x W.

    See the module docstring for the design and the options (spatial, activation, depth, hidden).
    """

    closed_form_start = True  # the PCA start (pca_start.py)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        opts = self.options  # ConvOptions, checked (models/cards.py)
        act, depth, hidden, self.spatial = opts.activation, opts.depth, opts.hidden, opts.spatial
        c, h, w = cfg.shape
        widths = cfg.widths or default_widths(h, w)

        # Encoder: one stride-2 conv per level (stride 1 along an axis that is already short).
        sizes = [(h, w)]  # the size entering each level; the decoder resizes back to these
        enc: list[nn.Module] = []
        c_prev = c
        for c_i in widths:
            sh, sw = (2 if s >= MIN_SIDE_TO_DOWNSAMPLE else 1 for s in (h, w))
            enc += [nn.Conv2d(c_prev, c_i, 3, stride=(sh, sw), padding=1), activation(act)]
            for _ in range(depth - 1):
                enc += [nn.Conv2d(c_i, c_i, 3, padding=1), activation(act)]
            h, w = conv_out(h, 3, sh, 1), conv_out(w, 3, sw, 1)
            sizes.append((h, w))
            c_prev = c_i
        bottom = (widths[-1], h, w)  # (C_k, H_k, W_k) at the lowest resolution
        flat = bottom[0] * h * w
        if self.spatial:
            enc += [nn.Conv2d(widths[-1], cfg.latent_dim, 1)]
            dec: list[nn.Module] = [nn.Conv2d(cfg.latent_dim, widths[-1], 1), activation(act)]
            self.latent_shape: tuple[int, ...] = (cfg.latent_dim, h, w)
        elif hidden:
            enc += [Flatten(), nn.Linear(flat, hidden), activation(act),
                    nn.Linear(hidden, cfg.latent_dim)]
            dec = [nn.Linear(cfg.latent_dim, hidden), activation(act), nn.Linear(hidden, flat),
                   activation(act), Unflatten(bottom)]
            self.latent_shape = (cfg.latent_dim,)
        else:
            enc += [Flatten(), nn.Linear(flat, cfg.latent_dim)]
            dec = [nn.Linear(cfg.latent_dim, flat), activation(act), Unflatten(bottom)]
            self.latent_shape = (cfg.latent_dim,)
        self.encoder = nn.Sequential(*enc)

        # Decoder: mirror; each level ends with resize-to-exact-size + conv to the next width.
        outs = list(widths[-2::-1]) + [c]
        for level, c_out in enumerate(outs):
            c_in = widths[-1 - level]
            for _ in range(depth - 1):
                dec += [nn.Conv2d(c_in, c_in, 3, padding=1), activation(act)]
            dec.append(UpConv(c_in, c_out, sizes[-2 - level]))
            if level < len(outs) - 1:
                dec.append(activation(act))
        self.decoder = nn.Sequential(*dec)

        # The linear path beside the stacks (vector codes only); `init_from_data` starts it.
        self.lin_enc: nn.Linear | None = None
        self.lin_dec: nn.Linear | None = None
        if opts.linear and not self.spatial:
            d = math.prod(cfg.shape)
            self.lin_enc = nn.Linear(d, cfg.latent_dim)
            self.lin_dec = nn.Linear(cfg.latent_dim, d)
        # Built without data (no options_from_data), "auto" means the logit space.
        self.pixel_path = opts.linear_space == "pixel"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        if self.lin_enc is not None:
            z = z + self.lin_enc(x.flatten(1))  # (B, C*H*W) -> (B, latent_dim)
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(z)
        if self.lin_dec is not None:
            linear = self.lin_dec(z).view(-1, *self.cfg.shape)  # (B, C, H, W)
            logits = logits + (pixel_logits(linear) if self.pixel_path else linear)
        return logits

    @classmethod
    def options_from_data(cls, cfg: ModelConfig, x) -> dict:
        """linear_space=auto becomes pixel when the pixel start reconstructs a sample of the
        training images clearly better than the logit fit (`PCAStart.better_space`), else logit
        (also when there is no linear path or no start)."""
        options = cfg.options
        if options.get("linear_space") != "auto":
            return options
        start = None
        if options.get("linear") and not options.get("spatial"):
            start = pca_start(x, cfg.latent_dim)
        return {**options, "linear_space": "logit" if start is None else start.better_space()}

    @torch.no_grad()
    def init_from_data(self, x, seed: int = 0) -> str | None:
        """Start the linear path at PCA of (a sample of) the training images, uint8 (N, C, H, W)
        or streamed, and the last layer of each conv stack at zero: the untrained model is PCA
        (pixel space) or PCA followed by the logit fit (logit space; pca_start.py). The global
        random state is left untouched."""
        if self.lin_enc is None or self.lin_dec is None:
            return None
        start = pca_start(x, self.cfg.latent_dim, seed)
        if start is None:
            return None
        space = "pixel" if self.pixel_path else "logit"
        start_linear_paths(self.lin_enc, self.lin_dec, start, space=space)
        zero_last_layers(self.encoder, self.decoder)
        self.output_init_pending = False  # the mean is in lin_dec's bias already
        return start.describe("linear path", space)

"""Images of any size as a grid of fixed-size blocks (the codec's transform size).

An image (C, H, W) is padded on the bottom and right by replicating its last row and column up
to whole blocks, then cut into row-major blocks of (C, bh, bw), each flattened C-major like the
model's training images. Decoding reassembles the grid and crops the padding, so the decoded
image has exactly the input's size. Replication (not zeros) keeps the padded part as smooth as
the edge it continues, so it costs few bits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def grid(h: int, w: int, bh: int, bw: int) -> tuple[int, int]:
    """Blocks down and across an H x W image."""
    return math.ceil(h / bh), math.ceil(w / bw)


def to_blocks(x: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * gh * gw, C * bh * bw), image by image, blocks in row-major order."""
    b, c, h, w = x.shape
    gh, gw = grid(h, w, bh, bw)
    ph, pw = gh * bh - h, gw * bw - w
    if ph or pw:
        dtype = x.dtype
        # replicate padding needs a float tensor; uint8 values survive the round trip exactly
        x = F.pad(x if dtype.is_floating_point else x.float(), (0, pw, 0, ph), mode="replicate")
        x = x.to(dtype)
    x = x.reshape(b, c, gh, bh, gw, bw).permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, bh, bw)
    return x.reshape(b * gh * gw, c * bh * bw)


def from_blocks(blocks: torch.Tensor, n: int, shape: tuple[int, int, int], bh: int,
                bw: int) -> torch.Tensor:
    """(n * gh * gw, C * bh * bw) -> (n, C, H, W), the padding cropped."""
    c, h, w = shape
    gh, gw = grid(h, w, bh, bw)
    x = blocks.reshape(n, gh, gw, c, bh, bw).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, c, gh * bh, gw * bw)[:, :, :h, :w]

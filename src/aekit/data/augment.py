"""Augmentation: every random image transform that keeps what an image shows.

- `augment_batch` (`aekit train --augment`): label-free transforms of clean training batches
  (the target and, before corruption, the input). For a plain autoencoder, scored on
  reconstructing test images as they are, only hflip keeps the distribution. For a denoiser the
  symmetries of the noise matter instead: Gaussian noise is the same after any flip or quarter
  turn, channel permutation or inversion (1 - x), so "dihedral" and "dihedral+colours" give a
  denoiser trained on a few photos far more kinds of content (docs/BENCHMARKS.md, "Whole
  photos").
- `shift_flip` and `strong_augment`: the weak and strong views of few-label fine-tuning.
- `warp`: the per-image affine warp they and the `affine` corruption share.

Every draw comes from a caller's generator on the CPU, so runs are seeded and `--resume` exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Apply `kind` (TRAIN_AUGMENTS) to a float batch (B, C, H, W) in [0, 1], per image:
    "hflip" mirrors a random half; "dihedral" applies one of the 8 flips and quarter turns
    (square images; others: one of the 4 flips that keep the shape); "dihedral+colours" also
    permutes the colour channels (RGB) and inverts a random half (1 - x)."""
    if not kind or kind == "none":
        return x
    if kind == "auto":  # decided from the data before training (aekit.train.symmetry)
        raise ValueError("augment 'auto' must be decided before training; see "
                         "aekit.train.symmetry.resolve")
    b = x.shape[0]
    if kind == "hflip":
        flip = torch.rand(b, generator=gen) < 0.5  # (B,) drawn on CPU: same on every device
        return torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    # per image one of its symmetries (`symmetry` codes)
    codes = torch.randint(0, symmetry_count(x), (b,), generator=gen).to(x.device)  # (B,)
    out = x.clone()
    for code in codes.unique().tolist():
        sel = codes == code
        out[sel] = symmetry(x[sel], code)
    x = out
    if kind == "dihedral+colours":
        c = x.shape[1]
        if c > 1:
            order = torch.argsort(torch.rand(b, c, generator=gen), 1).to(x.device)  # (B, C)
            x = torch.gather(x, 1, order.view(b, c, 1, 1).expand_as(x))
        invert = (torch.rand(b, generator=gen) < 0.5).to(x.device).view(-1, 1, 1, 1)
        x = torch.where(invert, 1.0 - x, x)
    return x


def symmetry_count(x: torch.Tensor) -> int:
    """How many flips and quarter turns keep the shape of images x (..., H, W): 8 when square,
    else 4."""
    return 8 if x.shape[-1] == x.shape[-2] else 4


def symmetry(x: torch.Tensor, code: int) -> torch.Tensor:
    """Images x (..., H, W) under symmetry `code` < symmetry_count(x): code = 2 * quarter turns
    + mirrored, 0 is x itself; for non-square images a half turn with the mirror is the
    vertical flip (the 4 that keep the shape)."""
    t = x.flip(-1) if code % 2 else x
    turns = code // 2
    if x.shape[-1] == x.shape[-2]:
        return torch.rot90(t, turns, (-2, -1))
    return t.flip(-2) if turns else t


def warp(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
         flip: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image affine warp of x (B, C, H, W), bilinear with zero fill: rotation `angle`
    (radians, (B,)), zoom `scale` (B,), `shift` (B, 2) in grid units (2 = the whole side) and,
    optionally, `flip` (B,) of +-1 (-1 mirrors horizontally)."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    mirror = flip if flip is not None else torch.ones_like(cos)
    theta = torch.stack([torch.stack([cos * mirror, -sin, shift[:, 0]], 1),
                         torch.stack([sin * mirror, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shift_flip(x: torch.Tensor, kind: str, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to `shift` pixels (zero fill) and, for 'shift+flip', a random
    horizontal flip per image; x is float (B, C, H, W)."""
    if kind == "none":
        return x
    b, _, h, w = x.shape
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift))  # (B, C, H+2s, W+2s)
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        rows = (dy.view(b, 1) + torch.arange(h)).to(x.device)  # (B, H)
        cols = (dx.view(b, 1) + torch.arange(w)).to(x.device)  # (B, W)
        bi = torch.arange(b, device=x.device).view(b, 1, 1)
        x = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
        x = x.permute(0, 3, 1, 2).contiguous()
    if kind == "shift+flip":
        flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    return x


def strong_augment(x: torch.Tensor, gen: torch.Generator, strength: float = 1.0
                   ) -> torch.Tensor:
    """The strong view for consistency training, per image: a random affine map (rotation up to
    15 degrees, scale 0.85-1.15, translation up to 1/7 of the side), a horizontal flip with
    probability 1/2, contrast scaled by 0.5-1.5 around the image mean, and one cut-out square
    (side 1/4-1/2 of the shorter side, centre anywhere, zero fill); `strength` scales every range
    but the flip's (0: flips only). x is float (B, C, H, W) in [0, 1]; every draw comes from
    `gen` (on the CPU), so the views are seeded."""
    b, _, h, w = x.shape
    m = float(strength)
    u = torch.rand(b, 9, generator=gen)  # (B, 9) uniforms
    angle = (u[:, 0] * 2 - 1) * math.radians(15) * m
    scale = 1 + 0.15 * m * (u[:, 1] * 2 - 1)
    flip = torch.where(u[:, 2] < 0.5, -1.0, 1.0)
    tx, ty = (u[:, 3] * 2 - 1) * (2 / 7) * m, (u[:, 4] * 2 - 1) * (2 / 7) * m  # grid units
    x = warp(x, angle, scale, torch.stack([tx, ty], 1), flip)
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 1 + 0.5 * m * (u[:, 5] * 2 - 1)
    x = ((x - mean) * contrast.view(b, 1, 1, 1).to(x.device) + mean).clamp(0, 1)
    half = (min(h, w) * m * (0.25 + 0.25 * u[:, 6]) / 2).view(b, 1, 1)  # (B, 1, 1)
    cy, cx = (u[:, 7] * h).view(b, 1, 1), (u[:, 8] * w).view(b, 1, 1)
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5
    cut = ((ys - cy).abs() < half) & ((xs - cx).abs() < half)  # (B, H, W)
    return x.masked_fill(cut.unsqueeze(1).to(x.device), 0.0)

"""The codec's deblocking filter: a least-squares fit across block boundaries, exact to apply.

Coding blocks independently leaves steps at their edges, most visible at low rates. After
training, `fit` codes a sample of the training images at the rate-control steps FIT_STEPS and
solves, per step, for the linear filter that best predicts the original 2R pixels straddling a
block boundary from the decoded ones (R = RADIUS, fewer for small blocks): first across the
vertical boundaries (along the width), then, on that result, across the horizontal ones. The
decoder applies the filter of the fitted step nearest to the image's step (docs/FORMAT.md,
"Deblocking"). A model whose training images are one block each has no boundaries to learn
from: its filter stays empty and decoding is unchanged.

Exactness: `apply` evaluates each output as a fixed sequence of float64 multiplies and adds
(separate operations, no fused multiply-add, no matmul whose summation order depends on the
BLAS), so the filtered pixels are the same on every thread count and device.
"""

from __future__ import annotations

import math

import torch

from aekit.codec.blocks import from_blocks, grid
from aekit.codec.steps import FIT_STEPS
from aekit.data.stream import to_tensor
from aekit.data.units import to_unit

RADIUS = 4  # pixels filtered on each side of a boundary (at most half a block)
FIT_BLOCKS = 8192  # training blocks coded per fitted step (bounded time and memory)
MIN_WINDOWS = 256  # fewer boundary windows than this fit no filter
_CHUNK = 1024  # blocks through the encoder and decoder at a time (bounded memory)
_RIDGE = 1e-6


def radius(block_hw: tuple[int, int]) -> int:
    return min(RADIUS, block_hw[0] // 2, block_hw[1] // 2)


def nearest(step: int) -> int:
    """Index into FIT_STEPS of the fitted step nearest to `step` (a tie: the one nearer 0)."""
    return min(range(len(FIT_STEPS)), key=lambda i: (abs(step - FIT_STEPS[i]), abs(FIT_STEPS[i])))


def _windows(x: torch.Tensor, size: int, r: int) -> torch.Tensor:
    """Column indices (boundaries, 2r) of the windows across the interior block boundaries of
    the last axis of x (its length a multiple of `size`); no rows when there are none."""
    bounds = torch.arange(size, x.shape[-1], size, device=x.device)
    return bounds[:, None] + torch.arange(-r, r, device=x.device)  # (boundaries, 2r)


def _filter_last_axis(x: torch.Tensor, w: torch.Tensor, size: int) -> torch.Tensor:
    """x (..., L) float64 with every window across a boundary of the last axis replaced by
    bias + sum_j w[i, j] * v_j, accumulated in j order (w: (2r, 2r + 1), bias last)."""
    r = w.shape[0] // 2
    cols = _windows(x, size, r)
    if len(cols) == 0:
        return x
    v = x[..., cols]  # (..., boundaries, 2r)
    taps = w.tolist()
    outs = []
    for i in range(2 * r):
        acc = torch.full_like(v[..., 0], taps[i][2 * r])
        for j in range(2 * r):
            acc = torch.add(acc, torch.mul(v[..., j], taps[i][j]))
        outs.append(acc)
    y = x.clone()
    y[..., cols] = torch.stack(outs, -1)
    return y


def apply(x: torch.Tensor, weights: torch.Tensor, step: int, block_hw: tuple[int, int]
          ) -> torch.Tensor:
    """Deblock images x (n, C, gh*bh, gw*bw) in [0, 1] (whole blocks, before cropping) with
    the fitted filters `weights` (len(FIT_STEPS), 2, 2r, 2r + 1); an empty `weights` is no
    filter. Returns float32 in [0, 1]."""
    if weights.numel() == 0:
        return x
    w = weights[nearest(step)].detach().to("cpu", torch.float64)  # (2, 2r, 2r + 1)
    y = _filter_last_axis(x.to(torch.float64), w[0], block_hw[1])  # across vertical edges
    y = _filter_last_axis(y.transpose(-1, -2), w[1], block_hw[0]).transpose(-1, -2)
    return y.to(torch.float32).clamp_(0, 1)


class _Normal:
    """The normal equations of one direction's least-squares filter, summed over chunks of
    images (so the fit's memory does not grow with the number of images sampled)."""

    def __init__(self, r: int) -> None:
        self.r, self.windows = r, 0
        self.gram = torch.zeros(2 * r + 1, 2 * r + 1, dtype=torch.float64)
        self.cross = torch.zeros(2 * r + 1, 2 * r, dtype=torch.float64)

    def add(self, decoded: torch.Tensor, target: torch.Tensor, size: int) -> None:
        """Windows across the boundaries of the last axis of decoded and target (float64)."""
        cols = _windows(decoded, size, self.r)
        if len(cols) == 0:
            return
        a = decoded[..., cols].reshape(-1, 2 * self.r)  # (windows, 2r)
        a1 = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)  # (windows, 2r + 1)
        self.gram += a1.T @ a1
        self.cross += a1.T @ target[..., cols].reshape(-1, 2 * self.r)
        self.windows += len(a)

    def solve(self) -> torch.Tensor | None:
        """The filter (2r, 2r + 1); None when there were too few windows."""
        if self.windows < MIN_WINDOWS:
            return None
        ridge = _RIDGE * self.windows * torch.eye(2 * self.r + 1, dtype=torch.float64)
        return torch.linalg.solve(self.gram + ridge, self.cross).T.contiguous()


@torch.inference_mode()
def fit(model, x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, int]:
    """Filters (len(FIT_STEPS), 2, 2r, 2r + 1) float64 for a frozen codec `model`, fitted on a
    seeded sample of its training images x (uint8 (N, C, H, W), or streamed images), and the
    number of images used; an empty tensor when they have no interior block boundaries."""
    bh, bw = model.block_hw
    r = radius(model.block_hw)
    gh, gw = grid(x.shape[-2], x.shape[-1], bh, bw)
    if r == 0 or (gh == 1 and gw == 1):
        return torch.empty(0, dtype=torch.float64), 0
    per_image = gh * gw
    gen = torch.Generator().manual_seed(seed + 2)
    order = torch.randperm(len(x), generator=gen)[: max(1, math.ceil(FIT_BLOCKS / per_image))]
    device = next(model.parameters()).device
    shape = (x.shape[1], gh * bh, gw * bw)  # the whole-block grid the decoder filters
    step_images = max(1, _CHUNK // per_image)  # images through the encoder at a time
    # Each chunk: its images on the whole-block grid, as the decoder filters them (streamed
    # images are decoded here, only the sampled ones), and its block rows for the encoder.
    chunks = []
    for i in range(0, len(order), step_images):
        part = to_tensor(x[order[i : i + step_images]])
        target = from_blocks(model.blocks(part), len(part), shape, bh, bw)  # part's dtype
        chunks.append((target, model.blocks(to_unit(part))))  # rows (blocks, C*bh*bw)

    filters = []
    for step in FIT_STEPS:
        # one step's symbols at a time (bounded memory), kept for both passes of the fit
        symbols = [model.block_symbols(rows.to(device), step) for _, rows in chunks]
        pair = _fit_step(model, [t for t, _ in chunks], symbols, shape, step)
        if pair is None:
            return torch.empty(0, dtype=torch.float64), 0
        filters.append(pair)
    return torch.stack(filters), len(order)


def _fit_step(model, targets: list[torch.Tensor], symbols: list, shape: tuple, step: int
              ) -> torch.Tensor | None:
    """The filter pair (2, 2r, 2r + 1) of one rate-control step from chunks of images (targets
    on the whole-block grid) and their symbols at that step; None without any boundary."""
    (bh, bw), r = model.block_hw, radius(model.block_hw)

    def decoded(j: int) -> tuple[torch.Tensor, torch.Tensor]:
        dec = model.reconstruct_symbols(*symbols[j], shape, step, deblocked=False)
        ref = targets[j].double()  # in float64 exactly: uint8 / 255, not via float32
        return dec.cpu().double(), ref / 255.0 if targets[j].dtype == torch.uint8 else ref

    vertical, horizontal = _Normal(r), _Normal(r)
    for j in range(len(targets)):  # across vertical boundaries first ...
        vertical.add(*decoded(j), bw)
    w_v = vertical.solve()
    for j in range(len(targets)):  # ... then horizontal ones, on that result
        dec, ref = decoded(j)
        if w_v is not None:
            dec = _filter_last_axis(dec, w_v, bw)
        horizontal.add(dec.transpose(-1, -2), ref.transpose(-1, -2), bh)
    w_h = horizontal.solve()
    if w_v is None and w_h is None:
        return None
    return torch.stack([_identity(r) if w_v is None else w_v,
                        _identity(r) if w_h is None else w_h])


def _identity(r: int) -> torch.Tensor:
    """The filter (2r, 2r + 1) that leaves a window unchanged (a direction without
    boundaries in the training images)."""
    return torch.cat([torch.eye(2 * r, dtype=torch.float64),
                      torch.zeros(2 * r, 1, dtype=torch.float64)], 1)

"""Batched inference and quality measurement of a trained model on a uint8 image set.

`evaluate_set` streams: it holds one batch of float images at a time (the batch is sized by a
pixel budget, so large images get small batches) and accumulates the MSE and SSIM sums. The sums
are exact (per-image float64 values added without rounding, rounded once at the end), so the
metrics do not depend on how the set is split into batches: `measure` over the whole set in
memory gives the same numbers to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from aekit.data.units import to_unit
from aekit.eval.metrics import psnr, ssim_map

# Float values (images x channels x pixels) in one evaluation batch: 4 MiB per float32 copy.
# Fashion-MNIST (784 values) keeps the 1,000-image batches that evaluation has always used.
PIXEL_BUDGET = 1 << 20
PREVIEW = 10  # images kept for reconstructions.png
# SSIM's float64 intermediates take ~90 bytes a value: it runs on slices of at most this many.
SSIM_VALUES = 1 << 18

Corruption = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class ExactSum:
    """A running float sum without rounding error (Shewchuk's partials, as in math.fsum): the
    result is the exact sum rounded once, whatever the order or grouping of the terms."""

    def __init__(self) -> None:
        self._partials: list[float] = []

    def add(self, x: float) -> None:
        i = 0
        for y in self._partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                self._partials[i] = lo
                i += 1
            x = hi
        self._partials[i:] = [x]

    def value(self) -> float:
        return math.fsum(self._partials)


class QualitySums:
    """mse / psnr / ssim of a set fed batch by batch. PSNR is of the pooled MSE (docs/DESIGN.md);
    SSIM is the mean of the per-image SSIMs."""

    def __init__(self) -> None:
        self._sq, self._ssim = ExactSum(), ExactSum()
        self.values = 0
        self.images = 0

    def add(self, x_hat: torch.Tensor, x: torch.Tensor) -> None:
        """Add a batch (B, C, H, W) of outputs and their targets in [0, 1]."""
        if len(x) == 0:
            return
        x_hat, x = x_hat.detach().cpu(), x.detach().cpu()
        step = max(1, SSIM_VALUES // max(1, x[0].numel()))
        # Per-image values, summed in numpy (pairwise, row by row): each image's value is the
        # same whatever batch or slice it came in, so the slicing changes no result.
        for s in range(0, len(x), step):
            a, b = x_hat[s : s + step], x[s : s + step]
            diff = a.double() - b.double()
            for v in (diff * diff).reshape(len(b), -1).numpy().sum(axis=1).tolist():
                self._sq.add(v)
            for v in ssim_map(a, b).reshape(len(b), -1).numpy().mean(axis=1).tolist():
                self._ssim.add(v)
        self.values += x.numel()
        self.images += len(x)

    def result(self) -> dict[str, float]:
        m = self._sq.value() / max(1, self.values)
        return {"mse": m, "psnr": psnr(m), "ssim": self._ssim.value() / max(1, self.images)}


def measure(x_hat: torch.Tensor, x: torch.Tensor, chunk: int = 2000) -> dict[str, float]:
    """mse / psnr / ssim over a whole set, chunked so memory stays flat."""
    sums = QualitySums()
    for s in range(0, len(x), chunk):
        sums.add(x_hat[s : s + chunk], x[s : s + chunk])
    return sums.result()


def eval_batch_size(image_shape: tuple[int, ...], batch_size: int = 1000,
                    pixel_budget: int = PIXEL_BUDGET) -> int:
    """Images per evaluation batch: at most `batch_size`, and at most `pixel_budget` float values
    (at least one image)."""
    per_image = max(1, math.prod(image_shape))
    return max(1, min(batch_size, pixel_budget // per_image))


def input_batches(x_uint8: torch.Tensor, corrupt: Corruption | None, seed: int,
                  batch_size: int, device: torch.device | str = "cpu"
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 batch, float model input on `device`) batch by batch: the evaluation noise, drawn
    the same way for the model and for any baseline scored on the same corrupted inputs."""
    gen = torch.Generator().manual_seed(seed + 11)
    for start in range(0, len(x_uint8), batch_size):
        x8 = x_uint8[start : start + batch_size]
        x = to_unit(x8, device)
        yield x8, corrupt(x, gen) if corrupt else x


def _batches(model: nn.Module, x_uint8: torch.Tensor, corrupt: Corruption | None, seed: int,
             keep: int | None, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """(uint8 batch, model input, reconstruction) batch by batch, inputs and outputs float CPU."""
    model.eval()
    device = next(model.parameters()).device
    for x8, x_in in input_batches(x_uint8, corrupt, seed, batch_size, device):
        out = model(x_in) if keep is None else model(x_in, keep=keep)
        yield x8, x_in.cpu(), out["x_hat"].float().cpu()


@torch.inference_mode()
def reconstruct_all(
    model: nn.Module,
    x_uint8: torch.Tensor,
    batch_size: int = 1000,
    corrupt: Corruption | None = None,
    seed: int = 0,
    keep: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (model input, reconstruction) as float CPU tensors (N, C, H, W) in [0, 1];
    `keep` decodes from the first `keep` latent units only (ordered/nested latents).
    Holds the whole set in float: for metrics alone use `evaluate_set`."""
    inputs, outputs = [], []
    for _, x_in, x_hat in _batches(model, x_uint8, corrupt, seed, keep, batch_size):
        inputs.append(x_in)
        outputs.append(x_hat)
    return torch.cat(inputs), torch.cat(outputs)


@dataclass
class Evaluation:
    test: dict[str, float]  # reconstruction vs clean
    corrupted_input: dict[str, float] | None  # corrupted model input vs clean (restoration runs)
    preview: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # first images: input, output, clean


@torch.inference_mode()
def evaluate_set(
    model: nn.Module,
    x_uint8: torch.Tensor,
    corrupt: Corruption | None = None,
    seed: int = 0,
    keep: int | None = None,
    batch_size: int = 1000,
    pixel_budget: int = PIXEL_BUDGET,
    preview: int = PREVIEW,
) -> Evaluation:
    """Metrics of `model` on a uint8 set (N, C, H, W) in memory bounded by one batch: the same
    numbers as `measure` over `reconstruct_all`'s outputs with the same batch size."""
    bs = eval_batch_size(tuple(x_uint8.shape[1:]), batch_size, pixel_budget)
    test = QualitySums()
    noisy = QualitySums() if corrupt is not None else None
    kept: list[list[torch.Tensor]] = [[], [], []]
    n_kept = 0
    for x8, x_in, x_hat in _batches(model, x_uint8, corrupt, seed, keep, bs):
        clean = x8.float() / 255.0
        test.add(x_hat, clean)
        if noisy is not None:
            noisy.add(x_in, clean)
        if n_kept < preview:
            take = preview - n_kept
            for part, t in zip(kept, (x_in, x_hat, clean), strict=True):
                part.append(t[:take].clone())
            n_kept += len(x_in[:take])
    shown = tuple(torch.cat(p) if p else torch.empty(0, *x_uint8.shape[1:]) for p in kept)
    return Evaluation(test.result(), noisy.result() if noisy is not None else None, shown)

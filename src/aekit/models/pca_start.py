"""PCA of the training images as a model's starting point (`init_from_data` of conv, dense, deep).

A model whose output is sigmoid(logits) starts as "PCA behind the sigmoid": the code is the PCA
code of the image, and the logits are the least-squares map from those codes to the images'
logits. Each model writes these numbers into its own layers; this module computes them once.

Why: with a code as large as PCA's, an autoencoder started at random ends just under PCA on
small or textured sets, or collapses (a dense ReLU code on texture patches), because it has to
discover PCA's directions through its bottleneck before it can improve on them; started at PCA,
training only has to add what PCA misses (docs/BENCHMARKS.md, "Starting at PCA").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aekit.data.stream import sample_images
from aekit.data.units import to_unit

# The start reads at most this many images and this many pixel values (float32: 128 MiB), so it
# takes about a second on 28x28 digits and on 64x64 photos alike.
PCA_START_IMAGES = 10_000
PCA_START_VALUES = 1 << 25
# Pixels are clipped to [eps, 1 - eps] before the logit the linear decoder is fitted to (a black
# pixel has no finite logit); of 0.01 / 0.03 / 0.1 on 8x8 digits, 0.03 started closest to PCA.
LOGIT_EPS = 0.03
# A pixel-space linear decoder's output is clipped to [eps, 1 - eps] before its logit. 0.01
# costs at most 0.07 dB against [0, 1] on digits and photos; smaller values let the logit's
# slope (1 / (p (1 - p))) grow and with it the gradient reaching the linear path.
PIXEL_EPS = 0.01
# linear_space=auto takes the pixel space only when its start is this much better than the logit
# fit's on the training sample. Within it the logit form is kept: on Fashion-MNIST, where the
# pixel start is ~0.1 dB better, the logit path still trained 0.3 dB better; where the pixel start
# is clearly better (8x8 digits, photo patches: +0.8 to +1.6 dB) it trains as well or better.
PIXEL_MARGIN_DB = 0.5


@dataclass(frozen=True)
class PCAStart:
    """code = basis @ (x - mean), x flattened in [0, 1]; decoded either in logit space, logits =
    decode.T @ code + logit_mean, or in pixel space, x_hat = clip(basis.T @ code + mean)."""

    basis: torch.Tensor  # (rank, D) orthonormal rows, leading components first
    mean: torch.Tensor  # (D,) mean image
    decode: torch.Tensor  # (rank, D) least-squares map from codes to logits
    logit_mean: torch.Tensor  # (D,)
    codes: torch.Tensor  # (N, rank) of the sample
    pixels: torch.Tensor  # (N, D) the sample in [0, 1]

    @property
    def rank(self) -> int:
        return self.basis.shape[0]

    def reconstruct(self, space: str = "logit") -> torch.Tensor:
        """(N, D) the sample as the start decodes it in `space` ("logit" or "pixel")."""
        if space == "pixel":
            return (self.codes @ self.basis + self.mean).clamp(PIXEL_EPS, 1 - PIXEL_EPS)
        return torch.sigmoid(self.codes @ self.decode + self.logit_mean)

    def psnr(self, space: str = "logit") -> float:
        """PSNR (dB) of the start on its sample."""
        mse = float(((self.reconstruct(space) - self.pixels) ** 2).mean())
        return -10 * math.log10(max(mse, 1e-12))

    def better_space(self) -> str:
        """"pixel" when the pixel start beats the logit fit by PIXEL_MARGIN_DB, else "logit"."""
        return "pixel" if self.psnr("pixel") >= self.psnr("logit") + PIXEL_MARGIN_DB else "logit"

    def describe(self, what: str, space: str = "logit") -> str:
        """One line for the run's log: what was started, on how many images, and how well."""
        return (f"{what} started at PCA-{self.rank} of {len(self.pixels):,} training images, "
                f"decoded in {space} space ({self.psnr(space):.2f} dB on them)")


@torch.no_grad()
def pca_start(x, latent_dim: int, seed: int = 0) -> PCAStart | None:
    """PCA-`latent_dim` (fewer when the sample is smaller) of a sample of the training images
    (uint8 (N, C, H, W), float32 in [0, 1], or streamed), and the logit fit; None for fewer
    than 2 images. The global random state is left untouched."""
    xs = sample_images(x, PCA_START_IMAGES, PCA_START_VALUES)
    if len(xs) < 2:
        return None
    pixels = to_unit(xs.flatten(1))  # (N, D) in [0, 1], from uint8 or float images
    mean = pixels.mean(0)
    centred = pixels - mean
    rank = min(latent_dim, len(pixels) - 1, pixels.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # svd_lowrank's random projections
        _, _, v = torch.svd_lowrank(centred, q=min(rank + 10, *centred.shape), niter=6)
    basis = v[:, :rank].T  # (rank, D)
    codes = centred @ basis.T  # (N, rank): PCA codes, uncorrelated, zero mean
    target = torch.logit(pixels.clamp(LOGIT_EPS, 1 - LOGIT_EPS))  # (N, D)
    logit_mean = target.mean(0)
    # Least squares from the codes to the logits; the codes' columns are orthogonal, so the
    # normal equations are diagonal.
    power = (codes * codes).sum(0).clamp_min(1e-12)  # (rank,)
    decode = (codes.T @ (target - logit_mean)) / power[:, None]  # (rank, D)
    return PCAStart(basis, mean, decode, logit_mean, codes, pixels)


@torch.no_grad()
def start_linear_paths(lin_enc: nn.Linear, lin_dec: nn.Linear, start: PCAStart,
                       scale: torch.Tensor | None = None, space: str = "logit") -> None:
    """Write a PCA start into the linear paths beside a model's stacks: code units 0..r-1 are
    the PCA codes divided by `scale` (r,) (None: unscaled), the rest zero, and the decoder maps
    them back to the least-squares logits (space "logit") or to PCA's pixels ("pixel")."""
    r = start.rank
    scale = torch.ones(r) if scale is None else scale
    lin_enc.weight.zero_()
    lin_enc.weight[:r] = start.basis / scale[:, None]
    lin_enc.bias.zero_()
    lin_enc.bias[:r] = -(start.basis @ start.mean) / scale
    lin_dec.weight.zero_()
    if space == "pixel":
        lin_dec.weight[:, :r] = (start.basis * scale[:, None]).T
        lin_dec.bias.copy_(start.mean)
    else:
        lin_dec.weight[:, :r] = (start.decode * scale[:, None]).T
        lin_dec.bias.copy_(start.logit_mean)


def pixel_logits(pixels: torch.Tensor) -> torch.Tensor:
    """Logits of a pixel-space linear decoder's output, clipped to [PIXEL_EPS, 1 - PIXEL_EPS],
    in float32 (a bfloat16 logit near the clip would be off by ~0.1)."""
    p = pixels.float().clamp(PIXEL_EPS, 1 - PIXEL_EPS)
    return torch.log(p) - torch.log1p(-p)  # logit, spelled so that ONNX export has the ops


def last_layer(stack: nn.Module) -> nn.Linear | nn.Conv2d:
    """The last Linear or Conv2d of a stack (the one whose output the stack returns)."""
    return [m for m in stack.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]


@torch.no_grad()
def zero_last_layers(*stacks: nn.Module) -> None:
    """Zero the last layer of each stack, so the stacks add nothing to a linear path's start
    until training gives them something to add."""
    for stack in stacks:
        last = last_layer(stack)
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()

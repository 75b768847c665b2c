"""`--augment auto` (the default): flips and quarter turns for a plain autoencoder whose training
images have no preferred orientation, decided from the images themselves.

A plain autoencoder is scored on test images as they come, so a turned or mirrored training
image is a fair extra example only when such images are as likely as the originals: photo and
texture patches have no "up", digits and garments do (a turned 6 is a 9; every Fashion-MNIST shoe
points left). On small sets of orientation-free patches the extra examples are what the conv
stacks need: without them they memorise the training patches and the run keeps its PCA start
(docs/BENCHMARKS.md, "Orientation-free images").

The test: PCA-k of half of a sample of the training images reconstructs the other half as it
is and under each of the other flips and turns (the 4 flips that keep the shape for non-square
images); the images are orientation-free when no transform costs more than SYMMETRY_MARGIN_DB.
Measured with k = 32 (worst transform against the originals): photo patches 32x32 -0.07 dB and
64x64 -0.02, texture patches -0.16; 8x8 digits -14.4, MNIST -2.9, Fashion-MNIST -2.9 (its mirror
alone -1.1).

Only a plain reconstruction run is augmented: a run that undoes a corruption keeps its images
(on the photo and texture columns `dihedral` moved denoising by -0.04 to +0.03 dB), and so do
the codec and two-domain models, whose recipes were measured without it.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from aekit.config import TrainConfig
from aekit.data.augment import symmetry, symmetry_count
from aekit.data.stream import sample_images
from aekit.data.units import to_unit

# A transform may cost at most this much PSNR of the held-out half's PCA reconstruction.
SYMMETRY_MARGIN_DB = 0.5
SYMMETRY_IMAGES = 4000  # images the test reads (evenly spaced), at most SYMMETRY_VALUES values
SYMMETRY_VALUES = 1 << 24
SYMMETRY_RANK = 32
MIN_IMAGES = 16  # fewer: no evidence either way, no augmentation


@torch.no_grad()
def orientation_costs(x, rank: int = SYMMETRY_RANK, seed: int = 0) -> list[float] | None:
    """PSNR lost (dB, >= 0 means worse) by each non-identity transform of a held-out half of a
    sample of `x` (uint8 or float (N, C, H, W), or streamed), reconstructed by PCA-`rank` of the
    other half; None for fewer than MIN_IMAGES images. The global random state is untouched."""
    xs = sample_images(x, SYMMETRY_IMAGES, SYMMETRY_VALUES)
    if len(xs) < MIN_IMAGES:
        return None
    pixels = to_unit(xs)  # (N, C, H, W) in [0, 1]
    fit, held = pixels[0::2].flatten(1), pixels[1::2]  # (N/2, D), (N/2, C, H, W)
    mean = fit.mean(0)
    k = min(rank, len(fit) - 1, fit.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # svd_lowrank's random projections
        _, _, v = torch.svd_lowrank(fit - mean, q=min(k + 10, *fit.shape), niter=4)
    basis = v[:, :k]  # (D, k)

    def psnr(images: torch.Tensor) -> float:
        flat = images.flatten(1)  # (N/2, D)
        rec = ((flat - mean) @ basis @ basis.T + mean).clamp(0, 1)
        return -10 * math.log10(max(float(((rec - flat) ** 2).mean()), 1e-12))

    scores = [psnr(symmetry(held, code)) for code in range(symmetry_count(held))]
    return [scores[0] - s for s in scores[1:]]


def resolve(cfg: TrainConfig, train_x, model) -> tuple[TrainConfig, str]:
    """`cfg` with augment "auto" decided for `model` (an AutoencoderModule) on its training
    images: "dihedral" or "none", what a run folder records; and a line saying why ("" unless
    the images were augmented)."""
    if cfg.augment != "auto":
        return cfg, ""
    choice, why = "none", ""
    if not (cfg.corrupt or model.entropy_coded or model.domains):
        costs = orientation_costs(train_x, seed=cfg.seed)
        if costs is not None and max(costs) <= SYMMETRY_MARGIN_DB:
            choice = "dihedral"
            why = (f"augment: dihedral, a random flip or quarter turn of every training image "
                   f"(automatic: the images have no preferred orientation, PCA reconstructs "
                   f"them turned and flipped within {max(costs):.2f} dB; choose with --augment)")
    return dataclasses.replace(cfg, augment=choice), why

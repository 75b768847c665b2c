"""What `aekit train` picks when it is not told: the recipes docs/BENCHMARKS.md records.

A restoration run (`--corrupt` with any corruption but `affine`) without `--model` trains a
U-Net; the `conv` squeezes every image through a 32-d code and restores less well (after one
epoch 16.94 dB against the U-Net's 18.74: docs/BENCHMARKS.md "Recorded recipes as defaults").
Light Gaussian noise alone (sigma <= 0.25) trains the denoising U-Net (full resolution, narrow
widths); heavier noise and every other corruption the recorded U-Net of "Denoising, sigma = 0.5
clipped" (half resolution, wide). At sigma = 25/255 the full-resolution one is ahead on every
column of bench/matrix.py and trains in less time (docs/BENCHMARKS.md "Denoising at full
resolution"); inpainting and the other corruptions keep the recorded one, which is what their
numbers were measured with; at sigma = 0.5 the recorded one is 0.08 dB ahead after its 40
epochs (20.03 against 19.95 dB). The denoising U-Net's automatic budget is at least 20 epochs
(Fashion-MNIST: 27.98 dB against 27.70 at the default 10).
`--corrupt affine` alone is the few-label pretraining (a small random warp to undo): the `conv`
whose code `aekit finetune` uses, as it was when the few-label numbers were recorded (without
the linear path that plain reconstruction starts at PCA). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aekit.config import AUTO_EPOCHS

PLAIN_MODEL = "conv"


@dataclass(frozen=True)
class Recipe:
    model: str
    widths: tuple[int, ...] = ()
    options: dict = field(default_factory=dict)
    note: str = ""  # one line for the log: what was picked, and how to get the recorded number
    auto_epochs: int = AUTO_EPOCHS  # epochs of the automatic budget (aekit.train.budget)


RESTORE = Recipe(
    "unet", (32, 64, 128), {"shuffle": 2, "depth": 2},
    "model: unet --widths 32,64,128 --option shuffle=2 --option depth=2, the recorded "
    "restoration recipe for --corrupt (--model chooses another); its recorded 20.03 dB "
    "(Fashion-MNIST, --corrupt gaussian:0.5) took --epochs 40")


# The full-resolution denoiser is still improving after the default 10 epochs on a large set
# (Fashion-MNIST: validation loss falling at epoch 10); smaller sets reach MIN_STEPS first.
DENOISE_EPOCHS = 20

# Fine detail is what light noise hides, so the denoiser works at the image's own resolution
# (no pixel unshuffle); half the widths keep its cost under the recorded U-Net's.
DENOISE = Recipe(
    "unet", (16, 32, 64), {"shuffle": 1, "depth": 2},
    "model: unet --widths 16,32,64 --option shuffle=1 --option depth=2, the denoising recipe "
    "for --corrupt gaussian up to sigma 0.25, at least 20 epochs (--model chooses another)",
    auto_epochs=DENOISE_EPOCHS)

# Measured at sigma = 25/255 (ahead on every column) and 0.5 (behind the recorded U-Net after
# the recorded 40 epochs): heavier noise keeps the recorded U-Net.
DENOISE_MAX_SIGMA = 0.25


def _light_noise(parts: list[list[str]]) -> bool:
    """True when every operation is `gaussian:SIGMA` with SIGMA <= DENOISE_MAX_SIGMA."""
    try:
        return all(op == "gaussian" and float(args[0]) <= DENOISE_MAX_SIGMA
                   for op, *args in parts)
    except (IndexError, ValueError):  # a malformed spec is the corruption parser's to report
        return False


PRETRAIN = Recipe(
    PLAIN_MODEL, (), {"linear": False},
    "model: conv --option linear=false, the encoder the recorded few-label numbers were "
    "measured with (--model or --option linear=true chooses another)")


def for_task(corrupt: str) -> Recipe:
    """The model a run trains when `--model` is not given, for its `--corrupt` spec."""
    parts = [part.strip().split(":", 1) for part in corrupt.split("+") if part.strip()]
    if not parts:
        return Recipe(PLAIN_MODEL)
    if all(op == "affine" for op, *_ in parts):
        return PRETRAIN
    if _light_noise(parts):
        return DENOISE
    return RESTORE

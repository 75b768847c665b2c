"""What `aekit train` picks when it is not told: the recipes docs/BENCHMARKS.md records.

A restoration run (`--corrupt` with any corruption but `affine`) without `--model` trains the
recorded denoiser, the U-Net of "Denoising, sigma = 0.5 clipped" (20.03 dB on Fashion-MNIST after
40 epochs); the `conv` squeezes every image through a 32-d code and restores less well (after one
epoch 16.94 dB against the U-Net's 18.74: docs/BENCHMARKS.md "Recorded recipes as defaults").
`--corrupt affine` alone is the few-label pretraining (a small random warp to undo): the `conv`
whose code `aekit finetune` uses, as it was when the few-label numbers were recorded (without
the linear path that plain reconstruction starts at PCA). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PLAIN_MODEL = "conv"


@dataclass(frozen=True)
class Recipe:
    model: str
    widths: tuple[int, ...] = ()
    options: dict = field(default_factory=dict)
    note: str = ""  # one line for the log: what was picked, and how to get the recorded number


RESTORE = Recipe(
    "unet", (32, 64, 128), {"shuffle": 2, "depth": 2},
    "model: unet --widths 32,64,128 --option shuffle=2 --option depth=2, the recorded "
    "restoration recipe for --corrupt (--model chooses another); its recorded 20.03 dB "
    "(Fashion-MNIST, --corrupt gaussian:0.5) took --epochs 40")


PRETRAIN = Recipe(
    PLAIN_MODEL, (), {"linear": False},
    "model: conv --option linear=false, the encoder the recorded few-label numbers were "
    "measured with (--model or --option linear=true chooses another)")


def for_task(corrupt: str) -> Recipe:
    """The model a run trains when `--model` is not given, for its `--corrupt` spec."""
    ops = [part.strip().split(":", 1)[0] for part in corrupt.split("+") if part.strip()]
    if not ops:
        return Recipe(PLAIN_MODEL)
    if all(op == "affine" for op in ops):
        return PRETRAIN
    return RESTORE

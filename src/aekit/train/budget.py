"""How long a run trains: whole epochs, chosen from TrainConfig's `epochs` and `steps`.

- `steps` > 0: enough whole epochs to take at least that many optimizer steps (an epoch is
  `n // batch_size` steps: the ragged last batch is dropped).
- else `epochs` > 0: exactly that many epochs, as given.
- else (the default, `epochs` = 0): `auto_epochs` epochs (AUTO_EPOCHS unless a task's recipe
  asks for more), raised on a small dataset so that the run
  still takes at least MIN_STEPS steps. 455 images at batch 128 are 3 steps an epoch: 10 epochs
  would be 30 steps, far from a useful model; Fashion-MNIST's 55,000 (429 steps an epoch) keep
  exactly 10 epochs. Such a run also stops once its validation loss has not improved for a
  quarter of those epochs (AUTO_PATIENCE_SHARE), unless `patience` is given.

The choice depends only on the settings and the number of training images, so a resumed run
(which reads the same settings and data) plans the same epochs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from aekit.config import AUTO_EPOCHS, MIN_STEPS, TrainConfig

# A run of more epochs than this (a small folder on the automatic budget: 3,000 epochs of one
# step) writes its end-of-epoch checkpoint and prints its epoch line only every `epoch_stride`
# epochs, and at its last: one checkpoint per step cost more time than the training itself.
MAX_EPOCH_REPORTS = 100

# An automatic budget (no --epochs, --steps or --patience) stops once the validation loss has not
# improved for this share of its planned epochs (at least AUTO_PATIENCE_MIN): the best epoch is
# what a run keeps, and on every run of the default-settings matrix this stop leaves it the same
# while cutting e.g. 750 planned epochs to 193 (docs/BENCHMARKS.md, "Stopping early").
AUTO_PATIENCE_SHARE, AUTO_PATIENCE_MIN = 0.25, 10


@dataclass(frozen=True)
class Budget:
    epochs: int
    steps_per_epoch: int
    why: str  # one line: what was chosen and why
    patience: int = 0  # early-stopping patience in epochs (0: every planned epoch)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def plan(cfg: TrainConfig, n_train: int) -> Budget:
    """The epochs `cfg` asks for on `n_train` training images, and a one-line reason."""
    per_epoch = max(1, n_train // cfg.batch_size)
    if cfg.steps:
        epochs = math.ceil(cfg.steps / per_epoch)
        why = f"--steps {cfg.steps:,}"
    elif cfg.epochs:
        epochs, why = cfg.epochs, "--epochs as given"
    else:
        auto = cfg.auto_epochs
        epochs = max(auto, math.ceil(MIN_STEPS / per_epoch))
        label = f"{auto} epochs" + ("" if auto == AUTO_EPOCHS else " (the task's recipe)")
        why = (f"automatic: {label}" if epochs == auto else
               f"automatic: {n_train:,} images are {_steps(per_epoch)} an epoch, raised from "
               f"{label} to reach {MIN_STEPS:,} steps")
        why += "; choose with --epochs or --steps"
    epochs = min(epochs, 100_000)
    patience = cfg.patience
    if not (cfg.steps or cfg.epochs or patience):
        patience = max(AUTO_PATIENCE_MIN, math.ceil(AUTO_PATIENCE_SHARE * epochs))
        why += (f"; stops once {patience} epochs pass without a better validation loss "
                "(--patience)")
    return Budget(epochs, per_epoch, why, patience)


def resolve(cfg: TrainConfig, n_train: int) -> tuple[TrainConfig, Budget]:
    """`cfg` with its epochs fixed by `plan` (what a run folder records), and the plan."""
    budget = plan(cfg, n_train)
    return dataclasses.replace(cfg, epochs=budget.epochs, patience=budget.patience), budget


def _steps(n: int) -> str:
    return f"{n:,} step" + ("" if n == 1 else "s")


def epoch_stride(epochs: int) -> int:
    """Every how many epochs a run of `epochs` checkpoints and reports (its last one always)."""
    return max(1, math.ceil(epochs / MAX_EPOCH_REPORTS))


def reported(epoch: int, epochs: int) -> bool:
    """Whether epoch `epoch` (1-based) of `epochs` gets a checkpoint and an epoch line."""
    return epoch == epochs or epoch % epoch_stride(epochs) == 0


def describe(budget: Budget, batch_size: int) -> str:
    """The schedule line a run prints before its first epoch."""
    stride = epoch_stride(budget.epochs)
    every = f"; checkpoint and line every {stride} epochs" if stride > 1 else ""
    return (f"schedule: {budget.epochs} epochs x {_steps(budget.steps_per_epoch)} of "
            f"{batch_size} images = {budget.total_steps:,} optimizer steps ({budget.why}{every})")

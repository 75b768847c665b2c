"""What one training step optimises: the part of training that `fit` does not own.

`fit` (train/loop.py) is the one training loop: it repeats steps for a number of epochs, sets the
learning rates, runs the optimizer, stops on a non-finite loss, shows progress, keeps the best
validation epoch, writes checkpoints and handles preemption. An `Objective` supplies the rest:

- `setup`: place the model, build the loss, start from the data (a fresh run only);
- `parameter_groups` (each group MAY set its own "lr"; the objective's `learning_rates` sets them
  every step in the same order);
- `start_epoch` (seeding, the epoch's generator and order) and `batches` (what each step draws);
- `loss` of one step, `after_step` (e.g. a moving-average teacher);
- `validation_loss` and `collapse_check` (None where they mean nothing), `finish`.

`Reconstruction` is the autoencoder objective every `aekit train` run uses (a clean or corrupted
input, the model's reconstruction loss). The few-label classifier (aekit.represent.fewlabel) is
another: labelled batches drawn with replacement, its own loss and a teacher.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from aekit.config import TrainConfig
from aekit.data.augment import augment_batch
from aekit.data.stream import iter_batches, iter_chunks
from aekit.data.units import to_unit
from aekit.device import autocast_dtype
from aekit.errors import RunError
from aekit.train.health import CollapseCheck, start_from_data
from aekit.train.losses import build_loss

# corrupt(x, generator) -> model input; None trains a plain autoencoder (input == target).
Corruption = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Objective(ABC):
    """The base: one parameter group, a cosine or constant schedule (`lr_at`), no validation.

    `steps_per_epoch`: None lets `fit` plan epochs over the data (aekit.train.budget); a number
    fixes the length of an epoch (an objective that samples with replacement has no natural one).
    """

    steps_per_epoch: int | None = None

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def setup(self, model: nn.Module, train_x: Any, device: torch.device, resume: bool,
              shard: slice | None) -> None:
        """Called once before the optimizer is built; `shard` is this rank's share of a global
        batch under a process group (None alone). Nothing by default."""
        return None

    def parameter_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": list(model.parameters())}]

    def learning_rates(self, step: int, total_steps: int) -> list[float]:
        """One learning rate per parameter group at this step."""
        return [lr_at(self.cfg, step, total_steps)]

    @abstractmethod
    def start_epoch(self, epoch: int, n: int) -> torch.Generator:
        """Seed the epoch; returns the generator its random draws come from."""

    @abstractmethod
    def batches(self, train_x: Any, steps: int, start: int) -> Iterator[Any]:
        """What steps start..steps-1 of the epoch get (after `start_epoch`)."""

    @abstractmethod
    def loss(self, net: nn.Module, batch: Any, gen: torch.Generator
             ) -> tuple[torch.Tensor, dict]:
        """The step's loss (a scalar to minimise) and a dict of numbers to show."""

    def after_step(self, model: nn.Module, step: int, loss: float) -> None:
        """After the optimizer step; `step` counts steps done, from 1. Nothing by default."""
        return None

    def validation_loss(self, model: nn.Module, val_x: Any, device: torch.device) -> float:
        raise RunError(f"{type(self).__name__} has no validation loss; train without one")

    def collapse_check(self, images: Any) -> CollapseCheck | None:
        return None

    def refit_start(self, model: nn.Module, train_x: Any, val_x: Any) -> str | None:
        """Validation kept the model at its start (best epoch 0, those weights loaded); returns
        a line saying what was done about it, or None. Nothing by default."""
        return None

    def finish(self, model: nn.Module, train_x: Any) -> str | None:
        """After training (the best weights already loaded); returns a line saying what it did
        (e.g. the model's `finalize` on the training images), or None."""
        model.eval()
        return None


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warm-up over min(100, 5%) of the steps, then cosine decay to 2% of the peak."""
    if cfg.schedule == "constant":
        return cfg.lr
    warmup = min(100, total_steps // 20)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def tile_target(out: dict, target: torch.Tensor) -> torch.Tensor:
    """The target repeated to match a forward pass that decoded each input several times
    (nested dropout with nested_draws > 1 returns (draws*B, ...) rows, copy j of example i at row
    j*B + i)."""
    rows, b = out["x_hat"].shape[0], target.shape[0]
    if rows == b:
        return target
    if rows % b:
        raise RunError(f"model returned {rows} reconstructions for a batch of {b}")
    return target.repeat(rows // b, *([1] * (target.dim() - 1)))  # (draws*B, C, H, W)


def preferred_memory_format(model: nn.Module) -> torch.memory_format:
    """Channels-last for convolutional models: oneDNN's conv kernels run ~2x faster on CPU with
    NHWC tensors; dense models keep the default layout (they flatten anyway)."""
    has_conv = any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in model.modules())
    return torch.channels_last if has_conv else torch.contiguous_format


class Reconstruction(Objective):
    """An autoencoder learns to rebuild its input (or to undo `corrupt`): uint8 images in memory
    or streamed, a fresh order per epoch seeded by (seed, epoch), the model's loss in float32.

    Resume from an epoch end is exact without saving RNG state: every epoch's shuffle (and
    corruption noise) comes from a generator seeded by (seed, epoch), and the global torch seed is
    reset from (seed, epoch) too, so epoch k behaves identically whether or not the process was
    restarted before it.
    """

    def __init__(self, cfg: TrainConfig, corrupt: Corruption | None = None) -> None:
        super().__init__(cfg)
        self.corrupt = corrupt

    def setup(self, model: nn.Module, train_x: Any, device: torch.device, resume: bool,
              shard: slice | None) -> None:
        self.device = device
        self.memory_format = preferred_memory_format(model)
        self.amp_dtype = autocast_dtype(self.cfg.precision, device)
        model.to(device, memory_format=self.memory_format).train()
        if not resume:  # a freshly built model starts at the data's mean intensity, not 0.5 grey
            start_from_data(model, train_x)
        self.loss_fn = build_loss(self.cfg.loss, model)
        # With a corruption the noise is drawn for the whole global batch (as one process
        # would), so each rank then keeps its shard of the corrupted batch.
        self.read_shard = shard if self.corrupt is None else None
        self.late_shard = shard if self.corrupt is not None else None

    def start_epoch(self, epoch: int, n: int) -> torch.Generator:
        torch.manual_seed(self.cfg.seed * 1_000_003 + epoch)
        gen = epoch_generator(self.cfg.seed, epoch)
        self.order = torch.randperm(n, generator=gen)
        return gen

    def batches(self, train_x: Any, steps: int, start: int) -> Iterator[torch.Tensor]:
        return iter_batches(train_x, self.order, self.cfg.batch_size, steps, self.read_shard,
                            start=start)

    def loss(self, net: nn.Module, batch: torch.Tensor, gen: torch.Generator
             ) -> tuple[torch.Tensor, dict]:
        target = to_unit(batch, self.device).contiguous(memory_format=self.memory_format)
        if self.cfg.augment:
            target = augment_batch(target, self.cfg.augment, gen)
        x_in = self.corrupt(target, gen) if self.corrupt else target
        if self.late_shard is not None:
            target, x_in = target[self.late_shard], x_in[self.late_shard]
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            out = net(x_in)
        # The loss is always computed in float32, whatever the forward pass ran in.
        out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
        return self.loss_fn(out, tile_target(out, target))

    def validation_loss(self, model: nn.Module, val_x: Any, device: torch.device) -> float:
        return evaluate_loss(model, self.loss_fn, val_x, device, self.corrupt, self.cfg.seed)

    def collapse_check(self, images: Any) -> CollapseCheck | None:
        return CollapseCheck(images, self.corrupt, self.cfg.seed)

    def refit_start(self, model: nn.Module, train_x: Any, val_x: Any) -> str | None:
        """A closed-form start (PCA) that held-out images preferred to every trained epoch is
        fitted again on the training and validation images together: the estimator they chose,
        given all the data, as the baseline it is compared with sees it. Streamed images keep
        their start (it reads a sample of at most PCA_START_IMAGES of them anyway)."""
        if not (model.closed_form_start and isinstance(train_x, torch.Tensor)
                and isinstance(val_x, torch.Tensor)):
            return None
        device = next(model.parameters()).device
        model.cpu()  # the start is computed on the CPU and written into the weights there
        note = model.init_from_data(torch.cat([train_x, val_x]), seed=self.cfg.seed)
        model.to(device)
        return note and f"validation kept the start (epoch 0); fitted again with the validation " \
                        f"images: {note}"

    def finish(self, model: nn.Module, train_x: Any) -> str | None:
        model.output_init_pending = False  # trained: a second fit continues, never restarts
        note = model.finalize(train_x)
        model.eval()
        return note


@torch.inference_mode()
def evaluate_loss(
    model: nn.Module,
    loss_fn: nn.Module,
    x_uint8: torch.Tensor,
    device: torch.device,
    corrupt: Corruption | None = None,
    seed: int = 0,
    batch_size: int = 1000,
) -> float:
    """Mean loss over a dataset (fixed corruption noise so validation numbers are comparable)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed + 7)
    total, n = 0.0, 0
    for chunk in iter_chunks(x_uint8, batch_size):
        target = to_unit(chunk, device)
        x_in = corrupt(target, gen) if corrupt else target
        loss, _ = loss_fn(model(x_in), target)
        total += float(loss) * len(target)
        n += len(target)
    model.train(was_training)
    return total / max(1, n)

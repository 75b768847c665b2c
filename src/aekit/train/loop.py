"""One model-agnostic training loop: in-memory uint8 data batched by indexing, Adam(W), cosine LR,
early stopping, NaN detection, an atomic checkpoint every epoch and exact `--resume`.

Resume is exact without saving RNG state: every epoch's shuffle (and corruption noise) comes from a
generator seeded by (seed, epoch), and the global torch seed is reset from (seed, epoch) too, so
epoch k behaves identically whether or not the process was restarted before it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from aekit.config import TrainConfig
from aekit.data.augment import augment_batch
from aekit.data.stream import iter_batches, iter_chunks
from aekit.data.units import to_unit
from aekit.device import autocast_dtype, resolve_device
from aekit.errors import RunError, TrainingDiverged
from aekit.train import distributed
from aekit.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from aekit.train.health import CollapseCheck, report, start_from_data
from aekit.train.losses import build_loss

# corrupt(x, generator) -> model input; None trains a plain autoencoder (input == target).
Corruption = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    best_epoch: int = 0
    stopped_early: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. a collapsed run (train/health.py)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    warmup = min(100, total_steps // 20)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


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


def fit(
    model: nn.Module,
    train_x: torch.Tensor,
    cfg: TrainConfig,
    val_x: torch.Tensor | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    corrupt: Corruption | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    on_step: Callable[[int, float, dict], None] | None = None,
) -> FitResult:
    """Train `model` on uint8 images (N, C, H, W); returns the history. Weights end at the best
    validation epoch when there is a validation set, else at the last epoch.

    `train_x` may also be streamed images (aekit.data.stream). Under a torchrun process group
    each rank trains a DDP replica on its shard of every global batch; only rank 0 checkpoints.
    """
    world = distributed.current()
    main = world is None or world.is_main
    device = resolve_device(cfg.device)
    memory_format = preferred_memory_format(model)
    amp_dtype = autocast_dtype(cfg.precision, device)
    model.to(device, memory_format=memory_format).train()
    if not resume:  # a freshly built model starts at the data's mean intensity, not 0.5 grey
        start_from_data(model, train_x)
    loss_fn = build_loss(cfg.loss, model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(train_x)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch: steady batch stats
    total_steps = steps_per_epoch * cfg.epochs

    result = FitResult()
    start_epoch, step, best_val, best_state, bad_epochs = 0, 0, math.inf, None, 0
    if resume:
        if run_dir is None:
            raise RunError("resume needs a run folder")
        ckpt = load_checkpoint(run_dir)
        _load_state(model, ckpt["model"], run_dir)
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError, TypeError) as e:
            raise RunError(f"{Path(run_dir) / 'checkpoint' / CHECKPOINT_NAME}: optimizer state "
                           f"does not match the model ({type(e).__name__}); delete "
                           f"{Path(run_dir) / 'checkpoint'} to start over") from None
        meta = ckpt["meta"]
        start_epoch, step = meta["epoch"], meta["step"]
        best_val, bad_epochs = meta["best_val"], meta["bad_epochs"]
        best_state = ckpt["best"]
        result.history = meta["history"]
        result.train_seconds = meta["train_seconds"]
        result.best_epoch = meta.get("best_epoch", 0)
        result.warnings = list(meta.get("warnings", []))
    net = distributed.wrap(model, device) if world else model
    shard = distributed.batch_shard(cfg.batch_size, world) if world else None
    # With a corruption the noise is drawn for the whole global batch (as one process would),
    # so each rank then keeps its shard of the corrupted batch.
    late_shard = shard if corrupt is not None else None
    collapse = CollapseCheck(val_x if val_x is not None and len(val_x) else train_x, corrupt,
                             cfg.seed) if main else None

    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        gen = epoch_generator(cfg.seed, epoch)
        order = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        running, bar = 0.0, _progress(progress and main, steps_per_epoch, epoch, cfg.epochs)
        batches = iter_batches(train_x, order, cfg.batch_size, steps_per_epoch,
                               shard if late_shard is None else None)
        for i in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, step, total_steps)
            target = to_unit(next(batches), device).contiguous(memory_format=memory_format)
            if cfg.augment:
                target = augment_batch(target, cfg.augment, gen)
            x_in = corrupt(target, gen) if corrupt else target
            if late_shard is not None:
                target, x_in = target[late_shard], x_in[late_shard]
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                out = net(x_in)
            # The loss is always computed in float32, whatever the forward pass ran in.
            out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
            loss, logs = loss_fn(out, tile_target(out, target))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {float(loss.detach())} at epoch {epoch + 1}, step {i + 1}; "
                    + (f"the last good checkpoint (epoch {epoch}) is kept in {run_dir}/checkpoint; "
                       if run_dir else "")
                    + f"try a lower --lr than {cfg.lr}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            running += loss_value
            if on_step is not None:
                on_step(step, loss_value, logs)
            if bar is not None:
                rate = (i + 1) * cfg.batch_size / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{running / (i + 1):.4f}", img_s=f"{rate:,.0f}", **logs)
                bar.update(1)
        if bar is not None:
            bar.close()
        epoch_seconds = time.perf_counter() - t0
        result.train_seconds += epoch_seconds
        train_loss = running / steps_per_epoch
        if world:
            train_loss = distributed.mean_over_ranks(train_loss)
        row = {"epoch": epoch + 1, "train_loss": train_loss,
               "val_loss": None, "seconds": round(epoch_seconds, 3),
               "lr": optimizer.param_groups[0]["lr"]}
        if val_x is not None and len(val_x):
            if main:
                row["val_loss"] = evaluate_loss(model, loss_fn, val_x, device, corrupt, cfg.seed)
            if world:  # every rank takes the same early-stopping decision
                row["val_loss"] = distributed.from_main(row["val_loss"])
            if row["val_loss"] < best_val:
                best_val, bad_epochs, result.best_epoch = row["val_loss"], 0, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
        result.history.append(row)
        last = epoch + 1 == cfg.epochs or bool(cfg.patience and bad_epochs >= cfg.patience)
        # Mid-run, a near-constant output is announced once, and only a quarter of the way in:
        # slow starters (the seed presets on sparse digits) pass through a flat phase in their
        # first steps. The verdict recorded in metrics.json is the final model's.
        if collapse is not None and (last or (not result.warnings and step >= total_steps // 4)):
            message = collapse(model, device, step, final=last)
            if message is None and last:
                result.warnings = []  # it grew out of an early flat phase: not a collapse
            elif message is not None and not result.warnings:
                result.warnings = [message]
                report(message)
        if run_dir is not None and main:
            meta = {"epoch": epoch + 1, "step": step, "best_val": best_val,
                    "bad_epochs": bad_epochs, "history": result.history,
                    "train_seconds": result.train_seconds, "best_epoch": result.best_epoch,
                    "warnings": result.warnings}
            save_checkpoint(run_dir, model, optimizer, best_state, meta)
        if on_epoch:
            on_epoch(row)
        if cfg.patience and bad_epochs >= cfg.patience:
            result.stopped_early = True
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    # Back to the default layout: a model saved and reloaded must compute bit-identically.
    model.to(memory_format=torch.contiguous_format)
    model.output_init_pending = False  # trained: a second fit continues, never restarts
    model.finalize()
    model.eval()
    total_images = sum(1 for _ in result.history) * steps_per_epoch * cfg.batch_size
    result.images_per_second = total_images / max(result.train_seconds, 1e-9)
    return result


def _load_state(model: nn.Module, state: dict, run_dir) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(f"{run_dir}: checkpoint does not match the model ({first})") from None


def _progress(enabled: bool, total: int, epoch: int, epochs: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch",
                dynamic_ncols=True)

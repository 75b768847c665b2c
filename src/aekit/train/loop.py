"""The one training loop: steps in epochs, AdamW, per-step learning rates, early stopping, NaN
detection, an atomic checkpoint every epoch (every k-th of a run of many short epochs,
aekit.train.budget.epoch_stride) and exact `--resume`. What a step computes (batches,
loss, schedule, validation) is an `Objective` (aekit.train.objective): an autoencoder's
reconstruction by default, a few-label classifier's cross-entropy in aekit.represent.

Resume from an epoch end is exact without saving RNG state: each epoch's draws come from a
generator the objective seeds from (seed, epoch). A mid-epoch checkpoint (`--checkpoint-every N`
steps, or a stop on SIGTERM/SIGINT, see aekit.train.preempt) also saves the generators' states and
the position in the epoch: the resumed run rebuilds the same order, skips the batches already done
and draws the same numbers. Writing checkpoints reads the state and changes nothing, so results do
not depend on them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit.config import TrainConfig
from aekit.device import resolve_device
from aekit.errors import AekitError, RunError, TrainingDiverged
from aekit.train import distributed
from aekit.train.budget import reported
from aekit.train.budget import resolve as resolve_budget
from aekit.train.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from aekit.train.health import report
from aekit.train.objective import Corruption, Objective, Reconstruction
from aekit.train.preempt import Preempted, StopSignals
from aekit.train.symmetry import resolve as resolve_augment


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    best_epoch: int = 0
    stopped_early: bool = False
    warnings: list[str] = field(default_factory=list)  # e.g. a collapsed run (train/health.py)
    notes: list[str] = field(default_factory=list)  # what the end of training did (finalize)


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
    stop: StopSignals | None = None,
    log_state: Any = None,
    objective: Objective | None = None,
    stop_on_collapse: bool = False,
) -> FitResult:
    """Train `model` on uint8 images (N, C, H, W); returns the history. Weights end at the best
    validation epoch when there is a validation set, else at the last epoch.

    `objective` (aekit.train.objective) says what a step computes; the default, `Reconstruction`,
    trains an autoencoder to rebuild its input or, with `corrupt`, to undo that corruption.
    `train_x` may also be streamed images (aekit.data.stream). Under a torchrun process group
    each rank trains a DDP replica on its shard of every global batch; only rank 0 checkpoints.

    `stop` (an installed aekit.train.preempt.StopSignals): once it has caught SIGTERM or SIGINT,
    training stops at the next step boundary, writes a checkpoint of that exact position and
    raises `Preempted`; under a process group every rank passes one and they all stop after the
    same step. Without it a signal acts as usual (Ctrl-C raises KeyboardInterrupt mid-step).
    `log_state`: an object with `state_dict()` / `load_state_dict(d)` (JSON values; the run
    logger's per-epoch sums) that mid-epoch checkpoints carry, so a resumed epoch logs as an
    uninterrupted one.
    `stop_on_collapse`: end training at the epoch whose collapse check first finds a collapsed
    model (`stopped_early`, the warning in `warnings`), for a caller that trains it again
    differently instead of finishing a run that is already lost.
    """
    world = distributed.current()
    main = world is None or world.is_main
    device = resolve_device(cfg.device)
    if objective is None:  # an autoencoder's reconstruction, its augment "auto" decided here
        # unless the caller has (a run folder records the choice, train_run decides it first)
        cfg = resolve_augment(cfg, train_x, model)[0]
        objective = Reconstruction(cfg, corrupt)
    shard = distributed.batch_shard(cfg.batch_size, world) if world else None
    objective.setup(model, train_x, device, resume, shard)
    optimizer = torch.optim.AdamW(objective.parameter_groups(model), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    n = len(train_x)
    if objective.steps_per_epoch is None:
        # Whole epochs from --epochs/--steps or the automatic minimum-steps rule
        # (aekit.train.budget); an epoch drops the ragged last batch: steady batch statistics.
        cfg, budget = resolve_budget(cfg, n)
        steps_per_epoch, total_steps = budget.steps_per_epoch, budget.total_steps
    else:  # the objective's own epoch length; no automatic budget: one epoch unless told
        cfg = dataclasses.replace(cfg, epochs=cfg.epochs or 1)
        steps_per_epoch = objective.steps_per_epoch
        total_steps = steps_per_epoch * cfg.epochs

    result = FitResult()
    start_epoch, step, best_val, best_state, bad_epochs = 0, 0, math.inf, None, 0
    partial = None  # where a mid-epoch checkpoint left off in epoch start_epoch
    if resume:
        if run_dir is None:
            raise RunError("resume needs a run folder")
        ckpt_path = Path(run_dir) / "checkpoint" / CHECKPOINT_NAME
        ckpt = load_checkpoint(run_dir)
        _load_state(model, ckpt["model"], run_dir)
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError, TypeError) as e:
            raise RunError(f"{ckpt_path}: optimizer state does not match the model "
                           f"({type(e).__name__}); delete {Path(run_dir) / 'checkpoint'} to "
                           "start over") from None
        meta = ckpt["meta"]
        start_epoch, step = meta["epoch"], meta["step"]
        best_val, bad_epochs = meta["best_val"], meta["bad_epochs"]
        best_state = ckpt["best"]
        result.history = meta["history"]
        result.train_seconds = meta["train_seconds"]
        result.best_epoch = meta.get("best_epoch", 0)
        result.warnings = list(meta.get("warnings", []))
        position = meta.get("position", 0)
        if position:
            if start_epoch >= cfg.epochs or position >= steps_per_epoch:
                raise RunError(f"{ckpt_path}: the checkpoint stopped after step {position} of "
                               f"epoch {start_epoch + 1}, but this run has {cfg.epochs} epochs of "
                               f"{steps_per_epoch} steps (did the data change?); delete "
                               f"{Path(run_dir) / 'checkpoint'} to start over")
            partial = {"position": position, "running": _own_share(meta["running"], world),
                       "seconds": float(meta.get("epoch_seconds", 0.0)), "rng": ckpt["rng"],
                       "where": ckpt_path}
            if log_state is not None and meta.get("log_state") is not None:
                log_state.load_state_dict(meta["log_state"])
    net = distributed.wrap(model, device) if world else model
    has_val = val_x is not None and len(val_x) > 0
    collapse = objective.collapse_check(val_x if has_val else train_x) if main else None
    if has_val and not resume:
        # The start is a candidate too ("epoch 0"): a model started from the data (PCA) that
        # training only makes worse on held-out images ends where it started, not at epoch 1.
        best_val = _validation(objective, model, val_x, device, main, world)
        best_state = _snapshot(model)

    def write_checkpoint(epochs_done: int, position: int = 0, running: float = 0.0,
                         epoch_seconds: float = 0.0, gen: torch.Generator | None = None) -> None:
        """Rank 0 writes the state; `position` > 0: a mid-epoch checkpoint after that many
        steps of epoch `epochs_done` + 1 (a collective under a process group: every rank's
        running loss is kept)."""
        mid: dict[str, Any] = {}
        rng = None
        if position:
            runs = distributed.gather_floats(running) if world else running
            mid = {"position": position, "running": runs, "epoch_seconds": epoch_seconds}
            if log_state is not None:
                mid["log_state"] = log_state.state_dict()
            rng = rng_states(gen, device)
        if run_dir is None or not main:
            return
        meta = {"epoch": epochs_done, "step": step, "best_val": best_val,
                "bad_epochs": bad_epochs, "history": result.history,
                "train_seconds": result.train_seconds, "best_epoch": result.best_epoch,
                "warnings": result.warnings, **mid}
        save_checkpoint(run_dir, model, optimizer, best_state, meta, rng)

    def stop_now(signum: int, epoch_no: int, at_epoch_end: bool) -> Preempted:
        return Preempted(signum, epoch_no, cfg.epochs, step, run_dir, saved=run_dir is not None,
                         at_epoch_end=at_epoch_end, report=main, distributed=world is not None)

    for epoch in range(start_epoch, cfg.epochs):
        gen = objective.start_epoch(epoch, n)
        first, running, t0 = 0, 0.0, time.perf_counter()
        if partial is not None:  # the rest of the epoch a mid-epoch checkpoint stopped in
            first, running = partial["position"], partial["running"]
            t0 -= partial["seconds"]
            restore_rng_states(gen, partial["rng"], device, partial["where"])
            partial = None
        bar = _progress(progress and main, steps_per_epoch, epoch, cfg.epochs)
        if bar is not None and first:
            bar.update(first)
        batches = objective.batches(train_x, steps_per_epoch, first)
        for i in range(first, steps_per_epoch):
            rates = objective.learning_rates(step, total_steps)
            for group, lr in zip(optimizer.param_groups, rates, strict=True):
                group["lr"] = lr
            loss, logs = objective.loss(net, next(batches), gen)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {float(loss.detach())} at epoch {epoch + 1}, step {i + 1}; "
                    + (f"the last good checkpoint is kept in {run_dir}/checkpoint; "
                       if run_dir else "")
                    + f"try a lower --lr than {cfg.lr}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            objective.after_step(model, step, loss_value)
            running += loss_value
            if on_step is not None:
                on_step(step, loss_value, logs)
            if bar is not None:
                rate = (i + 1) * cfg.batch_size / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{running / (i + 1):.4f}", img_s=f"{rate:,.0f}", **logs)
                bar.update(1)
            if i + 1 < steps_per_epoch:  # a step boundary inside the epoch (its end follows)
                signum = stop.poll(world is not None) if stop is not None else 0
                if signum or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                    error = _attempt(write_checkpoint, epoch, i + 1, running,
                                     time.perf_counter() - t0, gen)
                    if signum:
                        if bar is not None:
                            bar.close()
                        _agree_on_save(world, error, run_dir)
                        raise stop_now(signum, epoch + 1, at_epoch_end=False)
                    if error is not None:
                        raise error
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
        if has_val:
            row["val_loss"] = _validation(objective, model, val_x, device, main, world)
            if row["val_loss"] < best_val:
                best_val, bad_epochs, result.best_epoch = row["val_loss"], 0, epoch + 1
                best_state = _snapshot(model)
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
        lost = stop_on_collapse and bool(result.warnings)  # ends here, see the docstring
        due = last or lost or reported(epoch + 1, cfg.epochs)
        if due:
            write_checkpoint(epoch + 1)
        if on_epoch:
            on_epoch(row)
        # The stop flag is read after the checkpoint (and log) of the epoch: under a process
        # group this collective also holds every rank until rank 0 has written them.
        signum = stop.poll(world is not None) if stop is not None else 0
        if signum:
            if not due:  # between two strided checkpoints: this epoch's end is saved now
                _agree_on_save(world, _attempt(write_checkpoint, epoch + 1), run_dir)
            raise stop_now(signum, epoch + 1, at_epoch_end=True)
        if (cfg.patience and bad_epochs >= cfg.patience) or lost:
            result.stopped_early = True
            break

    if best_state is not None:
        model.load_state_dict(best_state)
        if has_val and result.best_epoch == 0:
            note = objective.refit_start(model, train_x, val_x)
            if note:
                result.notes.append(note)
    # Back to the default layout: a model saved and reloaded must compute bit-identically.
    model.to(memory_format=torch.contiguous_format)
    t0 = time.perf_counter()
    note = objective.finish(model, train_x)
    result.train_seconds += time.perf_counter() - t0  # e.g. the codec's deblocking fit
    if note:
        result.notes.append(note)
    total_images = sum(1 for _ in result.history) * steps_per_epoch * cfg.batch_size
    result.images_per_second = total_images / max(result.train_seconds, 1e-9)
    return result


def _attempt(write: Callable[..., None], *args) -> Exception | None:
    """Run a checkpoint write; a failure of the environment (a full disk is a RunError, other
    OSErrors pass through) is returned, for the caller to raise once the ranks have agreed."""
    try:
        write(*args)
    except (OSError, AekitError) as e:
        return e
    return None


def _agree_on_save(world, error: Exception | None, run_dir) -> None:
    """Before stopping on a signal: every rank waits until rank 0 has written the checkpoint
    (so none exits while it is being written) and fails if rank 0 could not write it."""
    failed = distributed.from_main(None if error is None else str(error)) if world else None
    if error is not None:
        raise error
    if failed is not None:
        raise RunError(f"rank 0 could not write the checkpoint in {run_dir}: {failed}")


def _own_share(running, world) -> float:
    """This rank's running loss sum from a mid-epoch checkpoint (one value per rank of the
    launch that wrote it; their mean when the number of processes changed since)."""
    if not isinstance(running, list):
        return float(running)
    if world is not None and len(running) == world.size:
        return float(running[world.rank])
    if len(running) == 1:
        return float(running[0])
    return sum(running) / len(running)


def _load_state(model: nn.Module, state: dict, run_dir) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(f"{run_dir}: checkpoint does not match the model ({first})") from None


def _progress(enabled: bool, total: int, epoch: int, epochs: int):
    """A per-epoch bar, only on a terminal and not under --quiet (aekit.console): a log file or
    a pipe gets the per-epoch lines instead, never carriage returns."""
    from aekit.console import progress_bars

    if not (enabled and progress_bars()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch",
                dynamic_ncols=True)


def _validation(objective: Objective, model: nn.Module, val_x, device: torch.device, main: bool,
                world) -> float:
    """The validation loss, computed by rank 0 and shared, so every rank takes the same
    early-stopping decision."""
    loss = objective.validation_loss(model, val_x, device) if main else None
    return distributed.from_main(loss) if world else loss


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights (the best epoch's, restored at the end)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}

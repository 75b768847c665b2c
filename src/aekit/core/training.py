"""Train a model on a named dataset and write a complete run folder (docs/DESIGN.md's contract)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.console import phase
from aekit.errors import AekitError, ConfigError, RunError

Log = Callable[[str], None]


def prepare_data(train_cfg: TrainConfig, stream: str = "auto", memory_budget=None, log=None):
    """(dataset, train uint8, val uint8) with the validation split carved by a fixed seed; a
    `folder:` dataset over the memory budget is streamed from disk (aekit.data.stream). With
    `dataset_b` the items are A-B pairs (aekit.data.load_pair), always in memory."""
    from aekit.data import split_train_val
    from aekit.data.stream import load_training_dataset

    if train_cfg.dataset_b:
        if stream == "always":
            raise ConfigError("--stream always: paired datasets (--dataset-b) are loaded into "
                              "memory; use --stream auto")
        ds = run_dataset(train_cfg)
    else:
        ds = load_training_dataset(train_cfg.dataset, train_cfg.image_size, stream,
                                   memory_budget, log, patch=train_cfg.patch)
    x = ds.train_x[: train_cfg.limit] if train_cfg.limit else ds.train_x
    train_idx, val_idx = split_train_val(len(x), train_cfg.val_fraction, train_cfg.seed)
    return ds, x[train_idx], x[val_idx]


def run_dataset(train_cfg: TrainConfig, image_size=None):
    """The dataset a run trains on, in memory: `dataset`, or the (A, B) pairs of `dataset` and
    `dataset_b`. `image_size` (default: the run's --image-size) resizes it; a run trained on
    patches (--patch) gets the same patches, already the model's size."""
    from aekit.data import load_dataset, load_pair

    size = image_size if image_size is not None else train_cfg.image_size
    if train_cfg.dataset_b:
        return load_pair(train_cfg.dataset, train_cfg.dataset_b, size)
    if train_cfg.patch:
        return load_dataset(train_cfg.dataset, patch=train_cfg.patch)
    return load_dataset(train_cfg.dataset, size)


def check_pairing(model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """A two-domain model (one with `domains`) needs --dataset-b, and only it takes one."""
    from aekit.registry import get_model_class

    paired = bool(get_model_class(model_cfg.name).domains)
    if train_cfg.dataset_b and train_cfg.patch:
        raise ConfigError("--patch cuts one dataset's images; two-domain runs (--dataset-b) "
                          "train on whole image pairs")
    if train_cfg.dataset_b and not paired:
        raise ConfigError(f"--dataset-b is for two-domain models (--model swap); model "
                          f"{model_cfg.name!r} trains on one dataset")
    if paired and not train_cfg.dataset_b:
        raise ConfigError(f"model {model_cfg.name!r} translates between two domains: give "
                          "--dataset A and --dataset-b B")


def build_corruption(spec: str):
    if not spec:
        return None
    from aekit.data.corrupt import parse_corruption

    return parse_corruption(spec)


def train_run(
    out: str | Path,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Log = print,
    log_to: tuple[str, ...] = ("csv",),
    stream: str = "auto",
    memory_budget: str | int | None = None,
    baseline: str = "pca",
    stop_on_signal: bool = False,
) -> dict[str, Any]:
    """Train (or resume) a run in `out`; returns metrics.json's content ({} on ranks other than
    0 of a torchrun launch, which write nothing). `baseline`: "pca" measures PCA at the same
    code size on the test split next to the model, "none" skips it.

    `stop_on_signal` (the command line's choice): from the moment the run folder is taken until
    training ends, SIGTERM and SIGINT stop training at the next step boundary with a checkpoint
    and raise `aekit.train.preempt.Preempted` (aekit.train.preempt); the previous handlers are
    back for the final evaluation and when this returns.

    For a new run `model_cfg`'s in_channels/height/width are replaced by the dataset's shape.
    """
    from aekit.core.io import read_config, run_lock, write_config
    from aekit.device import resolve_device
    from aekit.models import build_model, resolve_options
    from aekit.train import distributed
    from aekit.train.budget import describe as describe_budget
    from aekit.train.budget import plan as plan_budget
    from aekit.train.budget import resolve as resolve_budget
    from aekit.train.losses import build_loss
    from aekit.train.preempt import Preempted, StopSignals
    from aekit.train.symmetry import resolve as resolve_augment

    out = Path(out)
    stop = StopSignals() if stop_on_signal else None
    stopped = None
    world = distributed.init_from_env()  # None unless torchrun started several processes
    try:
        if world is not None and not world.is_main:  # rank 0 speaks for all
            log, progress = (lambda s: None), False
            from aekit import console

            console.set_level(console.QUIET)
        main = world is None or world.is_main
        problem = None
        try:
            if resume:
                run = read_config(out)
                model_cfg, train_cfg = run.model_cfg, run.train_cfg
                with phase(f"loading {train_cfg.dataset}", log, after=1.0):
                    ds, train_x, val_x = prepare_data(train_cfg, stream, memory_budget, log)
            else:
                if (out / "config.json").exists() and not _stopped_before_first_checkpoint(out):
                    raise RunError(f"{out} already holds a run; use --resume {out} or another "
                                   "--out")
                check_pairing(model_cfg, train_cfg)
                with phase(f"loading {train_cfg.dataset}", log, after=1.0):
                    ds, train_x, val_x = prepare_data(train_cfg, stream, memory_budget, log)
                c, h, w = ds.shape
                model_cfg = resolve_options(ModelConfig(**{
                    **model_cfg.to_dict(), "in_channels": c, "height": h, "width": w}), train_x)
                # The run folder records the epochs chosen, so a resume plans the same ones.
                train_cfg, budget = resolve_budget(train_cfg, len(train_x))
            if resume:
                budget = dataclasses.replace(plan_budget(train_cfg, len(train_x)),
                                             why="as recorded in the run")
            schedule = describe_budget(budget, train_cfg.batch_size)
            # Everything that can be wrong with the settings fails here, before anything is
            # written: a failed start leaves no folder in the way of the corrected command.
            torch.manual_seed(train_cfg.seed)
            model = build_model(model_cfg)
            if not resume:  # recorded in the run folder, so a resume trains on the same images
                train_cfg, augment_why = resolve_augment(train_cfg, train_x, model)
                if augment_why:
                    schedule += "\n" + augment_why
            corrupt = build_corruption(train_cfg.corrupt)
            build_loss(train_cfg.loss, model)
            resolve_device(train_cfg.device)
        except AekitError as e:
            if world is None:
                raise
            problem = e
        if world is not None:  # same error on every rank, before anything is written
            settings = {"out": str(out), "resume": resume,
                        "model": model_cfg.to_dict() if model_cfg else None,
                        "train": train_cfg.to_dict() if train_cfg else None}
            distributed.check_agreement(world, settings, problem,
                                        train_cfg.batch_size if train_cfg else None)
            log(f"data-parallel training on {world.size} processes "
                f"({train_cfg.batch_size // world.size} images each per global batch)")
        with run_lock(out) if main else contextlib.nullcontext():
            if stop is not None:  # from before config.json is written: a signal stops cleanly
                stop.install()
            if resume and main:
                _remove_stale_temps(out)
            if resume and _stopped_before_first_checkpoint(out):
                # config.json is written before epoch 1 ends; such a run restarts from the
                # beginning (data-dependent starts included).
                log(f"{out}: no checkpoint yet (stopped during epoch 1); training from the start")
                resume = False
            elif not resume and (out / "config.json").exists():
                log(f"{out}: replacing an unfinished run that never reached a checkpoint")
            if not resume and main:
                write_config(out, model_cfg, train_cfg)
            try:
                return _train(out, model, model_cfg, train_cfg, ds, train_x, val_x, corrupt,
                              resume, main, progress, log, log_to, baseline, stop, schedule)
            except Preempted as e:
                # Raised again below without the training frames its traceback holds: their
                # DDP replica must be freed while its process group exists (freed after the
                # group is destroyed, it can hang the rank on its way out).
                stopped = e.with_traceback(None)
    finally:
        if stop is not None:
            stop.restore()
        if stopped is not None and world is not None:
            import gc

            gc.collect()
        distributed.shutdown(world)
    raise stopped


def _train(out: Path, model, model_cfg: ModelConfig, train_cfg: TrainConfig, ds, train_x, val_x,
           corrupt, resume: bool, main: bool, progress: bool, log: Log,
           log_to: tuple[str, ...], baseline: str, stop=None,
           schedule: str = "") -> dict[str, Any]:
    """The training part of `train_run`, once the settings are known to be good."""
    from aekit.console import warn
    from aekit.models.base import AutoencoderModule
    from aekit.train.budget import reported
    from aekit.train.logging import RunLogger
    from aekit.train.loop import fit

    start_seconds = 0.0
    if not resume:
        # A model with a data-dependent start (the codec's mixture of PCAs) begins from it; a
        # resumed run gets its weights from the checkpoint instead, and a run stopped before
        # its first checkpoint is not resumed but restarted, so the start always runs.
        if type(model).init_from_data is not AutoencoderModule.init_from_data:
            log(f"data-dependent start of {model_cfg.name} from {len(train_x):,} images ...")
        t0 = time.perf_counter()
        note = model.init_from_data(train_x, seed=train_cfg.seed)
        start_seconds = time.perf_counter() - t0
        if note:
            log(f"{note} ({start_seconds:.1f}s)")
    log(f"training {model_cfg.name} ({model.num_parameters():,} parameters) on {ds.name} "
        f"{tuple(ds.shape)}: {len(train_x):,} train / {len(val_x):,} validation "
        + (f"patches ({train_cfg.patch}x{train_cfg.patch}, cut from each image at its own size)"
           if train_cfg.patch else "images"))
    if schedule:
        log(schedule)
    run_log = RunLogger(out, log_to, train_cfg.batch_size, note=warn) if main else None
    try:
        def on_epoch(row: dict) -> None:
            # log.csv is rewritten with each checkpoint (every k-th of many short epochs), so
            # it always matches the last one
            due = reported(row["epoch"], train_cfg.epochs)
            if due:
                log(_epoch_line(row, train_cfg.epochs))
            if run_log is not None:
                run_log.epoch(row, write=due)

        result = fit(model, train_x, train_cfg, val_x=val_x, run_dir=out, resume=resume,
                     corrupt=corrupt, progress=progress, on_epoch=on_epoch,
                     on_step=run_log.step if run_log is not None else None, stop=stop,
                     log_state=run_log)
        # train_seconds counts the data-dependent start too: it is part of training
        result.train_seconds += start_seconds
        if result.stopped_early and result.history:
            final = result.history[-1]
            if not reported(final["epoch"], train_cfg.epochs):
                log(_epoch_line(final, train_cfg.epochs))
            log(f"stopped early after epoch {final['epoch']}: no better validation loss for "
                f"{train_cfg.patience} epochs; keeping epoch {result.best_epoch}")
        for note in result.notes:
            log(note)
        if stop is not None:  # trained: the final evaluation is interrupted as any command
            stop.restore()
        if not main:
            return {}
        metrics = finish_run(out, model, model_cfg, train_cfg, ds, result, corrupt,
                             baseline=baseline, log=log)
        run_log.finish(metrics)
        return metrics
    finally:
        if run_log is not None:
            run_log.close()


def _remove_stale_temps(out: Path) -> None:
    """A kill during an atomic write leaves its temp file behind; the resume cleans them up."""
    from aekit.io import remove_stale_temps

    for folder in (out, out / "checkpoint"):
        if folder.is_dir():
            remove_stale_temps(folder)


def _stopped_before_first_checkpoint(out: Path) -> bool:
    """A run folder with a config but neither a checkpoint nor final weights."""
    from aekit.core.io import WEIGHTS
    from aekit.train.checkpoint import CHECKPOINT_NAME

    return not (out / "checkpoint" / CHECKPOINT_NAME).exists() and not (out / WEIGHTS).exists()


def _epoch_line(row: dict, epochs: int) -> str:
    val = f"  val {row['val_loss']:.5f}" if row.get("val_loss") is not None else ""
    return f"epoch {row['epoch']:>3}/{epochs}  train {row['train_loss']:.5f}{val}  " \
           f"({row['seconds']:.1f}s)"


def finish_run(out: Path, model, model_cfg: ModelConfig, train_cfg: TrainConfig, ds, result,
               corrupt=None, baseline: str = "pca", log: Log = lambda s: None) -> dict[str, Any]:
    """Save weights, evaluate on the test split, write metrics, history and pictures."""
    from aekit.core.io import save_weights, write_history_csv, write_metrics
    from aekit.data.stream import in_memory
    from aekit.eval.baselines import pca_baseline
    from aekit.eval.evaluate import eval_batch_size, evaluate_set
    from aekit.eval.plots import plot_loss

    save_weights(out, model)
    items = "patches" if train_cfg.patch else "images"
    # Streamed: one pixel-budgeted batch of floats at a time, never the whole test set.
    with phase(f"evaluating on {len(ds.test_x):,} test {items}", log):
        ev = evaluate_set(model, ds.test_x, corrupt=corrupt, seed=train_cfg.seed)
    x_in, x_hat, clean = ev.preview
    with torch.inference_mode():
        code_size = int(model.encode(x_in[:1].to(_device_of(model))).numel())
    metrics: dict[str, Any] = {
        "model": model_cfg.name,
        "dataset": ds.name,
        "latent_dim": model_cfg.latent_dim,
        "code_size": code_size,
        "parameters": model.num_parameters(),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.train_seconds, 2),
        "train_images_per_second": round(result.images_per_second, 1),
        "test": ev.test,
        "baselines": {},
        "history": result.history,
        "warnings": result.warnings,  # e.g. a collapsed run (aekit.train.health)
        "environment": {"device": str(_device_of(model)), "threads": torch.get_num_threads(),
                        "torch": torch.__version__, "machine": platform.machine(),
                        "cpus": os.cpu_count()},
    }
    if baseline == "pca" and model.entropy_coded:
        # A codec's code is entropy-coded integers per block, not code_size floats: PCA "at the
        # same size" would keep every dimension of the image (a (C*H*W)^2 eigendecomposition
        # for nothing); a codec is compared with JPEG/WebP in `python -m bench.codec`.
        log("baseline: PCA skipped for a codec (its baselines: python -m bench.codec)")
    elif baseline == "pca":
        with phase(f"baseline: PCA with up to {code_size:,} components (skip with --baseline none)",
                   log):
            metrics["baselines"]["pca"] = pca_baseline(
                in_memory(ds.train_x), ds.test_x, code_size, train_cfg.seed, corrupt=corrupt,
                batch_size=eval_batch_size(tuple(ds.test_x.shape[1:])))
    extra = model.extra_metrics(in_memory(ds.test_x))  # e.g. a VAE's likelihood bounds
    if extra:
        log(f"model metrics: {', '.join(extra)}")
        metrics.update(extra)
    if ds.skipped:  # unreadable files the folder loader left out
        metrics["images_read"] = (ds.sources if ds.sources is not None
                                  else len(ds.train_x) + len(ds.test_x))
        metrics["skipped_files"] = [{"path": p, "reason": why} for p, why in ds.skipped]
    if corrupt is not None:
        metrics["corrupt"] = train_cfg.corrupt
        metrics["corrupted_input"] = ev.corrupted_input
    write_metrics(out, metrics)
    write_history_csv(out, result.history)
    plot_loss(result.history, out / "loss.png", f"{model_cfg.name} on {ds.name}")
    # A two-domain model shows each domain on its own rows, and its translations in swaps.png.
    write_reconstructions(out / "reconstructions.png", x_in, x_hat, clean, corrupt is not None,
                          split=model.split_domains if model.domains else None)
    if model.domains:
        from aekit.data.images import save_grid

        save_grid(out / "swaps.png", model.swap_preview(clean[:10]))
    return metrics


def write_reconstructions(path: Path, x_in, x_hat, clean, restoration: bool, n: int = 10,
                          split=None):
    """Originals over reconstructions (restoration: corrupted / output / clean), as in the seeds.
    `split` (a two-domain model's `split_domains`) turns each row of stacked pairs into one row
    per domain: A's rows, then B's."""
    from aekit.data.images import save_grid

    rows = [x_in[:n], x_hat[:n], clean[:n]] if restoration else [clean[:n], x_hat[:n]]
    if split is not None:
        halves = [split(r) for r in rows]
        rows = [h[d] for d in range(len(halves[0])) for h in halves]
    save_grid(path, rows)


def _device_of(model) -> torch.device:
    return next(model.parameters()).device

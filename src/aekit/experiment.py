"""Train a model on a named dataset and write a complete run folder (DESIGN.md's contract)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.errors import RunError

Log = Callable[[str], None]


def prepare_data(train_cfg: TrainConfig):
    """(dataset, train uint8, val uint8) with the validation split carved by a fixed seed."""
    from aekit.data import load_dataset, split_train_val

    ds = load_dataset(train_cfg.dataset, image_size=train_cfg.image_size)
    x = ds.train_x[: train_cfg.limit] if train_cfg.limit else ds.train_x
    train_idx, val_idx = split_train_val(len(x), train_cfg.val_fraction, train_cfg.seed)
    return ds, x[train_idx], x[val_idx]


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
) -> dict[str, Any]:
    """Train (or resume) a run in `out`; returns metrics.json's content.

    For a new run `model_cfg`'s in_channels/height/width are replaced by the dataset's shape.
    """
    from aekit.models import build_model
    from aekit.runs import read_config, write_config
    from aekit.train.loop import fit

    out = Path(out)
    if resume:
        run = read_config(out)
        model_cfg, train_cfg = run.model_cfg, run.train_cfg
        ds, train_x, val_x = prepare_data(train_cfg)
    else:
        if (out / "config.json").exists():
            raise RunError(f"{out} already holds a run; use --resume {out} or another --out")
        ds, train_x, val_x = prepare_data(train_cfg)
        c, h, w = ds.shape
        model_cfg = ModelConfig(**{**model_cfg.to_dict(), "in_channels": c, "height": h,
                                   "width": w})
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg)
    if not resume:
        write_config(out, model_cfg, train_cfg)
    log(f"training {model_cfg.name} ({model.num_parameters():,} parameters) on {ds.name} "
        f"{tuple(ds.shape)}: {len(train_x):,} train / {len(val_x):,} validation images")
    corrupt = build_corruption(train_cfg.corrupt)
    result = fit(model, train_x, train_cfg, val_x=val_x, run_dir=out, resume=resume,
                 corrupt=corrupt, progress=progress,
                 on_epoch=lambda r: log(_epoch_line(r, train_cfg.epochs)))
    return finish_run(out, model, model_cfg, train_cfg, ds, result, corrupt)


def _epoch_line(row: dict, epochs: int) -> str:
    val = f"  val {row['val_loss']:.5f}" if row.get("val_loss") is not None else ""
    return f"epoch {row['epoch']:>3}/{epochs}  train {row['train_loss']:.5f}{val}  " \
           f"({row['seconds']:.1f}s)"


def finish_run(out: Path, model, model_cfg: ModelConfig, train_cfg: TrainConfig, ds, result,
               corrupt=None) -> dict[str, Any]:
    """Save weights, evaluate on the test split, write metrics, history and pictures."""
    from aekit.eval.baselines import pca_baseline
    from aekit.eval.evaluate import measure, reconstruct_all
    from aekit.report.plots import plot_loss
    from aekit.runs import save_weights, write_history_csv, write_metrics

    save_weights(out, model)
    x_in, x_hat = reconstruct_all(model, ds.test_x, corrupt=corrupt, seed=train_cfg.seed)
    clean = ds.test_x.float() / 255.0
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
        "test": measure(x_hat, clean),
        "baselines": {"pca": pca_baseline(ds.train_x, ds.test_x, code_size, train_cfg.seed)},
        "history": result.history,
        "environment": {"device": str(_device_of(model)), "threads": torch.get_num_threads(),
                        "torch": torch.__version__, "machine": platform.machine(),
                        "cpus": os.cpu_count()},
    }
    if corrupt is not None:
        metrics["corrupt"] = train_cfg.corrupt
        metrics["corrupted_input"] = measure(x_in, clean)
    write_metrics(out, metrics)
    write_history_csv(out, result.history)
    plot_loss(result.history, out / "loss.png", f"{model_cfg.name} on {ds.name}")
    write_reconstructions(out / "reconstructions.png", x_in, x_hat, clean, corrupt is not None)
    return metrics


def write_reconstructions(path: Path, x_in, x_hat, clean, restoration: bool, n: int = 10):
    """Originals over reconstructions (restoration: corrupted / output / clean), as in the seeds."""
    from aekit.data.images import save_grid

    rows = [x_in[:n], x_hat[:n], clean[:n]] if restoration else [clean[:n], x_hat[:n]]
    save_grid(path, rows)


def _device_of(model) -> torch.device:
    return next(model.parameters()).device

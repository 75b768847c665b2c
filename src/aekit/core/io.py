"""The run folder: what `aekit train --out RUN` writes and every other command reads.

    RUN/config.json        {"model": ModelConfig, "train": TrainConfig, "aekit": version}
    RUN/model.safetensors  weights; the model config is repeated in the safetensors metadata so a
                           weights file swapped in from another run is detected
    RUN/metrics.json, history.csv, reconstructions.png, loss.png, checkpoint/state.safetensors

Loading never unpickles anything; every failure is a RunError that names the file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aekit import __version__
from aekit.config import ModelConfig, TrainConfig
from aekit.errors import AekitError, RunError
from aekit.io import atomic_write_text, read_json, read_safetensors, write_safetensors
from aekit.models.build import resolve_options, saved_options

WEIGHTS = "model.safetensors"
FORMAT_TAG = "aekit-model/1"


@dataclass
class Run:
    path: Path
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    extra: dict[str, Any]


def write_config(run_dir: str | Path, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 extra: dict[str, Any] | None = None) -> None:
    # Every option spelled out: a config that lacks one means a run saved before it existed.
    doc = {"aekit": __version__, "model": resolve_options(model_cfg).to_dict(),
           "train": train_cfg.to_dict()}
    doc.update(extra or {})
    atomic_write_text(Path(run_dir) / "config.json", json.dumps(doc, indent=2) + "\n")


def read_config(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a run folder (no such directory)")
    if not (run_dir / "config.json").is_file():
        raise RunError(f"{run_dir}: not a run folder (no config.json); make one with `aekit train`")
    doc = read_json(run_dir / "config.json", "run config")
    if not isinstance(doc, dict) or "model" not in doc or "train" not in doc:
        raise RunError(f"{run_dir}/config.json: not an aekit run config (needs model and train)")
    try:
        model_cfg = saved_options(ModelConfig.from_dict(doc["model"]))
        train_cfg = TrainConfig.from_dict(doc["train"])
    except AekitError as e:
        raise RunError(f"{run_dir}/config.json: {e}") from None
    extra = {k: v for k, v in doc.items() if k not in ("model", "train", "aekit")}
    return Run(run_dir, model_cfg, train_cfg, extra)


def save_weights(run_dir: str | Path, model: torch.nn.Module) -> None:
    write_weights(Path(run_dir) / WEIGHTS, model)


def write_weights(path: str | Path, model: torch.nn.Module) -> None:
    """One model's weights, tagged with its config (any file name: detectors keep several)."""
    meta = {"format": FORMAT_TAG,
            "config": json.dumps(resolve_options(model.cfg).to_dict(), sort_keys=True)}
    write_safetensors(path, model.state_dict(), meta)


def load_weights(path: str | Path, model_cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Read and check a weights file against the config it should belong to."""
    path = Path(path)
    tensors, meta = read_safetensors(
        path, "the weights file",
        missing=f"{path}: weights not found (training unfinished? try --resume)")
    if meta.get("format") != FORMAT_TAG:
        raise RunError(f"{path}: not an aekit model file (format tag {meta.get('format')!r})")
    try:
        stored = json.loads(meta.get("config", ""))
    except (ValueError, RecursionError):
        stored = None
    if not isinstance(stored, dict):
        raise RunError(f"{path}: model config in the weights file is corrupt") from None
    with contextlib.suppress(AekitError, TypeError, ValueError, AttributeError):
        stored = saved_options(ModelConfig.from_dict(stored)).to_dict()  # as read_config does
    if stored != json.loads(json.dumps(model_cfg.to_dict(), sort_keys=True)):
        raise RunError(f"{path}: weights belong to a different model config than config.json "
                       f"(weights: {stored.get('name')}, config: {model_cfg.name})")
    return tensors


def load_model(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, Run) from a finished run folder."""
    from aekit.models import build_model

    run = read_config(run_dir)
    state = load_weights(Path(run_dir) / WEIGHTS, run.model_cfg)
    # Compare against a model built on the meta device (no memory): a tampered config.json
    # declaring a huge model must fail here, not after trying to allocate it.
    try:
        with torch.device("meta"):
            skeleton = build_model(run.model_cfg)
    except AekitError as e:
        raise RunError(f"{run_dir}/config.json: {e}") from None
    except (RuntimeError, ValueError, TypeError, ZeroDivisionError) as e:
        raise RunError(f"{run_dir}/config.json: describes a model that cannot be built "
                       f"({str(e).splitlines()[0][:200]})") from None
    expected = skeleton.state_dict()
    sized = set(skeleton.sized_by_weights)  # their shape is the saved one; older weights lack them
    missing = sorted(set(expected) - set(state) - sized)
    extra = sorted(set(state) - set(expected))
    common = set(expected) & set(state)
    wrong = sorted(k for k in common - sized if expected[k].shape != state[k].shape)
    dtype = sorted(k for k in common if expected[k].dtype != state[k].dtype)
    if missing or extra or wrong or dtype:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}" for label, keys in
                           (("missing", missing), ("unexpected", extra), ("wrong shape", wrong),
                            ("wrong dtype", dtype)) if keys)
        raise RunError(f"{run_dir}/{WEIGHTS}: tensors do not match the model ({detail})")
    model = build_model(run.model_cfg)
    model.load_state_dict(state)
    return model.to(device).eval(), run


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / "metrics.json", "metrics")


def write_history_csv(run_dir: str | Path, history: list[dict]) -> None:
    buf = io.StringIO()
    fields = ["epoch", "train_loss", "val_loss", "seconds", "lr"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(Path(run_dir) / "history.csv", buf.getvalue())


# --- one writer per run folder ------------------------------------------------------------------
LOCK = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold RUN/.lock (the writer's pid and host) while training writes the folder. A second
    writer is refused with one line; a lock left by a process that no longer runs on this host
    (killed, machine rebooted) is taken over."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        if _create_whole(path, json.dumps(me)):
            break
        holder = _lock_holder(path)
        if holder is not None and _alive(holder):
            raise RunError(f"{run_dir} is being written by process {holder['pid']} on "
                           f"{holder['host']}; wait for it to finish or stop it first")
        path.unlink(missing_ok=True)  # stale: its writer is gone
    else:
        raise RunError(f"{path}: could not take the run folder's lock; remove it if no aekit "
                       "process is writing this folder")
    try:
        yield
    finally:
        if _lock_holder(path) == me:
            path.unlink(missing_ok=True)


def _create_whole(path: Path, text: str) -> bool:
    """Create `path` holding `text`, only if it does not exist; False if it does. The content is
    written to a temp file first and hard-linked into place, so a kill never leaves a lock that
    exists but is empty (file systems without hard links fall back to an exclusive create)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here
            try:
                fd2 = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd2, "w") as f:
                f.write(text)
        return True
    finally:
        os.unlink(tmp)


def _lock_holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable or half-written: treated as stale
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
        return None
    return holder


def _alive(holder: dict) -> bool:
    """Whether the lock's writer still runs. A process on another host (a shared file system)
    cannot be checked from here, so its lock is respected."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True

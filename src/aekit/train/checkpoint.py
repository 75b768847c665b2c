"""Training state in one safetensors file: tensors as tensors, everything else as JSON metadata.

One file (not weights + a JSON sidecar) so that a single atomic rename publishes a consistent state:
a SIGKILL at any moment leaves either the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from aekit.errors import RunError
from aekit.io import parse_safetensors, read_bytes, write_safetensors

CHECKPOINT_NAME = "state.safetensors"


def _flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, per_param in opt_state["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    best_state: dict[str, torch.Tensor] | None,
    meta: dict[str, Any],
) -> None:
    """Write RUN/checkpoint/state.safetensors atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update(opt_tensors)
    header = {"meta": json.dumps(meta), "optimizer": json.dumps(opt_meta)}
    write_safetensors(Path(run_dir) / "checkpoint" / CHECKPOINT_NAME, tensors, header)


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Read a checkpoint; returns {model, best, optimizer, meta} or raises RunError."""
    path = Path(run_dir) / "checkpoint" / CHECKPOINT_NAME
    raw = read_bytes(path, "the checkpoint",
                     missing=f"{run_dir}: no checkpoint to resume from ({path} is missing)")
    try:
        tensors, header = parse_safetensors(raw)
        meta = json.loads(header["meta"])
        opt_meta = json.loads(header["optimizer"])
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        opt_tensors = {k: v for k, v in tensors.items() if k.startswith("opt.")}
        _check_layout(meta, model, best)
        optimizer = _unflatten_optimizer(opt_tensors, opt_meta)
        for group in optimizer["param_groups"]:
            if not all(isinstance(i, int) for i in group["params"]):
                raise ValueError("optimizer parameter ids are not integers")
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as e:
        raise RunError(f"{path}: checkpoint is corrupt ({str(e)[:200]}); delete it to start "
                       "over") from None
    return {"model": model, "best": best, "optimizer": optimizer, "meta": meta}


# meta key -> the JSON types it must have (the training loop reads each of these on resume).
_META_TYPES = {"epoch": int, "step": int, "bad_epochs": int, "best_val": (int, float),
               "train_seconds": (int, float), "history": list}


def _check_layout(meta: dict, model: dict, best: dict | None) -> None:
    """Raise ValueError unless the checkpoint has what resuming needs, consistently."""
    if not isinstance(meta, dict):
        raise ValueError("meta is not an object")
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"meta[{key!r}] is missing or of the wrong type")
    if meta["epoch"] < 0 or meta["step"] < 0 or meta["bad_epochs"] < 0:
        raise ValueError("negative epoch, step or bad-epoch count")
    if not all(isinstance(row, dict) for row in meta["history"]):
        raise ValueError("history rows are not objects")
    if not model:
        raise ValueError("no model tensors")
    if best is not None and {k: v.shape for k, v in best.items()} != {
            k: v.shape for k, v in model.items()}:
        raise ValueError("best-epoch weights do not match the model weights")


"""Training state in one safetensors file: tensors as tensors, everything else as JSON metadata.

One file (not weights + a JSON sidecar) so that a single atomic rename publishes a consistent state:
a SIGKILL at any moment leaves either the previous checkpoint or the new one, never a mix.

A checkpoint is written at the end of every epoch (of every k-th epoch and the last in a run of
more than budget.MAX_EPOCH_REPORTS epochs), and inside an epoch with `--checkpoint-every`
or when a signal stops training (aekit.train.preempt). A mid-epoch checkpoint also records the
position in the epoch (`meta.position`: steps done in epoch `meta.epoch` + 1), the running loss
sum, the epoch generator's and torch's global RNG states (tensors `rng.*`) and the run logger's
per-epoch sums, so resuming replays the rest of the epoch exactly. Checkpoints without these keys
(written at an epoch end, or by an older aekit) resume at the start of the next epoch.
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
    rng: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write RUN/checkpoint/state.safetensors atomically. `rng`: RNG states (uint8 tensors,
    e.g. {"epoch": gen.get_state(), "torch": torch.get_rng_state()}) of a mid-epoch checkpoint."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    tensors.update({f"rng.{k}": v for k, v in (rng or {}).items()})
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update(opt_tensors)
    header = {"meta": json.dumps(meta), "optimizer": json.dumps(opt_meta)}
    write_safetensors(Path(run_dir) / "checkpoint" / CHECKPOINT_NAME, tensors, header)


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """Read a checkpoint; returns {model, best, optimizer, meta, rng} or raises RunError."""
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
        rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
        _check_layout(meta, model, best, rng)
        optimizer = _unflatten_optimizer(opt_tensors, opt_meta)
        for group in optimizer["param_groups"]:
            if not all(isinstance(i, int) for i in group["params"]):
                raise ValueError("optimizer parameter ids are not integers")
    except (SafetensorError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as e:
        raise RunError(f"{path}: checkpoint is corrupt ({str(e)[:200]}); delete it to start "
                       "over") from None
    return {"model": model, "best": best, "optimizer": optimizer, "meta": meta, "rng": rng}


# meta key -> the JSON types it must have (the training loop reads each of these on resume).
_META_TYPES = {"epoch": int, "step": int, "bad_epochs": int, "best_val": (int, float),
               "train_seconds": (int, float), "history": list}
# Keys of a mid-epoch checkpoint (absent from epoch-end and older checkpoints).
_MID_EPOCH_TYPES = {"position": int, "epoch_seconds": (int, float), "log_state": dict}
# The RNG states a mid-epoch checkpoint needs (a device generator's, `cuda`, is optional).
_RNG_NEEDED = ("epoch", "torch")


def _check_layout(meta: dict, model: dict, best: dict | None,
                  rng: dict[str, torch.Tensor] | None = None) -> None:
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
    for key, types in _MID_EPOCH_TYPES.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise ValueError(f"meta[{key!r}] is of the wrong type")
    for name, state in (rng or {}).items():
        if state.dtype != torch.uint8 or state.dim() != 1 or not state.numel():
            raise ValueError(f"rng.{name} is not a uint8 vector")
    if meta.get("position", 0) < 0:
        raise ValueError("negative position in the epoch")
    if meta.get("position", 0) > 0:
        missing = [name for name in _RNG_NEEDED if name not in (rng or {})]
        if missing:
            raise ValueError(f"mid-epoch checkpoint without rng.{missing[0]}")
        size = torch.get_rng_state().numel()  # a CPU generator's state (the same for both)
        for name in _RNG_NEEDED:
            if rng[name].numel() != size:
                raise ValueError(f"rng.{name} has {rng[name].numel()} bytes, not {size}")
        running = meta.get("running")
        if not (_is_number(running) or isinstance(running, list) and running
                and all(map(_is_number, running))):
            raise ValueError("mid-epoch checkpoint without a numeric meta['running']")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def rng_states(gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The random-number states a mid-epoch position needs: the epoch generator's (shuffle,
    augmentation, corruption noise) and torch's global one (a model's own draws)."""
    states = {"epoch": gen.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(gen: torch.Generator, states: dict[str, torch.Tensor],
                        device: torch.device, where: Path) -> None:
    try:
        gen.set_state(states["epoch"])
        torch.set_rng_state(states["torch"])
        if device.type == "cuda" and "cuda" in states:
            torch.cuda.set_rng_state(states["cuda"], device)
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunError(f"{where}: the checkpoint's random-number state is unusable "
                       f"({str(e)[:100]}); delete {where.parent} to start over") from None

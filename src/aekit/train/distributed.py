"""Data-parallel training with PyTorch's DistributedDataParallel, launched by `torchrun`.

    torchrun --nproc-per-node 2 -m aekit train --dataset fashion-mnist --batch-size 256 --out RUN

torchrun sets RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT; with WORLD_SIZE > 1 every
process trains a replica and takes a disjoint, equal shard of every batch, so the GLOBAL batch is
--batch-size and the averaged gradients equal one process's gradient on the whole batch (up to
float summation order). Only rank 0 writes the run folder. Backend: gloo for CPU tensors, NCCL for
CUDA tensors (one process per GPU). docs/DISTRIBUTED.md has the multi-node recipe.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aekit.errors import AekitError, ConfigError

ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# How long a rank waits for the others at a collective before giving up (a lost node, say).
TIMEOUT = datetime.timedelta(minutes=int(os.environ.get("AEKIT_DIST_TIMEOUT_MIN", "30")))


@dataclass(frozen=True)
class World:
    rank: int
    local_rank: int
    size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> World | None:
    """The process's place in a torchrun launch, or None for a plain single-process run."""
    raw = os.environ.get("WORLD_SIZE")
    if raw is None:
        return None
    try:
        size = int(raw)
        rank = int(os.environ.get("RANK", "-1"))
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "-1")))
    except ValueError:
        raise ConfigError(f"distributed launch: WORLD_SIZE/RANK/LOCAL_RANK must be integers "
                          f"(got WORLD_SIZE={raw!r}, RANK={os.environ.get('RANK')!r})") from None
    if size <= 1:
        return None
    missing = [k for k in ENV_KEYS if k not in os.environ]
    if missing or not 0 <= rank < size or local < 0:
        raise ConfigError(
            f"distributed launch: WORLD_SIZE={size} but {', '.join(missing) or 'RANK'} "
            f"{'missing' if missing else f'= {rank} is out of range'}; launch with "
            "`torchrun --nproc-per-node N -m aekit train ...`, which sets them all")
    return World(rank, local, size)


def current() -> World | None:
    """The World of an initialised multi-process group, else None."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    dist = torch.distributed
    if dist.get_world_size() <= 1:
        return None
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return World(dist.get_rank(), local, dist.get_world_size())


def init_from_env() -> World | None:
    """Join the process group torchrun describes (no-op and None when not launched that way).

    The backend is chosen from the machine, not from flags, so every rank picks the same one even
    when their arguments differ (a mismatch is then reported by `check_agreement`, not a hang).
    """
    world = env_world()
    if world is None:
        return None
    if current() is not None:
        return current()
    if not torch.distributed.is_available():
        raise ConfigError("distributed launch: this PyTorch build has no torch.distributed")
    if torch.cuda.is_available():
        # One GPU per process; "cuda" then means this rank's GPU everywhere in aekit.
        torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    # Why first: imported after the group exists (DDP does), torch._dynamo pins it, so shutdown
    # leaves gloo threads alive and one freeing tensors at exit aborts the rank (SIGABRT).
    try:
        importlib.import_module("torch._dynamo")
    except ImportError:  # then DDP cannot import it either
        pass
    try:
        torch.distributed.init_process_group(backend, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as e:  # rendezvous failure: wrong address/port, timeout
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"distributed launch: could not join the process group of "
                          f"{world.size} ranks at {os.environ.get('MASTER_ADDR')}:"
                          f"{os.environ.get('MASTER_PORT')} ({first})") from None
    return world


def shutdown(world: World | None) -> None:
    """Destroy the process group; with `init_from_env`'s import order this also joins gloo's
    worker threads, so none is left running when the interpreter shuts down."""
    if world is not None and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def check_agreement(world: World, settings: dict[str, Any], error: BaseException | None,
                    batch_size: int | None) -> None:
    """Raise the same ConfigError on every rank when any rank failed to prepare, the ranks were
    started with different settings, or the global batch does not split evenly.

    Run before anything is written, so a refused launch leaves no half-made run folder.
    """
    mine = {"error": None if error is None else str(error),
            "kind": type(error).__name__ if error is not None else None,
            "settings": json.loads(json.dumps(settings, sort_keys=True, default=str))}
    gathered: list[Any] = [None] * world.size
    torch.distributed.all_gather_object(gathered, mine)
    for rank, item in enumerate(gathered):
        if item["error"] is not None:
            if isinstance(error, AekitError) and rank == world.rank:
                raise error
            raise ConfigError(f"rank {rank} of {world.size} could not start: {item['error']}")
    reference = gathered[0]["settings"]
    for rank, item in enumerate(gathered[1:], start=1):
        diff = _differences(reference, item["settings"])
        if diff:
            raise ConfigError(
                f"distributed launch: rank {rank} was started with different arguments than "
                f"rank 0 ({'; '.join(diff[:4])}); start every node's torchrun with the same "
                "aekit arguments")
    if batch_size is not None and batch_size % world.size:
        raise ConfigError(
            f"--batch-size {batch_size} is the global batch and must split evenly over the "
            f"{world.size} processes; use a multiple of {world.size}")


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def batch_shard(batch_size: int, world: World) -> slice:
    """This rank's contiguous share of a global batch (sizes checked by check_agreement)."""
    per = batch_size // world.size
    return slice(world.rank * per, (world.rank + 1) * per)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP replica of `model` (already on `device`); rank 0's weights are broadcast to all."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def mean_over_ranks(value: float) -> float:
    """Average a Python float over all ranks (e.g. each rank's mean loss on its shards)."""
    t = torch.tensor([float(value)], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t.item()) / torch.distributed.get_world_size()


def from_main(value: Any) -> Any:
    """Rank 0's value on every rank (keeps decisions such as early stopping identical)."""
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def max_over_ranks(value: int) -> int:
    """The largest of every rank's integer (a stop flag: one all-reduce of one number, on the
    CPU group, so it stays cheap next to a step's gradient all-reduce)."""
    t = torch.tensor([int(value)], dtype=torch.int64)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return int(t.item())


def gather_floats(value: float) -> list[float]:
    """Every rank's float, in rank order, on every rank (exact: float64 holds a Python float)."""
    mine = torch.tensor([float(value)], dtype=torch.float64)
    out = [torch.zeros(1, dtype=torch.float64) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(out, mine)
    return [float(t.item()) for t in out]

"""Device choice and CPU thread count, decided once per process."""

from __future__ import annotations

import os

import torch

from aekit.errors import ConfigError

_threads_set = False


def setup_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads once (env AEKIT_THREADS overrides); returns the count in use."""
    global _threads_set
    if threads:  # an explicit request (--threads) is always honoured, e.g. in-process CLI calls
        torch.set_num_threads(max(1, threads))
        _threads_set = True
    elif not _threads_set:
        n = int(os.environ.get("AEKIT_THREADS", "0")) or (os.cpu_count() or 1)
        torch.set_num_threads(max(1, n))
        _threads_set = True
    return torch.get_num_threads()


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a device; use auto, cpu, cuda or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available; use --device cpu")
    return dev


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training, or None for plain float32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    else:
        native = False
    if precision == "bf16" and not native and device.type != "cpu":
        raise ConfigError(f"precision=bf16 is not supported on {device}; use --precision fp32")
    return torch.bfloat16 if (native or precision == "bf16") else None

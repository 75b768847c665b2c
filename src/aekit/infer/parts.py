"""The parts `aekit.infer` computes, as the model itself computes them (the reference)."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from aekit.errors import ConfigError

ENV = "AEKIT_FAST_PATH"
PARTS = ("encode", "decode", "reconstruct", "scores")

Output = torch.Tensor | tuple[torch.Tensor, ...]


def enabled(fast: bool | None = None) -> bool:
    """Whether the fast path is on: `fast` when given, else AEKIT_FAST_PATH (default on)."""
    if fast is not None:
        return bool(fast)
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def eager(model: nn.Module, part: str) -> Callable[[torch.Tensor], Output]:
    """The reference computation of `part` on `model` (call it under inference_mode)."""
    if part == "encode":
        return model.encode
    if part == "decode":
        return lambda z: torch.sigmoid(model.decode(z))
    if part == "reconstruct":
        return lambda x: model(x)["x_hat"]
    if part == "scores":
        def scores(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = model(x)
            return out["x_hat"], out["z"]
        return scores
    raise ConfigError(f"part={part!r}: use one of {', '.join(PARTS)}")

"""A Keras-style `model.summary()` table for any aekit model (seed 003 prints one).

The output shapes are recorded with forward hooks on one dummy image, so they are the shapes
the model really produces, whatever its architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aekit.errors import ConfigError


def _shape(out: object) -> str:
    """'(None, C, H, W)' for a tensor (None is the batch, as Keras prints it)."""
    if isinstance(out, torch.Tensor):
        return "(" + ", ".join(["None", *(str(s) for s in out.shape[1:])]) + ")"
    if isinstance(out, (tuple, list)):
        return ", ".join(_shape(o) for o in out)
    if isinstance(out, dict):
        return ", ".join(f"{k}: {_shape(v)}" for k, v in out.items())
    return type(out).__name__


def _table(rows: Sequence[tuple[str, str, str]], header: tuple[str, str, str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) + 3 for i in range(3)]
    line = "".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()
    body = ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    rule = "=" * (sum(widths) - 3)
    return [line, rule, *body, rule]


def summary(model: nn.Module, input_shape: Sequence[int] | None = None) -> str:
    """Layer table (name (type), output shape, parameters) and totals, from one dummy batch.

    `input_shape` is (C, H, W); by default the model's config shape.
    """
    if input_shape is None:
        cfg = getattr(model, "cfg", None)
        if cfg is None:
            raise ConfigError("summary: pass input_shape=(C, H, W) for a model without a cfg")
        input_shape = cfg.shape
    if len(input_shape) != 3:
        raise ConfigError(f"summary: input_shape must be (C, H, W), got {tuple(input_shape)}")

    rows: list[tuple[str, str, str]] = []
    counted: set[int] = set()

    def hook(name: str):
        def record(module: nn.Module, _inp: object, out: object) -> None:
            own = [p for p in module.parameters(recurse=False) if id(p) not in counted]
            counted.update(id(p) for p in own)
            n = sum(p.numel() for p in own)
            rows.append((f"{name} ({type(module).__name__})", _shape(out), f"{n:,}"))

        return record

    # Leaves, plus any container that owns parameters directly.
    handles = [
        m.register_forward_hook(hook(name))
        for name, m in model.named_modules()
        if name and (not list(m.children()) or list(m.parameters(recurse=False)))
    ]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.rand(1, *input_shape, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines = [f'Model: "{getattr(model, "registry_name", "") or type(model).__name__}" '
             f"({type(model).__name__})"]
    lines += _table(rows, ("Layer (type)", "Output Shape", "Param #"))
    lines += [
        f"Input: {_shape(x)}",
        *([f"Latent: {_shape(out['z'])}"] if isinstance(out, dict) and "z" in out else []),
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(lines)

"""Matplotlib figures, written atomically as PNG. matplotlib is imported lazily (it is slow)."""

from __future__ import annotations

import io
from pathlib import Path

from aekit.io import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_loss(history: list[dict], path: str | Path, title: str = "") -> None:
    """Training and validation loss per epoch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    val = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val, strict=True), "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("loss")
    ax.set_title(title or "loss")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_curves(series: dict[str, tuple[list, list]], path: str | Path, xlabel: str,
                ylabel: str, title: str = "", logx: bool = False, xticks: list | None = None
                ) -> None:
    """Several named (x, y) lines on one axis; used by the benchmarks. `xticks`: label exactly
    these x values (e.g. 10, 100, 1000 on a log axis)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, "o-", label=name)
    if logx:
        ax.set_xscale("log", base=2)
    if xticks is not None:
        ax.set_xticks(list(xticks), [str(x) for x in xticks])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)

"""Matplotlib figures (loss curves, benchmark curves, 2-D latent pictures), written atomically as
PNG. matplotlib is imported lazily (it is slow)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aekit.errors import DataError
from aekit.io import atomic_write_bytes


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_loss(history: list[dict], path: str | Path, title: str = "") -> None:
    """Training and validation loss per epoch."""
    plt = pyplot()
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
    save_figure(fig, path)


def plot_curves(series: dict[str, tuple[list, list]], path: str | Path, xlabel: str,
                ylabel: str, title: str = "", logx: bool = False, xticks: list | None = None
                ) -> None:
    """Several named (x, y) lines on one axis; used by the benchmarks. `xticks`: label exactly
    these x values (e.g. 10, 100, 1000 on a log axis)."""
    plt = pyplot()
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
    save_figure(fig, path)


def project_2d(z: np.ndarray, seed: int = 0) -> tuple[np.ndarray, tuple[str, str]]:
    """(N, D) codes -> ((N, 2) points, axis labels); PCA when D > 2."""
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)  # (N, D)
    if len(z) == 0:
        raise DataError("latent plot: no codes to plot")
    if not np.isfinite(z).all():
        raise DataError("latent plot: codes contain NaN or infinite values")
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z))]), ("z[0]", "")
    if z.shape[1] == 2:
        return z, ("z[0]", "z[1]")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(z)
    var = pca.explained_variance_ratio_ * 100
    return pca.transform(z), (f"PC 1 ({var[0]:.0f}% var.)", f"PC 2 ({var[1]:.0f}% var.)")


def plot_latent(z: np.ndarray, labels: np.ndarray | None, path: str | Path, title: str = "",
                class_names: Sequence[str] | None = None, max_points: int = 5000,
                seed: int = 0) -> None:
    """Scatter of the 2-D latent (or PCA of it), one colour per class, written as PNG."""
    z = np.asarray(z).reshape(len(z), -1)  # (N, D)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(z))[:max_points] if len(z) > max_points else np.arange(len(z))
    pts, (xlabel, ylabel) = project_2d(z, seed)
    pts = pts[idx]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color="tab:blue")
    else:
        lab = np.asarray(labels).reshape(-1)[idx]
        classes = np.unique(lab)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            m = lab == c
            name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) \
                else str(c)
            ax.scatter(pts[m, 0], pts[m, 1], s=4, alpha=0.6, color=cmap(i % cmap.N), label=name)
        ax.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"latent space ({z.shape[1]}-d)")
    ax.grid(alpha=0.3)
    save_figure(fig, path)

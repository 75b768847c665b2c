"""A 2-D picture of a latent space, one dot per image coloured by its label: the code itself when
it is 2-d, else its first two principal components."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aekit.errors import DataError
from aekit.report.plots import _pyplot, _save


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
    plt = _pyplot()
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
    _save(fig, path)

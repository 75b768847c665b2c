"""Helpers shared by the benchmark scripts: result files, tables, the environment line."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
IMG = ROOT / "docs" / "img"


def commit() -> str:
    """The source tree's commit, "+dirty" when it has uncommitted changes ("unknown" outside git):
    which code a result came from, so a run resumed later can show it ran on the same code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "bench")
        return git("rev-parse", "--short=12", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "commit": commit(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}


def write_result(name: str, data: dict, folder: Path = RESULTS) -> Path:
    """folder/name.json with the environment; a smoke test passes a folder under runs/."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    from aekit.io import atomic_write_text

    atomic_write_text(path, json.dumps({"environment": environment(), **data}, indent=2) + "\n")
    return path


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[f"{c:.4f}" if isinstance(c, float) and abs(c) < 1 else
              f"{c:.2f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def image_rows_figure(path: Path, rows: list[tuple[str, torch.Tensor]],
                      cell: tuple[float, float] = (0.9, 1.0)) -> None:
    """Save labelled rows of images (each (B, C, H, W) in [0, 1]; grey or RGB) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * cell[0], len(rows) * cell[1]))
    for r, (label, imgs) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            img = imgs[i].clamp(0, 1)
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")  # (H, W, C)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)

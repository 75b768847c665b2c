"""Shared fixtures: tiny seeded datasets written to tmp folders, threads capped for speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_blobs(n: int, size: int = 12, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Learnable synthetic images: a bright Gaussian blob at a random place, uint8 (N, C, H, W)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(2, size - 2, (2, n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)  # (N, H, W)
    img = np.repeat(img[:, None], channels, axis=1)  # (N, C, H, W)
    return (img * 255).round().astype(np.uint8)


@pytest.fixture
def tiny_npz(tmp_path: Path) -> str:
    """An `npz:` dataset of 96 train / 32 test 12x12 blob images with labels."""
    x = make_blobs(128)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x[:96], y_train=np.arange(96) % 4, x_test=x[96:],
             y_test=np.arange(32) % 4)
    return f"npz:{path}"


@pytest.fixture
def needs_fashion():
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST not installed (root: apt-get install dataset-fashion-mnist)")


def train_argv(folder: Path, run: Path, epochs: int = 1) -> list[str]:
    """`aekit train` arguments for a tiny dense run on 40 random 8x8 images saved in `folder`."""
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    np.savez(folder / "d.npz", x_train=x, x_test=x[:8])
    return ["train", "--model", "dense", "--dataset", f"npz:{folder / 'd.npz'}", "--epochs",
            str(epochs), "--out", str(run), "--quiet"]


def decode_on_threads(data: bytes, model, threads=(1, 2, 3)) -> list:
    """The codec's decoding of `data` on each thread count (the setting restored after)."""
    from aekit.codec import api

    before = torch.get_num_threads()
    try:
        outs = []
        for n in threads:
            torch.set_num_threads(n)
            outs.append(api.decompress(data, model, like="torch"))
    finally:
        torch.set_num_threads(before)
    return outs


def fitted_codec(cfg, n: int = 300, fit_filter: bool = True):
    """A codec of `cfg` started on n blob images and finalized: with the deblocking filter and
    intra predictor fitted on them unless fit_filter is False. Returns (model, finalize's
    note)."""
    from aekit.models import build_model

    torch.manual_seed(0)
    model = build_model(cfg)
    data = torch.from_numpy(make_blobs(n, size=cfg.height, channels=cfg.in_channels, seed=0))
    model.init_from_data(data)
    model.eval()
    note = model.finalize(data if fit_filter else None)
    return model, note

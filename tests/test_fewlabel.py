"""Few-label fine-tuning: balanced label picking, augmentation, training, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.config import ModelConfig
from aekit.data.augment import shift_flip
from aekit.errors import ConfigError, RunError
from aekit.models import build_model
from aekit.represent.fewlabel import (
    Classifier,
    FinetuneConfig,
    accuracy,
    balanced_indices,
    finetune,
    predict_proba,
)
from aekit.represent.io import load_classifier, save_classifier


def quadrant_blobs(n: int, size: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 1, H, W) of a blob whose quadrant is the label (4 classes)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    cy = np.where(y // 2 == 0, 3.0, 8.0) + rng.uniform(-1, 1, n)
    cx = np.where(y % 2 == 0, 3.0, 8.0) + rng.uniform(-1, 1, n)
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 4.0)
    x = torch.from_numpy((img[:, None] * 255).round().astype(np.uint8))
    return x, torch.from_numpy(y.astype(np.int64))


def test_balanced_indices_are_balanced_and_seeded():
    y = torch.arange(100) % 4
    idx = balanced_indices(y, 20, 4, seed=3)
    assert len(idx) == 20 and len(set(idx.tolist())) == 20
    assert torch.bincount(y[idx]).tolist() == [5, 5, 5, 5]
    assert torch.equal(idx, balanced_indices(y, 20, 4, seed=3))
    assert not torch.equal(idx, balanced_indices(y, 20, 4, seed=4))


@pytest.mark.parametrize("n, needle", [(200, "larger than"), (10, "not divisible"),
                                       (0, "out of range")])
def test_balanced_indices_errors(n, needle):
    with pytest.raises(ConfigError, match=needle):
        balanced_indices(torch.arange(100) % 4, n, 4)


def test_balanced_indices_short_class():
    y = torch.tensor([0] * 10 + [1] * 2)
    with pytest.raises(ConfigError, match="class 1"):
        balanced_indices(y, 8, 2)


def test_augment_shift_and_flip():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8)
    assert torch.equal(shift_flip(x, "none", 2, gen), x)
    y = shift_flip(x, "shift+flip", 2, gen)
    assert y.shape == x.shape
    assert torch.equal(shift_flip(x, "shift", 0, gen), x)


def test_finetune_learns_and_round_trips(tmp_path):
    torch.manual_seed(0)
    x, y = quadrant_blobs(160)
    ae = build_model(ModelConfig("conv", 1, 12, 12, 8, (8, 16)))
    clf = Classifier(ae, 4, "linear")
    cfg = FinetuneConfig(steps=30, batch_size=16, lr=3e-3, seed=0)
    history = finetune(clf, x[:40], y[:40], cfg, unlabeled=x[:120])
    assert history and history[-1]["step"] == 30
    assert accuracy(clf, x[120:], y[120:]) >= 0.75  # 4 classes: chance is 0.25
    save_classifier(tmp_path / "clf", clf, {"classes": ["a", "b", "c", "d"],
                                            "finetune": cfg.to_dict()})
    clf2, info = load_classifier(tmp_path / "clf")
    assert info["classes"] == ["a", "b", "c", "d"]
    assert torch.allclose(predict_proba(clf, x[120:]), predict_proba(clf2, x[120:]), atol=1e-6)


def test_mlp_head_and_frozen_encoder():
    x, y = quadrant_blobs(48)
    ae = build_model(ModelConfig("dense", 1, 12, 12, 8))
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    clf = Classifier(ae, 4, "mlp", hidden=16)
    finetune(clf, x, y, FinetuneConfig(head="mlp", hidden=16, steps=5, freeze_encoder=True))
    assert all(torch.equal(before[k], v) for k, v in ae.state_dict().items())
    assert predict_proba(clf, x).shape == (48, 4)


def test_bad_config_and_bad_folder(tmp_path):
    with pytest.raises(ConfigError, match="head="):
        FinetuneConfig(head="transformer")
    with pytest.raises(RunError, match="not a classifier folder"):
        load_classifier(tmp_path)

"""Semi-supervised fine-tuning: the k-NN graph, label propagation, pseudo-labels, and
`finetune(cfg.semi)` through the public functions."""

from __future__ import annotations

import pytest
import torch

from aekit.config import ModelConfig
from aekit.data.augment import strong_augment
from aekit.errors import ConfigError, DataError
from aekit.models import build_model
from aekit.represent.fewlabel import (
    Classifier,
    FinetuneConfig,
    accuracy,
    finetune,
    predict_proba,
    propagate_to,
)
from aekit.represent.semisup import knn_graph, propagate, pseudo_labels
from tests.test_fewlabel import quadrant_blobs


def two_moons_like(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two well separated elongated clusters in 2-d (labels 0 / 1), interleaved order."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=gen) * 6
    y = torch.arange(n) % 2
    x = torch.stack([t, y * 5.0 + 0.1 * torch.randn(n, generator=gen)], 1)
    return x, y


def test_knn_graph_is_symmetric_sparse_without_self_loops():
    x, _ = two_moons_like(60)
    g = knn_graph(x, k=5).to_dense()
    assert torch.allclose(g, g.T)
    assert torch.all(g.diagonal() == 0)
    assert ((g > 0).sum(1) >= 5).all()
    assert g.min() >= 0


def test_propagation_follows_the_clusters():
    x, y = two_moons_like(200)
    # Cosine similarity on centred features: the clusters sit at opposite angles.
    g = knn_graph(x - x.mean(0), k=10)
    probs = propagate(g, torch.tensor([0, 1]), y[:2], 2)
    assert probs.shape == (200, 2)
    assert torch.allclose(probs.sum(1), torch.ones(200))
    assert (probs.argmax(1) == y).float().mean() > 0.95


def test_pseudo_labels_keep_true_labels_and_weights_in_range():
    x, y = two_moons_like(100)
    g = knn_graph(x - x.mean(0), k=8)
    labeled = torch.tensor([3, 4, 10])
    p = pseudo_labels(g, labeled, y[labeled], 2)
    assert torch.equal(p.labels[labeled], y[labeled])
    assert torch.all(p.weights[labeled] == 1)
    assert torch.allclose(p.probs.sum(1), torch.ones(100))
    assert torch.equal(p.probs.argmax(1), p.labels)
    assert p.weights.min() >= 0 and p.weights.max() <= 1
    assert p.accuracy(y) > 0.9
    with pytest.raises(DataError, match="labelled rows"):
        pseudo_labels(g, labeled, y[:2], 2)


def test_semi_finetune_uses_unlabeled_images():
    x, y = quadrant_blobs(240)
    lab = torch.arange(8)  # two labels per class
    torch.manual_seed(0)
    clf = Classifier(build_model(ModelConfig("conv", 1, 12, 12, latent_dim=8)), 4)
    cfg = FinetuneConfig(steps=40, semi=True, rounds=2, lp_k=10, pseudo_batch=32)
    history = finetune(clf, x[lab], y[lab], cfg, unlabeled=x[8:])
    assert [h["round"] for h in history][-1] == 2
    assert accuracy(clf, x, y) > 0.9
    pseudo = propagate_to(clf, x[lab], y[lab], x[8:], cfg)
    assert len(pseudo.labels) == 232 and pseudo.accuracy(y[8:]) > 0.9


def test_semi_needs_unlabeled_images_and_valid_settings():
    x, y = quadrant_blobs(16)
    clf = Classifier(build_model(ModelConfig("conv", 1, 12, 12, latent_dim=4)), 4)
    with pytest.raises(DataError, match="unlabeled"):
        finetune(clf, x, y, FinetuneConfig(steps=1, semi=True))
    for bad in ({"rounds": 0}, {"lp_k": 0}, {"pseudo_batch": 0}):
        with pytest.raises(ConfigError):
            FinetuneConfig(**bad)


def test_strong_augment_is_seeded_and_in_range():
    x = torch.rand(8, 1, 12, 12)
    a = strong_augment(x, torch.Generator().manual_seed(5))
    b = strong_augment(x, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, strong_augment(x, torch.Generator().manual_seed(6)))
    assert (a == 0).float().mean() > (x == 0).float().mean()  # the cut-out squares


@pytest.mark.parametrize("semi, ema, soft", [(False, 0.0, False), (True, 0.9, False),
                                             (True, 0.0, True)])
def test_consistency_finetune_learns_and_is_deterministic(semi, ema, soft):
    x, y = quadrant_blobs(240)
    labelled, unlabeled = torch.arange(8), x[8:200]

    def fit():
        torch.manual_seed(0)
        clf = Classifier(build_model(ModelConfig("conv", 1, 12, 12, 8, (8, 16))), 4)
        cfg = FinetuneConfig(steps=40, batch_size=8, lr=3e-3, consistency=True, threshold=0.7,
                             semi=semi, lp_k=10, pseudo_batch=32, ema=ema, soft=soft,
                             pseudo_decay=soft, seed=1)
        history = finetune(clf, x[labelled], y[labelled], cfg, unlabeled=unlabeled)
        return clf, history

    clf, history = fit()
    assert 0 <= history[-1]["confident"] <= 1
    assert accuracy(clf, x[200:], y[200:]) >= 0.75
    clf2, _ = fit()
    assert torch.equal(predict_proba(clf, x[200:]), predict_proba(clf2, x[200:]))


def test_consistency_needs_unlabeled_images_and_checks_options():
    x, y = quadrant_blobs(16)
    clf = Classifier(build_model(ModelConfig("dense", 1, 12, 12, 8)), 4)
    with pytest.raises(DataError, match="unlabeled"):
        finetune(clf, x, y, FinetuneConfig(steps=2, consistency=True))
    with pytest.raises(ConfigError, match="threshold="):
        FinetuneConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="ema="):
        FinetuneConfig(ema=1.0)


def test_strength_zero_only_flips():
    x = torch.rand(16, 1, 10, 10)
    out = strong_augment(x, torch.Generator().manual_seed(0), strength=0.0)
    for a, b in zip(out, x, strict=True):
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a, b.flip(-1), atol=1e-5)


def test_class_mass_normalisation_rebalances_a_dominant_class():
    x, y = two_moons_like(200)
    g = knn_graph(x - x.mean(0), k=10)
    plain = propagate(g, torch.tensor([0, 1]), y[:2], 2, iters=5)
    cmn = propagate(g, torch.tensor([0, 1]), y[:2], 2, iters=5, cmn=True)
    assert torch.allclose(cmn.sum(1), torch.ones(200))
    # each class's total score mass is equal after normalisation (before the row normalisation)
    assert (cmn.argmax(1) == y).float().mean() >= (plain.argmax(1) == y).float().mean() - 0.05
    with pytest.raises(ConfigError, match="iters"):
        propagate(g, torch.tensor([0, 1]), y[:2], 2, iters=0)

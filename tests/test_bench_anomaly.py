"""bench/anomaly.py's selection helpers: score combinations and the train-split validation."""

from __future__ import annotations

import types

import numpy as np
import torch

from bench.anomaly import VAL_ANOMALIES, combos, val_split


def _detector(stats: dict, held: dict):
    """A Detector with only what combining parts needs: held-out part statistics."""
    from aekit.anomaly.detector import Detector

    det = Detector(scores="+".join(stats))
    det.stats_, det.heldout_parts_ = stats, held
    det.local_gate_ = det._gate(held, tuple(stats))
    return det


def test_combos_sum_held_out_z_scores():
    rng = np.random.default_rng(0)
    is_anomaly = np.r_[np.zeros(50, bool), np.ones(50, bool)]
    good = is_anomaly * 3.0 + rng.normal(size=100)  # separates well
    noise = rng.normal(size=100) * 100  # separates nothing, on a large scale
    det = _detector({"mse": (0.0, 1.0), "ssim": (0.0, 100.0)},
                    {"mse": rng.normal(size=50), "ssim": rng.normal(size=50) * 100})
    out = combos(det, {"mse": good, "ssim": noise}, is_anomaly)
    assert set(out) == {"mse", "ssim", "mse+ssim"}
    assert out["mse"] > 95 and 30 < out["ssim"] < 70
    # z-scoring keeps the large-scale noise from swamping the good part
    assert out["mse+ssim"] > 80


def test_local_adds_only_its_excess_over_the_held_out_range():
    """`local` counts beyond the default gate: the 0.95 quantile of the held-out local scores."""
    rng = np.random.default_rng(1)
    held = {"mse": rng.normal(size=200), "local": rng.normal(size=200)}
    det = _detector({"mse": (0.0, 1.0), "local": (0.0, 1.0)}, held)
    top, scale = det.local_gate_
    assert top == np.quantile(held["local"], 0.95) and scale == held["mse"].std()
    mse = np.array([0.5, 0.5, 0.5])
    local = np.array([0.0, top, top + 2.0])
    score = det.combine_parts({"mse": mse, "local": local})
    assert np.allclose(score, [0.5, 0.5, 0.5 + 2.0 * scale])
    assert np.allclose(det.combine_parts({"mse": mse}, "mse"), mse)


def test_val_split_uses_the_train_split_only():
    y = torch.arange(10).repeat_interleave(100)
    ds = types.SimpleNamespace(train_x=torch.arange(1000).view(1000, 1, 1, 1), train_y=y,
                               test_x=None, test_y=None)
    fit_x, eval_x, is_anomaly = val_split(ds, 3)
    fit_ids, eval_ids = set(fit_x.flatten().tolist()), eval_x.flatten()
    normal_ids = set(range(300, 400))
    assert fit_ids <= normal_ids and len(fit_ids) == 80
    assert not fit_ids & set(eval_ids.tolist())  # held-out normal images are not trained on
    assert set(eval_ids[~torch.from_numpy(is_anomaly)].tolist()) == normal_ids - fit_ids
    anomalies = eval_ids[torch.from_numpy(is_anomaly)]
    assert len(anomalies) == min(VAL_ANOMALIES, 40) and not set(anomalies.tolist()) & normal_ids

"""bench/anomaly.py's selection helpers: score combinations and the train-split validation."""

from __future__ import annotations

import types

import numpy as np
import torch

from bench.anomaly import VAL_ANOMALIES, combos, val_split


def test_combos_sum_held_out_z_scores():
    rng = np.random.default_rng(0)
    is_anomaly = np.r_[np.zeros(50, bool), np.ones(50, bool)]
    good = is_anomaly * 3.0 + rng.normal(size=100)  # separates well
    noise = rng.normal(size=100) * 100  # separates nothing, on a large scale
    stats = {"good": (0.0, 1.0), "noise": (0.0, 100.0)}
    out = combos({"good": good, "noise": noise}, stats, is_anomaly)
    assert set(out) == {"good", "noise", "good+noise"}
    assert out["good"] > 95 and 30 < out["noise"] < 70
    # z-scoring keeps the large-scale noise from swamping the good part
    assert out["good+noise"] > 80


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

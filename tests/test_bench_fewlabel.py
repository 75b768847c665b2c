"""bench/fewlabel.py's helpers: the validation split of pilot mode and the --resume cache."""

from __future__ import annotations

import argparse
import types

import torch

import bench.fewlabel as fewlabel


def fake_ds(n: int = 1200) -> types.SimpleNamespace:
    return types.SimpleNamespace(train_x=torch.arange(n).view(n, 1, 1, 1),
                                 train_y=torch.arange(n) % 10,
                                 test_x=torch.zeros(7, 1, 1, 1), test_y=torch.zeros(7))


def test_select_test_uses_every_train_image_and_the_test_split():
    ds = fake_ds()
    candidates, x_eval, y_eval = fewlabel.split(ds, "test")
    assert torch.equal(candidates, torch.arange(1200))
    assert x_eval is ds.test_x and y_eval is ds.test_y


def test_select_val_holds_out_the_pretraining_validation_images():
    ds = fake_ds()
    candidates, x_eval, y_eval = fewlabel.split(ds, "val")
    held_out = set(x_eval.flatten().tolist())
    assert len(held_out) == 100 and len(candidates) == 1100  # 1/12 of the train split
    assert held_out.isdisjoint(candidates.tolist())
    assert torch.equal(y_eval, x_eval.flatten() % 10)
    # the labelled images of pilot mode come from the candidates only
    idx = fewlabel.balanced_in_pool(ds.train_y, candidates, 50, seed=1)
    assert set(idx.tolist()) <= set(candidates.tolist())


def test_cache_keys_on_the_result_changing_options(tmp_path, monkeypatch):
    monkeypatch.setattr(fewlabel, "WORK", tmp_path)
    args = argparse.Namespace(steps=10, lr=1e-3, labels=[10], seeds=[0], name="x", threads=2)
    cache = fewlabel.Cache(args, enabled=True)
    assert cache.get("scratch", 10, 0) is None
    cache.put("scratch", 10, 0, {"accuracy": 0.5, "seconds": 1.0})
    assert cache.get("scratch", 10, 0)["accuracy"] == 0.5
    same = argparse.Namespace(**{**vars(args), "labels": [100], "seeds": [1, 2], "threads": 1})
    assert fewlabel.Cache(same, enabled=True).get("scratch", 10, 0)["accuracy"] == 0.5
    other = argparse.Namespace(**{**vars(args), "steps": 11})
    assert fewlabel.Cache(other, enabled=True).get("scratch", 10, 0) is None
    assert fewlabel.Cache(args, enabled=False).get("scratch", 10, 0) is None

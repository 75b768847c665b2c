"""The training loop: learning happens, resume is exact, divergence stops cleanly."""

from __future__ import annotations

import pytest
import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.core.io import load_model, read_metrics
from aekit.core.training import train_run
from aekit.errors import RunError, TrainingDiverged
from aekit.models import build_model
from aekit.train.checkpoint import load_checkpoint
from aekit.train.loop import fit
from aekit.train.objective import Objective, lr_at
from tests.conftest import make_blobs

DENSE = ModelConfig(name="dense", height=12, width=12, latent_dim=8)


def test_fit_reduces_loss():
    x = torch.from_numpy(make_blobs(256))
    model = build_model(DENSE)
    cfg = TrainConfig(epochs=10, batch_size=32, lr=1e-2, dataset="array")
    result = fit(model, x, cfg, progress=False)
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.images_per_second > 0


def test_fit_is_deterministic_for_a_seed():
    x = torch.from_numpy(make_blobs(128))
    cfg = TrainConfig(epochs=2, batch_size=32, dataset="array", seed=3)
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        m = build_model(DENSE)
        fit(m, x, cfg, progress=False)
        weights.append(m.state_dict())
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_resume_equals_uninterrupted(tmp_path, tiny_npz):
    mcfg = ModelConfig(name="conv", latent_dim=8)
    tcfg = TrainConfig(dataset=tiny_npz, epochs=3, batch_size=16, seed=1)
    train_run(tmp_path / "full", mcfg, tcfg, progress=False, log=lambda s: None)

    class Stop(Exception):
        pass

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Stop

    import aekit.train.loop as loop

    original = loop.fit

    def interrupted_fit(*a, **kw):
        kw["on_epoch"] = stop_after_first
        return original(*a, **kw)

    loop_fit = pytest.MonkeyPatch()
    loop_fit.setattr(loop, "fit", interrupted_fit)
    with pytest.raises(Stop):
        train_run(tmp_path / "cut", mcfg, tcfg, progress=False, log=lambda s: None)
    loop_fit.undo()
    assert load_checkpoint(tmp_path / "cut")["meta"]["epoch"] == 1
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    train_run(tmp_path / "cut", resume=True, progress=False, log=lambda s: None)

    a, _ = load_model(tmp_path / "full")
    b, _ = load_model(tmp_path / "cut")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
    ha, hb = read_metrics(tmp_path / "full")["history"], read_metrics(tmp_path / "cut")["history"]
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(tmp_path):
    x = torch.from_numpy(make_blobs(64))
    model = build_model(DENSE)
    cfg = TrainConfig(epochs=3, batch_size=32, dataset="array")
    calls = {"n": 0}

    def poison(row):  # after epoch 1 is checkpointed, make every weight NaN
        calls["n"] += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        fit(model, x, cfg, run_dir=tmp_path, progress=False, on_epoch=poison)
    state = load_checkpoint(tmp_path)
    assert state["meta"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_resume_without_checkpoint_is_a_run_error(tmp_path):
    with pytest.raises(RunError):
        train_run(tmp_path / "nothing", resume=True, progress=False)


def test_refuses_to_overwrite_an_existing_run(tmp_path, tiny_npz):
    tcfg = TrainConfig(dataset=tiny_npz, epochs=1, batch_size=32)
    train_run(tmp_path / "r", DENSE, tcfg, progress=False, log=lambda s: None)
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    with pytest.raises(RunError, match="already holds a run"):
        train_run(tmp_path / "r", DENSE, tcfg, progress=False, log=lambda s: None)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before


def test_cosine_schedule_warms_up_and_decays():
    cfg = TrainConfig(lr=1e-2, dataset="array")
    lrs = [lr_at(cfg, s, 1000) for s in range(1000)]
    assert lrs[0] < lrs[49] <= 1e-2 + 1e-12
    assert lrs[-1] < 0.05 * 1e-2
    assert max(lrs) == pytest.approx(1e-2, rel=1e-3)


def test_baseline_none_skips_pca(tmp_path, capsys):
    import json

    import numpy as np

    from aekit.cli import main

    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x[:8])
    base = ["train", "--model", "dense", "--dataset", f"npz:{tmp_path / 'd.npz'}", "--epochs",
            "1", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "a"), "--baseline", "none"]) == 0
    assert "PCA-" not in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["baselines"] == {}
    assert main(base + ["--out", str(tmp_path / "b")]) == 0
    assert "PCA-" in capsys.readouterr().out
    assert "pca" in json.loads((tmp_path / "b" / "metrics.json").read_text())["baselines"]


class _LineObjective(Objective):
    """A toy objective: fit y = 3x with a 1-parameter model, batches drawn with replacement,
    two parameter groups with their own learning rates (the contract `fit` runs)."""

    steps_per_epoch = 40

    def __init__(self) -> None:
        super().__init__(TrainConfig(epochs=2, batch_size=8, lr=0.1, dataset="array"))
        self.rates: list[list[float]] = []
        self.after: list[int] = []

    def parameter_groups(self, model):
        return [{"params": [model.w], "lr": 0.1}, {"params": [model.b], "lr": 0.0}]

    def learning_rates(self, step, total_steps):
        self.rates.append([0.1 * (1 - step / total_steps), 0.0])
        return self.rates[-1]

    def start_epoch(self, epoch, n):
        return torch.Generator().manual_seed(epoch)

    def batches(self, train_x, steps, start):
        return iter(lambda: train_x, None)

    def loss(self, net, x, gen):
        xb = x[torch.randint(0, len(x), (8,), generator=gen)]
        return ((net.w * xb + net.b - 3 * xb) ** 2).mean(), {}

    def after_step(self, model, step, loss):
        self.after.append(step)


def test_fit_runs_any_objective():
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.zeros(()))
    model.b = torch.nn.Parameter(torch.zeros(()))
    objective = _LineObjective()
    result = fit(model, torch.linspace(-1, 1, 20), objective.cfg, progress=False,
                 objective=objective)
    assert len(result.history) == 2 and objective.after == list(range(1, 81))
    assert len(objective.rates) == 80 and objective.rates[0] == [0.1, 0.0]
    assert abs(model.w.item() - 3) < 0.5  # from 0: it learned
    assert model.b.item() == 0.0  # its group's learning rate stayed 0
    assert not model.training  # the base objective's finish

"""Training budgets (aekit.train.budget): `--steps`, the automatic minimum-steps rule, --epochs
honoured as given, exact resume under every kind of budget; and the task defaults of
aekit.core.recipes (`train --corrupt` picks the recorded U-Net) and of `aekit finetune`
(the recorded few-label recipe)."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from aekit.cli import main
from aekit.config import AUTO_EPOCHS, MIN_STEPS, TrainConfig
from aekit.train import budget
from aekit.train.preempt import Preempted, StopSignals
from tests.test_preempt import _data, _equal_state, _fit, _log_rows, _rows


def test_plan_rules():
    # Fashion-MNIST: 55,000 training images at batch 128 keep exactly today's 10 epochs.
    fashion = budget.plan(TrainConfig(), 55_000)
    assert (fashion.epochs, fashion.steps_per_epoch) == (AUTO_EPOCHS, 429)
    assert fashion.total_steps == 4290 >= MIN_STEPS
    # 455 images are 3 steps an epoch: raised to reach MIN_STEPS.
    small = budget.plan(TrainConfig(), 455)
    assert small.steps_per_epoch == 3 and small.epochs == -(-MIN_STEPS // 3)
    assert small.total_steps >= MIN_STEPS and "raised" in small.why
    assert budget.plan(TrainConfig(epochs=4), 455).epochs == 4  # given: honoured as given
    assert budget.plan(TrainConfig(steps=100), 455).epochs == 34  # rounded up to whole epochs
    assert budget.plan(TrainConfig(steps=100, batch_size=1000), 455).epochs == 100  # 1 step
    # A task's recipe may ask for more automatic epochs; the minimum-steps rule still holds.
    recipe = budget.plan(TrainConfig(auto_epochs=20), 55_000)
    assert recipe.epochs == 20 and "the task's recipe" in recipe.why
    assert budget.plan(TrainConfig(auto_epochs=20), 455).epochs == small.epochs
    # An automatic budget stops after a quarter of its epochs without a better validation loss
    # (at least 10); a given budget or patience is kept as given.
    assert small.patience == -(-small.epochs // 4) and "stops once" in small.why
    assert fashion.patience == 10
    assert budget.plan(TrainConfig(epochs=4), 455).patience == 0
    assert budget.plan(TrainConfig(steps=100), 455).patience == 0
    assert budget.plan(TrainConfig(patience=3), 455).patience == 3
    # Resolving twice changes nothing: a run folder's recorded settings plan the same epochs.
    cfg, first = budget.resolve(TrainConfig(), 455)
    assert (cfg.epochs, cfg.patience) == (first.epochs, first.patience)
    assert budget.resolve(cfg, 455)[0] == cfg


def test_an_automatic_budget_stops_when_validation_stops_improving(tmp_path, monkeypatch):
    # Learning rates of zero: the validation loss never improves on the start's, so the run
    # ends after AUTO_PATIENCE_MIN epochs of its 30, keeping the start.
    from aekit.train.objective import Objective

    monkeypatch.setattr(budget, "MIN_STEPS", 60)
    monkeypatch.setattr(Objective, "learning_rates", lambda self, step, total: [0.0])
    x, val = _data()  # 200 training images: 2 steps an epoch at batch 100
    result = _fit(x, val, TrainConfig(dataset="array", batch_size=100), tmp_path / "run")[1]
    assert result.stopped_early and len(result.history) == budget.AUTO_PATIENCE_MIN
    assert result.best_epoch == 0


def _train(tmp_path, name, *extra):
    run = tmp_path / name
    code = main(["train", "--dataset", "digits", "--limit", "300", "--batch-size", "64",
                 "--widths", "8,16", "--latent-dim", "4", "--baseline", "none", "--out", str(run),
                 *extra])
    return code, run


def test_steps_flag_and_schedule_line(tmp_path, capsys):
    code, run = _train(tmp_path, "steps", "--steps", "9")
    assert code == 0
    err = capsys.readouterr().err
    # 275 training images at batch 64: 4 steps an epoch, 9 steps rounded up to 3 epochs.
    assert "schedule: 3 epochs x 4 steps of 64 images = 12 optimizer steps (--steps 9)" in err
    cfg = json.loads((run / "config.json").read_text())["train"]
    assert (cfg["epochs"], cfg["steps"]) == (3, 9)
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3


def test_automatic_budget_and_given_epochs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(budget, "MIN_STEPS", 60)  # keeps the test fast; the rule is the same
    code, run = _train(tmp_path, "auto")
    assert code == 0
    assert "= 60 optimizer steps (automatic: 275 images are 4 steps an epoch, raised from 10 " \
           "epochs to reach 60 steps" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 15
    code, run = _train(tmp_path, "given", "--epochs", "2")
    assert code == 0 and "(--epochs as given)" in capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_an_automatic_run_that_stops_early_says_so(tmp_path, capsys, monkeypatch):
    # 105 automatic epochs (a line every 2nd), learning rates of zero: validation never improves,
    # so the run stops after epoch 27 (a quarter of 105), prints that epoch's line and why.
    import aekit.train.objective as objective

    monkeypatch.setattr(budget, "MIN_STEPS", 420)
    monkeypatch.setattr(objective, "lr_at", lambda cfg, step, total: 0.0)
    code, run = _train(tmp_path, "stop")
    assert code == 0
    err = capsys.readouterr().err
    assert "stops once 27 epochs pass without a better validation loss" in err
    assert "epoch  27/105" in err and "epoch  28/105" not in err
    assert "stopped early after epoch 27: no better validation loss for 27 epochs; keeping " \
           "epoch 0" in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped_early"] and len(metrics["history"]) == 27
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 27
    assert json.loads((run / "config.json").read_text())["train"]["patience"] == 27


def test_many_epochs_print_every_kth_line(tmp_path, capsys, monkeypatch):
    # 101 epochs of one step: a line every 2nd epoch and at the last, said in the schedule line;
    # the history keeps every epoch. (Checkpoints: tests/test_preempt.py.)
    assert [budget.epoch_stride(n) for n in (1, 100, 101, 3000)] == [1, 1, 2, 30]
    code, run = _train(tmp_path, "many", "--epochs", "101", "--batch-size", "300")
    assert code == 0
    err = capsys.readouterr().err
    assert "(--epochs as given; checkpoint and line every 2 epochs)" in err
    lines = [ln.split()[1] for ln in err.splitlines() if ln.startswith("epoch ")]
    assert lines == [f"{e}/101" for e in (*range(2, 101, 2), 101)]
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 101
    assert len((run / "log.csv").read_text().splitlines()) == 1 + 101  # every epoch's row


def test_epochs_and_steps_together_is_one_line_error(tmp_path, capsys):
    code, run = _train(tmp_path, "both", "--epochs", "2", "--steps", "10")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--epochs 2 and --steps 10" in err and "\n" not in err
    assert not run.exists()


@pytest.mark.parametrize("kind", ["steps", "automatic"])
def test_stop_and_resume_exact_under_a_step_budget(tmp_path, monkeypatch, kind):
    """A run planned by --steps or by the automatic rule stops on SIGTERM mid-epoch and resumes
    to the same weights, history and log as an uninterrupted one."""
    monkeypatch.setattr(budget, "MIN_STEPS", 30)
    x, val = _data()  # 200 images at batch 16: 12 steps an epoch
    cfg = TrainConfig(dataset="array", batch_size=16, precision="fp32",
                      **({"steps": 25} if kind == "steps" else {}))
    ref_model, ref = _fit(x, val, cfg, tmp_path / "ref")
    assert len(ref.history) == (3 if kind == "steps" else AUTO_EPOCHS)
    run = tmp_path / "run"

    def signal_at(step):
        if step == 17:
            os.kill(os.getpid(), signal.SIGTERM)

    with StopSignals() as stop, pytest.raises(Preempted):
        _fit(x, val, cfg, run, stop=stop, on_step=signal_at)
    model, result = _fit(x, val, cfg, run, resume=True)
    assert _equal_state(ref_model, model) and _rows(result) == _rows(ref)
    assert _log_rows(run) == _log_rows(tmp_path / "ref")


def test_corrupt_without_model_trains_the_task_unet(tmp_path, capsys):
    # Light Gaussian noise alone: the denoising U-Net (full resolution); heavier noise and any
    # other corruption: the recorded restoration U-Net (half resolution).
    for i, (spec, widths, shuffle) in enumerate((("gaussian:0.2", "16,32,64", 1),
                                                 ("mask:blocks", "32,64,128", 2),
                                                 ("gaussian:0.5", "32,64,128", 2),
                                                 ("gaussian:0.1+mask:blocks", "32,64,128", 2))):
        code, run = _train(tmp_path, f"restore{i}", "--corrupt", spec, "--steps", "2")
        assert code == 0
        assert f"model: unet --widths {widths} --option shuffle={shuffle}" in \
            capsys.readouterr().err
        config = json.loads((run / "config.json").read_text())
        model = config["model"]
        assert model["name"] == "unet" and model["widths"] == [8, 16]  # --widths given: kept
        assert model["options"]["shuffle"] == shuffle and model["options"]["depth"] == 2
        # the denoising recipe's automatic budget is at least 20 epochs, the others' 10
        assert config["train"]["auto_epochs"] == (20 if shuffle == 1 else AUTO_EPOCHS)
    run = tmp_path / "denoise2"
    assert main(["train", "--dataset", "digits", "--limit", "300", "--corrupt", "mask:blocks",
                 "--steps", "1", "--option", "depth=1", "--baseline", "none", "--out",
                 str(run), "-q"]) == 0
    model = json.loads((run / "config.json").read_text())["model"]
    assert model["widths"] == [32, 64, 128] and model["options"]["depth"] == 1  # given wins
    for extra in (["--corrupt", "affine"], ["--corrupt", "gaussian:0.2", "--model", "conv"], []):
        code, run = _train(tmp_path, f"plain{len(extra)}", *extra, "--steps", "1", "-q")
        assert code == 0
        assert json.loads((run / "config.json").read_text())["model"]["name"] == "conv"


def test_finetune_defaults_are_the_recorded_recipe(tmp_path, capsys):
    from aekit.represent.config import RECIPE, FinetuneConfig

    x = (np.random.default_rng(0).random((96, 12, 12)) * 255).astype(np.uint8)
    y = np.arange(96) % 4
    np.savez(tmp_path / "lab.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:],
             y_test=y[64:])
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"npz:{tmp_path / 'lab.npz'}", "--widths", "8,16",
                 "--latent-dim", "4", "--epochs", "1", "--batch-size", "16", "--baseline",
                 "none", "--out", str(run), "-q"]) == 0
    clf = tmp_path / "clf"
    # The recipe's values, but few steps and a graph small enough for 64 images.
    assert main(["finetune", str(run), "--labels", "8", "--steps", "3", "--lp-k", "5",
                 "--pseudo-batch", "16", "--out", str(clf)]) == 0
    ft = json.loads((clf / "classifier.json").read_text())["finetune"]
    expected = FinetuneConfig(**{**RECIPE, "steps": 3, "lp_k": 5, "pseudo_batch": 16}).to_dict()
    assert ft == expected and ft["semi"] and ft["consistency"] and ft["lp_cmn"]
    assert all(ft[k] == v for k, v in RECIPE.items() if k not in ("steps", "lp_k"))
    out = capsys.readouterr()
    assert "aekit train --corrupt affine --latent-dim 64 --epochs 120" in out.err
    clf2 = tmp_path / "clf2"
    assert main(["finetune", str(run), "--labels", "8", "--steps", "3", "--no-semi",
                 "--no-consistency", "--out", str(clf2), "-q"]) == 0
    ft = json.loads((clf2 / "classifier.json").read_text())["finetune"]
    assert not ft["semi"] and not ft["consistency"]

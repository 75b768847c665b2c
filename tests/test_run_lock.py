"""One writer per run folder: a live writer's lock refuses a second one; a dead one's is taken."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from aekit.cli import main
from aekit.core.io import LOCK, run_lock
from aekit.errors import RunError
from tests.conftest import train_argv


def test_second_writer_is_refused_and_lock_released(tmp_path):
    with run_lock(tmp_path):
        lock = json.loads((tmp_path / LOCK).read_text())
        assert lock["host"] == socket.gethostname()
        with pytest.raises(RunError, match="being written by process"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with run_lock(tmp_path):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] != dead.pid
    (tmp_path / LOCK).write_text("half a lo")  # a writer killed while writing the lock
    with run_lock(tmp_path):
        pass


def test_train_refuses_a_folder_another_process_writes(tmp_path, capsys):
    run = tmp_path / "run"
    argv = train_argv(tmp_path, run)
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": 1, "host": socket.gethostname()}))  # init: alive
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "being written by process 1" in err and len(err.strip().splitlines()) == 1
    assert not (run / "config.json").exists()


@pytest.mark.parametrize("bad", [["--corrupt", "gauss:0.5"], ["--loss", "foo"],
                                 ["--device", "cuda:7"]])
def test_bad_settings_write_nothing_and_the_retry_works(tmp_path, capsys, bad):
    run = tmp_path / "run"
    argv = train_argv(tmp_path, run, epochs=1)
    assert main(argv + bad) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (run / "config.json").exists()
    assert main(argv) == 0  # the corrected command just works


def test_a_run_that_never_reached_a_checkpoint_is_replaced(tmp_path, capsys):
    run = tmp_path / "run"
    argv = train_argv(tmp_path, run, epochs=1)
    assert main(argv) == 0
    (run / "model.safetensors").unlink()  # as if killed in epoch 1: config, no checkpoint
    for p in (run / "checkpoint").glob("*"):
        p.unlink()
    assert main(argv) == 0
    assert main(argv) == 2  # a finished run is never replaced
    assert "already holds a run" in capsys.readouterr().err


def test_a_data_dependent_start_runs_again_when_resumed_before_the_first_checkpoint(tmp_path):
    """The codec starts from a closed-form fit to the training images. A run killed before its
    first checkpoint restarts from the beginning on --resume, and the start runs again."""
    from aekit.config import ModelConfig, TrainConfig
    from aekit.core.training import train_run

    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x[:16])
    cfg = TrainConfig(dataset=f"npz:{tmp_path / 'd.npz'}", epochs=1, batch_size=16)
    run = tmp_path / "run"
    lines: list[str] = []
    first = train_run(run, ModelConfig(name="codec", latent_dim=8,
                                       options={"clusters": 2}), cfg, progress=False,
                      log=lines.append)
    assert any("closed-form start" in s for s in lines)
    (run / "model.safetensors").unlink()  # as if killed in epoch 1: config only
    for p in (run / "checkpoint").glob("*"):
        p.unlink()
    lines.clear()
    again = train_run(run, resume=True, progress=False, log=lines.append)
    assert any("closed-form start" in s for s in lines), lines
    assert again["test"]["psnr"] == pytest.approx(first["test"]["psnr"], abs=1e-6)


@pytest.mark.parametrize("name", ["dense", "deep", "conv", "unet", "vae"])
def test_every_model_restarts_its_output_bias_start_when_resumed_before_a_checkpoint(
        tmp_path, name):
    """Every model's output bias starts at the training images' mean (a data-dependent start);
    a run stopped before its first checkpoint restarts on --resume and gets that start again,
    so the result equals an uninterrupted run's."""
    from aekit.config import ModelConfig, TrainConfig
    from aekit.core.training import train_run

    x = np.random.default_rng(1).integers(0, 60, (64, 8, 8), dtype=np.uint8)  # dark, sparse-ish
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x[:16])
    cfg = TrainConfig(dataset=f"npz:{tmp_path / 'd.npz'}", epochs=1, batch_size=16)
    run = tmp_path / "run"
    widths = (8, 8) if name in ("deep", "unet") else ()
    first = train_run(run, ModelConfig(name=name, latent_dim=4, widths=widths), cfg,
                      progress=False, log=lambda s: None, baseline="none")
    (run / "model.safetensors").unlink()  # as if stopped in epoch 1: config only
    for p in (run / "checkpoint").glob("*"):
        p.unlink()
    again = train_run(run, resume=True, progress=False, log=lambda s: None, baseline="none")
    assert again["test"]["psnr"] == first["test"]["psnr"]

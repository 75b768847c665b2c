"""Training logs: RUN/log.csv always, TensorBoard event files with --log tensorboard."""

from __future__ import annotations

import csv

import pytest

import aekit.train.logging as run_logging
from aekit.cli import main
from aekit.errors import ConfigError
from aekit.train.logging import RunLogger


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_csv_always_and_resume_drops_rows_after_the_checkpoint(tmp_path):
    log = RunLogger(tmp_path, ("csv",), batch_size=4)
    for epoch in (1, 2, 3):
        for s in range(2):
            log.step(2 * (epoch - 1) + s + 1, 0.5 / epoch, {"bpp": 1.0 + s})
        log.epoch({"epoch": epoch, "train_loss": 0.5 / epoch, "val_loss": 0.6 / epoch,
                   "lr": 1e-3, "seconds": 0.5})
    log.close()
    rows = _rows(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[0]["bpp"]) == 1.5 and rows[2]["step"] == "6"
    assert float(rows[0]["images_per_second"]) == 16.0  # 2 steps x 4 images / 0.5 s
    # Resumed from the epoch-1 checkpoint: epochs 2.. are rewritten, not duplicated.
    again = RunLogger(tmp_path, ("csv",), batch_size=4)
    again.step(3, 0.2, {})
    again.epoch({"epoch": 2, "train_loss": 0.2, "val_loss": None, "lr": 1e-3, "seconds": 1})
    rows = _rows(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[1]["val_loss"] == ""
    with pytest.raises(ConfigError, match="--log"):
        RunLogger(tmp_path, ("wandb",))


def test_rows_kept_for_the_next_checkpoint_are_written_on_close(tmp_path):
    # A run of many short epochs rewrites log.csv with its strided checkpoints only; a stop in
    # between (which checkpoints that epoch) still leaves every row on disk.
    log = RunLogger(tmp_path, ("csv",), batch_size=4)
    for epoch in (1, 2, 3):
        log.step(epoch, 0.1, {})
        log.epoch({"epoch": epoch, "train_loss": 0.1, "val_loss": None, "lr": 1e-3,
                   "seconds": 0.5}, write=epoch == 2)
    assert [r["epoch"] for r in _rows(tmp_path / "log.csv")] == ["1", "2"]
    log.close()
    assert [r["epoch"] for r in _rows(tmp_path / "log.csv")] == ["1", "2", "3"]


def test_train_with_tensorboard_writes_event_files(tmp_path, tiny_npz):
    pytest.importorskip("tensorboard", reason="tensorboard not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main(["train", "--model", "dense", "--dataset", tiny_npz, "--latent-dim", "4",
                 "--epochs", "2", "--batch-size", "32", "--quiet", "--log", "tensorboard",
                 "--out", str(run)]) == 0
    assert [r["epoch"] for r in _rows(run / "log.csv")] == ["1", "2"]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/step_loss", "loss/train", "loss/validation", "test/psnr"} <= set(tags["scalars"])
    assert len(events.Scalars("train/step_loss")) == 4  # 2 epochs x 2 steps
    assert "reconstructions" in tags["images"]


def test_tensorboard_missing_is_a_note_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(run_logging, "tensorboard_available", lambda: False)
    notes = []
    log = RunLogger(tmp_path, ("csv", "tensorboard"), note=notes.append)
    log.step(1, 0.1, {})
    log.epoch({"epoch": 1, "train_loss": 0.1, "seconds": 1})
    assert log.writer is None and "not installed" in notes[0]
    assert not (tmp_path / "tensorboard").exists() and (tmp_path / "log.csv").is_file()

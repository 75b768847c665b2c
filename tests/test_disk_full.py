"""A write that hits a full disk keeps the previous complete file and says so in one line."""

from __future__ import annotations

import errno
import os

import pytest

from aekit.cli import main
from aekit.errors import RunError
from aekit.io import atomic_write_bytes, atomic_write_text
from tests.conftest import train_argv


def _full_disk(monkeypatch, after: int = 0):
    """Make every fsync after the first `after` ones fail with ENOSPC (where a full disk shows)."""
    real, calls = os.fsync, [0]

    def fsync(fd):
        calls[0] += 1
        if calls[0] > after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old complete file\n")
    _full_disk(monkeypatch)
    with pytest.raises(RunError, match=f"disk full at {target}"):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old complete file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temp left


def test_train_on_a_full_disk_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    argv = train_argv(tmp_path, run, epochs=2)
    _full_disk(monkeypatch, after=1)  # config.json is written; the first checkpoint is not
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aekit: error: disk full at ") and len(err.splitlines()) == 1, err
    assert (run / "config.json").is_file() and not list(run.rglob("*.tmp"))
    monkeypatch.undo()  # space freed: the run resumes (it never reached a checkpoint)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0

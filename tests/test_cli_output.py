"""The command line as a Unix tool: what goes to stderr (progress bars only on a terminal, plain
lines on a pipe, -q/-v), the one rule for image files that do not match the model (skipped and
listed, or converted with --resize), and start-up without torch."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_blobs
from PIL import Image

from aekit import console
from aekit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _train_argv(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    x = make_blobs(64)
    np.savez(tmp_path / "d.npz", x_train=x[:48], x_test=x[48:])
    return ["train", "--model", "dense", "--dataset", f"npz:{tmp_path / 'd.npz'}", "--epochs",
            "2", "--batch-size", "16", "--latent-dim", "4", "--threads", "1", "--out", str(out),
            *extra]


def test_train_on_a_pipe_prints_plain_lines_never_a_bar(tmp_path, capsys):
    assert main(_train_argv(tmp_path, tmp_path / "run")) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert sum(ln.startswith("epoch ") for ln in lines) == 2  # one plain line per epoch
    assert any(ln.startswith("evaluating on 16 test images") for ln in lines)
    assert any(ln.startswith("baseline: PCA") for ln in lines)
    assert "run folder:" in out and "PSNR" in out  # the result, on stdout


def test_quiet_keeps_warnings_and_the_result(tmp_path, capsys, monkeypatch):
    from aekit.train.health import CollapseCheck

    monkeypatch.setattr(CollapseCheck, "__call__",
                        lambda self, *a, **k: "forced collapse for the test")
    assert main(_train_argv(tmp_path, tmp_path / "run", "--quiet")) == 0
    out, err = capsys.readouterr()
    assert err.strip() == "warning: forced collapse for the test"  # nothing else on stderr
    assert "run folder:" in out and "PSNR" in out


def test_verbose_adds_phase_timings(tmp_path, capsys):
    assert main(_train_argv(tmp_path, tmp_path / "run", "-v")) == 0
    err = capsys.readouterr().err
    assert any(ln.strip().startswith("evaluating on 16 test images:") and ln.endswith("s")
               for ln in err.splitlines())
    assert console.level() == console.NORMAL  # -v held for that command only


class _Stream:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> int:
        self.text.append(s)
        return len(s)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty, level, bar", [(True, console.NORMAL, True),
                                             (False, console.NORMAL, False),
                                             (True, console.QUIET, False)])
def test_progress_bar_only_on_a_terminal(monkeypatch, tty, level, bar):
    from aekit.train.loop import _progress

    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    previous = console.set_level(level)
    try:
        made = _progress(True, 10, 0, 2)
        assert (made is not None) == bar
        if made is not None:
            made.close()
    finally:
        console.set_level(previous)


def test_version_starts_fast_without_torch():
    code = ("import sys, time; t = time.perf_counter(); from aekit.cli import main; "
            "main(['--version']); print(time.perf_counter() - t); "
            "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))")
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, check=True)
        wall = time.perf_counter() - t0
        best = wall if best is None else min(best, wall)
    lines = proc.stdout.splitlines()
    assert lines[0] == "aekit 0.1.0" and lines[2] == "[]"  # no torch, numpy or Pillow
    assert best <= 0.3, f"aekit --version took {best:.3f}s"


# --- one rule for files that do not match the model ---------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("mismatch")
    x = make_blobs(64)
    np.savez(d / "d.npz", x_train=x[:48], x_test=x[48:])
    out = d / "run"
    assert main(["train", "--model", "dense", "--dataset", f"npz:{d / 'd.npz'}", "--epochs", "1",
                 "--batch-size", "16", "--latent-dim", "4", "--baseline", "none", "--quiet",
                 "--threads", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def mixed(tmp_path):
    """A folder: two 12x12 grey images (the model's shape), one 16x16, one colour, one broken."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i, a in enumerate(make_blobs(2, seed=4)):
        Image.fromarray(a[0]).save(src / f"a{i}.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(src / "b_big.png")
    Image.fromarray(np.zeros((12, 12, 3), np.uint8) + 80).save(src / "c_rgb.png")
    (src / "d_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    return src


def _skipped(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("aekit: skipped ")]


@pytest.mark.parametrize("command", ["reconstruct", "embed"])
def test_mismatched_files_are_listed_with_the_flag_and_the_rest_processed(run, mixed, tmp_path,
                                                                           capsys, command):
    target = tmp_path / ("o" if command == "reconstruct" else "z.npy")
    if command == "reconstruct":  # a larger image is reconstructed in tiles; a smaller one is not
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(mixed / "b_small.png")
    assert main([command, str(run), str(mixed), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    skipped = _skipped(err)
    if command == "reconstruct":
        assert [Path(ln.split(": ")[1].split()[-1]).name for ln in skipped] == [
            "b_small.png", "c_rgb.png", "d_broken.png"]  # every bad file, in input order
        assert "image is 1x8x8 but the model takes 1x12x12 (or larger, in tiles); pass " \
            "--resize to convert and resize" in skipped[0]
        assert err.count("aekit: 1 image(s) larger than 12x12 processed in overlapping tiles") == 1
        assert sorted(p.name for p in target.iterdir()) == ["a0.png", "a1.png", "b_big.png"]
        with Image.open(target / "b_big.png") as im:
            assert im.size == (16, 16)  # the input's own size
    else:
        assert [Path(ln.split(": ")[1].split()[-1]).name for ln in skipped] == [
            "b_big.png", "c_rgb.png", "d_broken.png"]  # every bad file, in input order
        assert "image is 1x16x16 but the model takes 1x12x12; pass --resize to convert and " \
            "resize" in skipped[0]
        assert np.load(target).shape == (2, 4)
    assert "image is 3x12x12 but the model takes 1x12x12" in skipped[1]


@pytest.mark.parametrize("command", ["reconstruct", "embed"])
def test_resize_converts_and_says_so_once(run, mixed, tmp_path, capsys, command):
    (mixed / "d_broken.png").unlink()
    target = tmp_path / ("o" if command == "reconstruct" else "z.npy")
    assert main([command, str(run), str(mixed), "--resize", "-o", str(target)]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "aekit: 2 image(s) converted/resized to 1x12x12"
    if command == "reconstruct":
        assert len(list(target.iterdir())) == 4
        with Image.open(target / "b_big.png") as im:
            assert im.size == (12, 12)
    else:
        assert np.load(target).shape == (4, 4)


def test_nothing_usable_is_one_line_and_exit_2(run, mixed, tmp_path, capsys):
    assert main(["reconstruct", str(run), str(mixed / "c_rgb.png"), "-o", str(tmp_path / "o")]) \
        == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("aekit: error: ") and "c_rgb.png" in err
    assert "pass --resize to convert and resize" in err
    # each named image is needed: interpolate refuses a mismatched one, takes it with --resize
    a, big = str(mixed / "a0.png"), str(mixed / "b_big.png")
    assert main(["interpolate", str(run), a, big, "-o", str(tmp_path / "s.png")]) == 2
    assert "b_big.png: image is 1x16x16" in capsys.readouterr().err
    assert main(["interpolate", str(run), a, big, "--resize", "-o", str(tmp_path / "s.png")]) == 0
    assert "1 image(s) converted/resized" in capsys.readouterr().err

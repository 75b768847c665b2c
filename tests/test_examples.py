"""The tutorials in examples/ run end to end with --budget tiny and write valid, non-blank PNGs.

Each script is loaded with runpy and its main() called in this process (one torch import for all
of them); one more test runs a script the way a reader does, as `python examples/NAME.py`.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIGURES = {
    "seed000_dense_vs_cnn": ["seed000_reconstructions.png", "seed000_loss.png"],
    "seed001_four_autoencoders": ["seed001_reconstructions.png", "seed001_loss.png",
                                  "seed001_denoising.png"],
    "seed002_convtranspose_and_vae": ["seed002_reconstructions.png", "seed002_sampling.png",
                                      "seed002_vae_samples.png"],
    "seed003_fashion_keras_conv": ["seed003_loss.png", "seed003_reconstructions.png",
                                   "seed003_anomaly.png", "seed003_fewlabels.png"],
    "seed004_tf_denoise_crosshair": ["seed004_denoising.png", "seed004_crosshair.png",
                                     "seed004_loss.png"],
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _restore_threads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts set AEKIT_THREADS for their commands; undo that after each test."""
    monkeypatch.setenv("AEKIT_THREADS", "1")


def run_tutorial(name: str, out: Path, *extra: str) -> int:
    module = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="tutorial")
    try:
        return module["main"](["--budget", "tiny", "--threads", "1", "--out", str(out), *extra])
    except SystemExit as stop:  # a failed aekit command stops the tutorial with exit code 1
        return int(stop.code or 0)


def check_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
    assert min(pixels.shape) >= 50, f"{path.name} is only {pixels.shape}"
    assert pixels.std() > 5, f"{path.name} is blank (one flat colour)"


def test_every_tutorial_is_listed() -> None:
    assert {p.stem for p in EXAMPLES.glob("seed*.py")} == set(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_tutorial_runs_with_tiny_budget(name: str, tmp_path: Path) -> None:
    assert run_tutorial(name, tmp_path) == 0
    for figure in FIGURES[name]:
        check_png(tmp_path / figure)


def test_digits_fallback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Without MNIST (a clone without the shared data folder) scikit-learn's digits are used."""
    assert run_tutorial("seed000_dense_vs_cnn", tmp_path, "--data", "digits") == 0
    assert "scikit-learn digits" in capsys.readouterr().out
    for figure in FIGURES["seed000_dense_vs_cnn"]:
        check_png(tmp_path / figure)


def test_script_runs_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "AEKIT_THREADS": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / "seed000_dense_vs_cnn.py"), "--budget",
                           "tiny", "--threads", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "== done" in done.stdout
    check_png(tmp_path / "seed000_reconstructions.png")

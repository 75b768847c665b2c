"""The command line through `cli.main(argv)`: happy paths and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main


@pytest.fixture
def trained_run(tmp_path, tiny_npz):
    out = tmp_path / "run"
    code = main(["train", "--model", "conv", "--dataset", tiny_npz, "--latent-dim", "8",
                 "--epochs", "2", "--batch-size", "16", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_writes_the_run_folder_contract(trained_run, capsys):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "history.csv",
            "reconstructions.png", "loss.png", "checkpoint"} <= names
    m = json.loads((trained_run / "metrics.json").read_text())
    for key in ("model", "dataset", "latent_dim", "epochs", "train_seconds",
                "train_images_per_second", "test", "baselines", "history"):
        assert key in m
    assert set(m["test"]) == {"mse", "psnr", "ssim"}
    assert {"mse", "psnr"} <= set(m["baselines"]["pca"])
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert Image.open(trained_run / "reconstructions.png").size[0] > 100
    assert not list(trained_run.rglob("*.tmp"))


def test_eval_prints_metrics(trained_run, capsys):
    assert main(["eval", str(trained_run)]) == 0
    out = json.loads(capsys.readouterr().out)
    stored = json.loads((trained_run / "metrics.json").read_text())
    assert out["test"]["psnr"] == pytest.approx(stored["test"]["psnr"], abs=1e-6)


def test_eval_keep_truncates_the_latent(trained_run, capsys):
    assert main(["eval", str(trained_run), "--keep", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["keep"] == 1
    assert main(["eval", str(trained_run), "--keep", "8"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["test"]["mse"] < one["test"]["mse"]
    assert main(["eval", str(trained_run), "--keep", "0"]) == 2


def test_reconstruct_writes_pngs_and_reports_bad_files(trained_run, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 12), 40 * i, np.uint8)).save(src / f"im{i}.png")
    assert main(["reconstruct", str(trained_run), str(src), "-o", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["im0.png", "im1.png", "im2.png"]
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    capsys.readouterr()
    assert main(["reconstruct", str(trained_run), str(src), "-o", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err
    assert len(list((tmp_path / "o2").iterdir())) == 3


@pytest.mark.parametrize("argv, needle", [
    (["train", "--model", "nope", "--dataset", "digits", "--out", "X"], "unknown model"),
    (["train", "--dataset", "nope", "--out", "X"], "nope"),
    (["train", "--resume", "NOT_A_RUN"], "not a run folder"),
    (["eval", "NOT_A_RUN"], "not a run folder"),
    (["summary", "nope"], "unknown model"),
    (["train", "--dataset", "digits", "--epochs", "-1", "--out", "X"], "epochs=-1"),  # 0: automatic
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_nan_in_npz_is_a_clear_error(tmp_path, capsys):
    x = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
    x[3, 2, 2] = np.nan
    np.savez(tmp_path / "bad.npz", x_train=x)
    code = main(["train", "--dataset", f"npz:{tmp_path / 'bad.npz'}", "--out",
                 str(tmp_path / "r"), "--quiet"])
    assert code == 2
    assert "NaN" in capsys.readouterr().err or "nan" in capsys.readouterr().err.lower()


def test_models_datasets_summary(capsys):
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in ("dense", "deep", "conv", "seed-dense", "seed-deep", "seed-keras-conv",
                 "seed-torch-conv", "seed-tf-conv"):
        assert name in listing
    # every model: its whole summary, its loss, and each option of its card with the default
    from aekit.models.cards import NestedOptions
    from aekit.registry import model_cards

    flat = " ".join(listing.split())
    for name, card in model_cards().items():
        assert f"{name} {' '.join(card.summary.split())} loss {card.loss}" in flat, name
        for key, value in {**card.options.defaults(), **NestedOptions.defaults()}.items():
            assert f"{key}={json.dumps(value)}" in flat, (name, key)
    assert "lambda=0.002" in listing and 'activation="relu"' in listing
    assert main(["datasets"]) == 0
    assert "digits" in capsys.readouterr().out
    assert main(["summary", "seed-keras-conv"]) == 0
    table = capsys.readouterr().out
    assert "Total" in table or "total" in table


def test_summary_of_a_run(trained_run, capsys):
    assert main(["summary", str(trained_run)]) == 0
    assert "conv" in capsys.readouterr().out.lower()


def test_help_and_usage_errors_do_not_raise(capsys):
    assert main(["--help"]) == 0
    assert main(["train", "--epochs", "many"]) == 2


def test_closed_pipe_exits_quietly(tmp_path):
    """`aekit models | head -1`: the reader closes the pipe early; no error, no traceback."""
    import subprocess
    import sys

    for _ in range(5):
        proc = subprocess.run(f"{sys.executable} -m aekit models | head -1", shell=True,
                              capture_output=True, text=True, timeout=120)
        assert proc.stderr == "", proc.stderr
        assert len(proc.stdout.splitlines()) == 1


# Every command that runs a model over a dataset or image files takes --threads (set once).
HEAVY = ("train", "eval", "reconstruct", "compress", "decompress", "denoise", "inpaint",
         "colorize", "swap", "anomaly fit", "anomaly score", "embed", "finetune", "classify")


def test_every_heavy_command_takes_threads():
    from aekit.cli import _commands, build_parser

    flags = {name: {o for a in sub._actions for o in a.option_strings}
             for name, sub, _ in _commands(build_parser())}
    assert all(f"aekit {c}" in flags for c in HEAVY)
    assert [c for c in HEAVY if "--threads" not in flags[f"aekit {c}"]] == []


def test_eval_with_threads(trained_run, capsys, monkeypatch):
    import aekit.device

    seen = []
    monkeypatch.setattr(aekit.device, "setup_threads", lambda n: seen.append(n))
    assert main(["eval", str(trained_run), "--threads", "1"]) == 0
    assert seen == [1] and "psnr" in capsys.readouterr().out

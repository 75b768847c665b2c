"""Partial batches: a folder holding some corrupt files -> every good file is processed, each bad
one is listed on stderr (one line, no traceback), exit 1; an all-good folder exits 0.

Covers every batch command in this build: reconstruct, denoise, compress, anomaly score. A command
whose module is not in the build yet is skipped with the reason."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main
from tests.reliability.seeds import cli_commands as _commands
from tests.reliability.seeds import png_with_header
from tests.reliability.seeds import untrained_run as _run

N_GOOD = 5


def _folder(root: Path, size: int, bad: bool) -> tuple[Path, list[str], list[str]]:
    """N_GOOD good greyscale PNG/JPEG/BMP files (+ corrupt ones) -> (folder, good, bad names)."""
    src = root / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    good = []
    for i in range(N_GOOD):
        ext = [".png", ".jpg", ".bmp", ".png", ".tif"][i]
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(src / f"g{i}{ext}")
        good.append(f"g{i}{ext}")
    names = []
    if bad:
        png = (src / "g0.png").read_bytes()
        corrupt = {
            "empty.png": b"",
            "truncated.png": png[: len(png) // 2],
            "text.jpg": b"hello, I am not a JPEG\n",
            "badcrc.png": png[:20] + bytes([png[20] ^ 0xFF]) + png[21:],
            "bomb.png": png_with_header(9000, 9000, 8, 0, 0, b"\0" * 64),
            "zeros.bmp": b"BM" + struct.pack("<I", 10**9) + b"\0" * 40,
            "zlibjunk.png": png[:37] + zlib.compress(b"x") + png[37 + 11 :],
        }
        for name, data in corrupt.items():
            (src / name).write_bytes(data)
        names = sorted(corrupt)
    (src / "notes.txt").write_text("not an image, not listed: no image suffix")
    return src, good, names


def _check(capsys, code: int, out: Path, good: list[str], bad: list[str], suffix: str) -> None:
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert code == (1 if bad else 0), err
    for name in bad:
        lines = [ln for ln in err.splitlines() if name in ln]
        assert len(lines) == 1 and lines[0].startswith("aekit: skipped "), (name, err)
    assert "skipped" not in err if not bad else f"{len(bad)} skipped" in err
    made = sorted(p.name for p in out.iterdir() if p.is_file())
    assert made == sorted(Path(g).stem + suffix for g in good)
    for p in out.iterdir():
        if suffix == ".png" and p.is_file():
            with Image.open(p) as im:
                im.load()  # every output complete
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.parametrize("bad", [False, True], ids=["all-good", "some-corrupt"])
@pytest.mark.parametrize("command", ["reconstruct", "denoise"])
def test_restore_partial_batch(tmp_path, capsys, command, bad):
    if command not in _commands():
        pytest.skip(f"`aekit {command}` is not in this build yet")
    run = _run(tmp_path / "run", "dense", corrupt="gaussian:0.5" if command == "denoise" else "")
    src, good, names = _folder(tmp_path, 12, bad)
    out = tmp_path / "out"
    code = main([command, str(run), str(src), "-o", str(out)])
    _check(capsys, code, out, good, names, ".png")


@pytest.mark.parametrize("bad", [False, True], ids=["all-good", "some-corrupt"])
def test_compress_partial_batch(tmp_path, capsys, bad):
    if "compress" not in _commands():
        pytest.skip("`aekit compress` (aekit.codec.cli) is not in this build yet")
    run = _run(tmp_path / "run", "codec", size=16)
    src, good, names = _folder(tmp_path, 16, bad)
    out = tmp_path / "out"
    code = main(["compress", str(run), str(src), "--each", "-o", str(out)])
    _check(capsys, code, out, good, names, ".aez")


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A tiny fitted anomaly detector (one model, one epoch) on 24 grey 12x12 images."""
    if "anomaly" not in _commands():
        pytest.skip("`aekit anomaly score` (aekit.anomaly.cli) is not in this build yet")
    root = tmp_path_factory.mktemp("detector")
    normal = root / "normal"
    normal.mkdir()
    rng = np.random.default_rng(1)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(normal / f"{i}.png")
    run = root / "run"
    assert main(["anomaly", "fit", "--normal-dir", str(normal), "--epochs", "1", "--models", "1",
                 "--latent-dim", "4", "--batch-size", "8", "--threads", "1", "--quiet",
                 "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("bad", [False, True], ids=["all-good", "some-corrupt"])
def test_anomaly_score_partial_batch(detector, tmp_path, capsys, bad):
    src, good, names = _folder(tmp_path, 12, bad)
    out = tmp_path / "out"
    out.mkdir()
    capsys.readouterr()
    # --resize: without it an image of another size is skipped as not the detector's size, and
    # bomb.png's header claims 9000x9000 (it must be skipped as unreadable).
    code = main(["anomaly", "score", str(detector), str(src), "-o", str(out / "scores.csv"),
                 "--heatmaps", str(out / "heat"), "--resize"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and code == (1 if bad else 0), err
    for name in names:
        assert sum(name in ln and ln.startswith("aekit: skipped ") for ln in err.splitlines()) == 1
    rows = (out / "scores.csv").read_text().splitlines()[1:]
    assert sorted(Path(r.split(",")[0]).name for r in rows) == sorted(good)
    assert sorted(p.stem for p in (out / "heat").iterdir()) == sorted(Path(g).stem for g in good)

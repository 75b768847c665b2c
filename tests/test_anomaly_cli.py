"""`aekit anomaly fit | score` through cli.main: CSV output, heat maps, partial batches, exit 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import make_blobs
from PIL import Image
from test_anomaly import make_bars

from aekit.cli import main

FAST = ["--latent-dim", "8", "--widths", "8,16", "--epochs", "3", "--batch-size", "32",
        "--precision", "fp32", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """npz dataset: class 0 = blobs (normal), class 1 = bars; 12x12 grey."""
    d = tmp_path_factory.mktemp("anom")
    x_train = np.concatenate([make_blobs(200, seed=0), make_bars(40, seed=2)])
    y_train = np.r_[np.zeros(200), np.ones(40)].astype(np.int64)
    x_test = np.concatenate([make_blobs(40, seed=5), make_bars(40, seed=6)])
    y_test = np.r_[np.zeros(40), np.ones(40)].astype(np.int64)
    np.savez(d / "ab.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return d, f"npz:{d / 'ab.npz'}"


@pytest.fixture(scope="module")
def run(data):
    d, ds = data
    out = d / "det"
    assert main(["anomaly", "fit", "--dataset", ds, "--normal-class", "0", "--fpr", "0.1",
                 "--out", str(out), *FAST]) == 0
    return out


def test_fit_writes_a_run_folder(run):
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "detector.json",
            "detector.safetensors", "history.csv", "reconstructions.png", "loss.png"} <= names
    m = json.loads((run / "metrics.json").read_text())
    assert {"model", "dataset", "latent_dim", "epochs", "train_seconds", "test",
            "baselines", "history", "anomaly"} <= set(m)
    assert m["anomaly"]["test_auroc"] > 0.9
    det = json.loads((run / "detector.json").read_text())
    assert det["threshold"] == m["anomaly"]["threshold"] and det["fpr_target"] == 0.1
    assert json.loads((run / "config.json").read_text())["anomaly"]["normal_class"] == 0


def test_score_dataset_writes_csv(run, data, tmp_path, capsys):
    _, ds = data
    out = tmp_path / "scores.csv"
    assert main(["anomaly", "score", str(run), "--dataset", ds, "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 80 and set(rows[0]) == {"index", "score", "flagged", "label"}
    flagged = np.array([int(r["flagged"]) for r in rows])
    labels = np.array([int(r["label"]) for r in rows])
    assert flagged[labels == 1].mean() > 0.8 and flagged[labels == 0].mean() < 0.3
    assert "AUROC" in capsys.readouterr().out


def test_score_files_with_heatmaps_and_a_corrupt_file(run, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for i, img in enumerate(np.concatenate([make_blobs(2, seed=8), make_bars(2, seed=9)])):
        Image.fromarray(img[0]).save(src / f"im{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    out, heat = tmp_path / "s.csv", tmp_path / "heat"
    code = main(["anomaly", "score", str(run), str(src), "-o", str(out), "--heatmaps", str(heat)])
    assert code == 1  # every good image scored, the broken one listed
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err
    rows = list(csv.DictReader(out.open()))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == [f"im{i}.png" for i in range(4)]
    scores = [float(r["score"]) for r in rows]
    assert max(scores[:2]) < min(scores[2:])  # bars score higher than blobs
    maps = sorted(p.name for p in heat.iterdir())
    assert maps == [f"im{i}.png" for i in range(4)]
    im = Image.open(heat / "im3.png")
    assert im.size == (12, 12) and im.mode == "RGB"


def test_score_threshold_override_and_stdout(run, tmp_path, capsys):
    img = tmp_path / "one.png"
    Image.fromarray(make_blobs(1, seed=3)[0, 0]).save(img)
    assert main(["anomaly", "score", str(run), str(img), "--threshold=-1e9"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "path,score,flagged" and out[1].endswith(",1")


def test_fit_from_a_normal_dir(tmp_path, capsys):
    d = tmp_path / "normal"
    d.mkdir()
    for i, img in enumerate(make_blobs(40)):
        Image.fromarray(img[0]).save(d / f"{i}.png")
    out = tmp_path / "det"
    assert main(["anomaly", "fit", "--normal-dir", str(d), "--out", str(out), *FAST,
                 "--epochs", "1", "--score", "mse+knn+pca", "--latent-restore", "same"]) == 0
    state = json.loads((out / "detector.json").read_text())
    assert state["params"]["latent_restore"] is None and state["latent_members"] == 0
    assert set(state["components"]) == {"mse", "knn", "pca"}
    # 4 held-out images set the threshold: said in one warning line, and in metrics.json
    assert json.loads((out / "metrics.json").read_text())["anomaly"]["heldout_images"] == 4
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "only 4 held-out normal images" in warnings[0]
    assert "--threshold T" in warnings[0]


def test_fit_on_patches_of_normal_images_of_mixed_sizes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    d = tmp_path / "normal"
    d.mkdir()
    for i in range(12):  # smooth grey images, each its own size
        h, w = 16 + 2 * i, 30 - i
        yy, xx = np.mgrid[0:h, 0:w]
        a = 128 + 60 * np.sin((yy + xx + i) / 3.0) + rng.normal(0, 3, (h, w))
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(d / f"{i}.png")
    out = tmp_path / "det"
    assert main(["anomaly", "fit", "--normal-dir", str(d), "--patch", "8", "--out", str(out),
                 *FAST, "--epochs", "1", "--score", "mse+pca"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["patch"] == 8 and cfg["model"]["height"] == 8
    capsys.readouterr()
    # a whole image, larger than the patches, is scored through tiles
    assert main(["anomaly", "score", str(out), str(d / "11.png"), "-o",
                 str(tmp_path / "s.csv")]) == 0
    assert "processed in overlapping tiles" in capsys.readouterr().err
    # not both ways of making sizes agree: one line, exit 2, nothing written
    assert main(["anomaly", "fit", "--normal-dir", str(d), "--patch", "8", "--image-size", "8x8",
                 "--out", str(tmp_path / "x"), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--patch and --image-size" in err[0]
    assert not (tmp_path / "x" / "config.json").exists()


def test_fit_lists_unreadable_files_exits_1_and_keeps_the_run(tmp_path, capsys):
    """The batch rule: every readable file is used, each unreadable one listed, exit 1 with the
    detector saved; nothing readable: exit 2. Without --quiet on a pipe: plain lines, no bar."""
    d = tmp_path / "normal"
    d.mkdir()
    for i, img in enumerate(make_blobs(40)):
        Image.fromarray(img[0]).save(d / f"{i}.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    (d / "empty.jpg").write_bytes(b"")
    out = tmp_path / "det"
    fast = [a for a in FAST if a != "--quiet"]
    assert main(["anomaly", "fit", "--normal-dir", str(d), "--out", str(out), *fast,
                 "--epochs", "2", "--score", "mse"]) == 1
    captured = capsys.readouterr()
    skipped = [ln for ln in captured.err.splitlines() if ln.startswith("aekit: skipped ")]
    assert len(skipped) == 2 and any("broken.png" in ln for ln in skipped)
    assert any("empty.jpg" in ln for ln in skipped)
    assert "epoch   2/2" in captured.err and "\r" not in captured.err
    assert "run folder:" in captured.out and (out / "detector.json").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    assert main(["anomaly", "fit", "--normal-dir", str(bad), "--out", str(tmp_path / "x"),
                 *FAST]) == 2
    assert "broken.png" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_score_other_sizes_listed_tiled_or_resized(run, tmp_path, capsys):
    """The one mismatch rule: a smaller file or one of another channel count is listed with the
    flag that takes it and the rest scored (exit 1); a larger one is scored in tiles, with its
    heat map at its own size, said once; with --resize all are resized and that said once."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i, img in enumerate(make_blobs(2, seed=8)):
        Image.fromarray(img[0]).save(src / f"im{i}.png")
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(src / "big.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(src / "small.png")
    _rgb(src / "rgb.png")
    heat = tmp_path / "heat"
    assert main(["anomaly", "score", str(run), str(src), "-o", str(tmp_path / "a.csv"),
                 "--heatmaps", str(heat)]) == 1
    err = capsys.readouterr().err
    assert "small.png: image is 1x8x8 but the detector in" in err and "--resize" in err
    assert "rgb.png: image is 3x12x12" in err and "big.png:" not in err
    assert err.count("aekit: 1 image(s) larger than 12x12 processed in overlapping tiles") == 1
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["big.png", "im0.png", "im1.png"]
    with Image.open(heat / "big.png") as im:
        assert im.size == (20, 16)
    assert main(["anomaly", "score", str(run), str(src), "--resize", "-o",
                 str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("aekit: 3 image(s) converted/resized to 1x12x12") == 1
    assert "tiles" not in err
    assert len(list(csv.DictReader((tmp_path / "b.csv").open()))) == 5


def _rgb(path, size=12):
    Image.fromarray(np.zeros((size, size, 3), np.uint8) + 90).save(path)
    return str(path)


@pytest.mark.parametrize("argv_tail, needle", [
    (["--normal-class", "7"], "does not exist"),
    (["--normal-class", "zebra"], "does not exist"),
    (["--normal-class", "2"], "does not exist"),
])
def test_fit_bad_class_exits_2(data, tmp_path, capsys, argv_tail, needle):
    _, ds = data
    code = main(["anomaly", "fit", "--dataset", ds, "--out", str(tmp_path / "x"), *FAST,
                 *argv_tail])
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_fit_empty_normal_class_exits_2(tmp_path, capsys):
    x = make_blobs(20)
    np.savez(tmp_path / "e.npz", x_train=x, y_train=np.zeros(20, np.int64), x_test=x,
             y_test=np.r_[np.zeros(10), np.ones(10)].astype(np.int64))
    # class 1 exists (in the test labels) but has no training image
    code = main(["anomaly", "fit", "--dataset", f"npz:{tmp_path / 'e.npz'}", "--normal-class",
                 "1", "--out", str(tmp_path / "x"), *FAST])
    assert code == 2
    assert "empty" in capsys.readouterr().err


def test_score_bad_inputs_exit_2(run, data, tmp_path, capsys):
    plain = tmp_path / "plain"
    _, ds = data
    assert main(["train", "--dataset", ds, "--latent-dim", "4", "--epochs", "1",
                 "--batch-size", "32", "--out", str(plain), "--quiet"]) == 0
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(big)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(small)
    cases = [
        (["anomaly", "score", str(plain), str(big)], "not an anomaly detector"),
        (["anomaly", "score", str(run), str(small)], "8x8"),
        (["anomaly", "score", str(run), _rgb(tmp_path / "c.png")], "is 3x12x12"),
        (["anomaly", "score", str(run), "--dataset", "digits"], "expects"),
        (["anomaly", "score", str(run)], "one of them"),
        (["anomaly", "score", str(tmp_path / "nowhere"), str(big)], "not a run folder"),
    ]
    for argv, needle in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
    assert main(["anomaly", "score", str(run), str(big), "--resize", "-o",
                 str(tmp_path / "r.csv")]) == 0

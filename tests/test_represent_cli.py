"""embed / finetune / classify / sample / interpolate / traverse through `cli.main`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main
from tests.conftest import make_blobs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A labelled npz (4 classes, 96 train / 32 test 12x12), an unlabelled one, and two PNGs."""
    root = tmp_path_factory.mktemp("data")
    x = make_blobs(128)
    np.savez(root / "lab.npz", x_train=x[:96], y_train=np.arange(96) % 4, x_test=x[96:],
             y_test=np.arange(32) % 4)
    np.savez(root / "unlab.npz", x_train=x[:96], x_test=x[96:])
    for i in range(2):
        Image.fromarray(x[i, 0]).save(root / f"im{i}.png")
    return root


def train(run, dataset, model, *extra):
    assert main(["train", "--model", model, "--dataset", dataset, "--latent-dim", "4",
                 "--widths", "8,16", "--epochs", "1", "--batch-size", "32", "--out", str(run),
                 "--quiet", *extra]) == 0
    return run


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    lab = f"npz:{data / 'lab.npz'}"
    return {"conv": train(root / "conv", lab, "conv"),
            "vae": train(root / "vae", lab, "vae", "--option", "iwae_k=4",
                         "--option", "iwae_images=8")}


def one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert needle in err, err
    assert "\n" not in err and "Traceback" not in err


def test_embed_dataset_and_files(runs, data, tmp_path, capsys):
    out = tmp_path / "Z.npy"
    assert main(["embed", str(runs["conv"]), "--dataset", f"npz:{data / 'lab.npz'}", "-o",
                 str(out), "--plot", str(tmp_path / "latent.png")]) == 0
    z, y = np.load(out), np.load(tmp_path / "Z_labels.npy")
    assert z.shape == (32, 4) and z.dtype == np.float32 and y.shape == (32,)
    assert Image.open(tmp_path / "latent.png").size[0] > 200
    assert main(["embed", str(runs["vae"]), str(data / "im0.png"), str(data / "im1.png"),
                 "-o", str(tmp_path / "f.npy"), "--keep", "2"]) == 0
    assert np.load(tmp_path / "f.npy").shape == (2, 2)
    assert (tmp_path / "f_paths.txt").read_text().count("\n") == 2


def test_finetune_then_classify(runs, data, tmp_path, capsys):
    clf = tmp_path / "clf"
    assert main(["finetune", str(runs["conv"]), "--labels", "8", "--steps", "3",
                 "--out", str(clf)]) == 0
    m = json.loads((clf / "metrics.json").read_text())
    assert m["labels"] == 8 and 0 <= m["test_accuracy"] <= 1
    capsys.readouterr()
    images = [str(data / "im0.png"), str(data / "im1.png")]
    assert main(["classify", str(clf), *images]) == 0  # the CSV on stdout
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "path,label,class,probability" and len(lines) == 3
    csv_path = tmp_path / "pred.csv"
    assert main(["classify", str(clf), *images, "-o", str(csv_path)]) == 0  # like every command
    assert csv_path.read_text().strip().splitlines() == lines
    assert capsys.readouterr().out.strip() == f"2 image(s) classified -> {csv_path}"
    old = tmp_path / "old.csv"  # the deprecated --csv still writes both, with a note
    assert main(["classify", str(clf), *images, "--csv", str(old)]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines() == lines == old.read_text().strip().splitlines()
    assert "--csv is deprecated" in err
    assert main(["classify", str(clf), "--dataset", f"npz:{data / 'lab.npz'}"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_finetune_semi_supervised(runs, tmp_path, capsys):
    clf = tmp_path / "clf"
    assert main(["finetune", str(runs["conv"]), "--labels", "8", "--steps", "3", "--semi",
                 "--rounds", "2", "--lp-k", "5", "--pseudo-batch", "16", "--out", str(clf)]) == 0
    info = json.loads((clf / "classifier.json").read_text())
    assert info["finetune"]["semi"] is True and info["finetune"]["rounds"] == 2
    assert [h["round"] for h in json.loads((clf / "metrics.json").read_text())["history"]] == [1, 2]
    capsys.readouterr()  # the successful run's progress lines
    assert main(["finetune", str(runs["conv"]), "--labels", "8", "--semi", "--rounds", "0",
                 "--out", str(tmp_path / "c2")]) == 2
    one_line_error(capsys, "rounds=")


def test_finetune_consistency(runs, tmp_path, capsys):
    clf = tmp_path / "clf"
    assert main(["finetune", str(runs["conv"]), "--labels", "8", "--steps", "3", "--semi",
                 "--consistency", "--threshold", "0.5", "--ema", "0.9", "--lp-k", "5",
                 "--pseudo-batch", "16", "--out", str(clf)]) == 0
    info = json.loads((clf / "classifier.json").read_text())
    assert info["finetune"]["consistency"] is True and info["finetune"]["ema"] == 0.9
    assert "confident" in json.loads((clf / "metrics.json").read_text())["history"][-1]
    capsys.readouterr()  # the successful run's progress lines
    assert main(["finetune", str(runs["conv"]), "--labels", "8", "--consistency",
                 "--threshold", "2", "--out", str(tmp_path / "c2")]) == 2
    one_line_error(capsys, "threshold=")


def test_vae_run_sample_interpolate_traverse(runs, data, tmp_path, capsys):
    m = json.loads((runs["vae"] / "metrics.json").read_text())
    assert m["model"] == "vae"
    assert main(["sample", str(runs["vae"]), "-n", "9", "-o", str(tmp_path / "g.png")]) == 0
    w, h = Image.open(tmp_path / "g.png").size
    assert w == h > 3 * 12  # a 3 x 3 grid
    assert main(["interpolate", str(runs["vae"]), str(data / "im0.png"), str(data / "im1.png"),
                 "--steps", "5", "-o", str(tmp_path / "s.png")]) == 0
    w, h = Image.open(tmp_path / "s.png").size
    assert w > 4 * h
    assert main(["traverse", str(runs["vae"]), "--steps", "4", "-o", str(tmp_path / "t.png")]) == 0
    assert main(["traverse", str(runs["vae"]), "--dims", "0,3", "--image",
                 str(data / "im0.png"), "-o", str(tmp_path / "t2.png")]) == 0


def test_interpolate_works_for_a_plain_autoencoder(runs, data, tmp_path):
    assert main(["interpolate", str(runs["conv"]), str(data / "im0.png"), str(data / "im1.png"),
                 "-o", str(tmp_path / "s.png")]) == 0


@pytest.mark.parametrize("argv, needle", [
    (["sample", "{conv}", "-o", "{tmp}/g.png"], "no prior to sample"),
    (["traverse", "{conv}", "-o", "{tmp}/t.png"], "no prior to traverse"),
    (["finetune", "{conv}", "--labels", "1000", "--out", "{tmp}/c"], "larger than"),
    (["finetune", "{conv}", "--labels", "10", "--out", "{tmp}/c"], "not divisible"),
    (["finetune", "{conv}", "--dataset", "npz:{data}/unlab.npz", "--labels", "8",
      "--out", "{tmp}/c"], "has no labels"),
    (["classify", "{conv}", "{data}/im0.png"], "not a classifier folder"),
    (["embed", "{conv}", "-o", "{tmp}/z.npy"], "either image files"),
    (["embed", "{conv}", "--dataset", "npz:{data}/lab.npz", "--keep", "9", "-o", "{tmp}/z.npy"],
     "--keep 9"),
    (["traverse", "{vae}", "--dims", "7", "-o", "{tmp}/t.png"], "latent units are 0..3"),
    (["interpolate", "{vae}", "{data}/im0.png", "{data}/nope.png", "-o", "{tmp}/s.png"],
     "nope.png"),
    (["sample", "{vae}", "-n", "0", "-o", "{tmp}/g.png"], "-n=0"),
])
def test_bad_input_exits_2_with_one_line(argv, needle, runs, data, tmp_path, capsys):
    fill = {"conv": runs["conv"], "vae": runs["vae"], "tmp": tmp_path, "data": data}
    assert main([a.format(**fill) for a in argv]) == 2
    one_line_error(capsys, needle)


def test_train_nested_and_beta_flags(data, tmp_path, capsys):
    lab = f"npz:{data / 'lab.npz'}"
    run = train(tmp_path / "v", lab, "vae", "--beta", "4", "--nested", "--nested-p", "0.2",
                "--option", "iwae_k=2", "--option", "iwae_images=4")
    opts = json.loads((run / "config.json").read_text())["model"]["options"]
    assert opts["beta"] == 4 and opts["nested"] is True and opts["nested_p"] == 0.2
    assert main(["eval", str(run), "--keep", "2"]) == 0
    capsys.readouterr()
    args = ["train", "--model", "conv", "--dataset", lab, "--epochs", "1", "--quiet"]
    assert main([*args, "--beta", "2", "--out", str(tmp_path / "c")]) == 2
    one_line_error(capsys, "beta")
    assert main([*args, "--nested-p", "0.1", "--option", "nested_p=0.3",
                 "--out", str(tmp_path / "d")]) == 2
    one_line_error(capsys, "disagree")


def test_embed_and_classify_use_every_readable_file_and_list_the_rest(runs, data, tmp_path,
                                                                      capsys):
    """One rule for batch inputs: process what can be read, list each unreadable file, exit 1;
    exit 2 only when nothing could be read."""
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.png").write_bytes(b"")
    files = [str(data / "im0.png"), str(tmp_path / "broken.png"), str(data / "im1.png"),
             str(tmp_path / "notes.png")]
    assert main(["embed", str(runs["conv"]), *files, "-o", str(tmp_path / "z.npy")]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "notes.png" in err and "Traceback" not in err
    assert np.load(tmp_path / "z.npy").shape[0] == 2
    clf = tmp_path / "clf"
    assert main(["finetune", str(runs["conv"]), "--labels", "8", "--steps", "2",
                 "--out", str(clf)]) == 0
    capsys.readouterr()
    assert main(["classify", str(clf), *files]) == 1
    out, err = capsys.readouterr()
    assert out.count("\n") == 3 and "broken.png" in err  # header + 2 rows
    assert main(["embed", str(runs["conv"]), str(tmp_path / "broken.png"),
                 "-o", str(tmp_path / "z2.npy")]) == 2
    one_line_error(capsys, "broken.png")

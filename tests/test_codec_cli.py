"""`aekit compress / decompress / codec-info` through main(argv): results and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_blobs
from PIL import Image
from test_codec import CFG, tiny_codec

from aekit.cli import main
from aekit.codec.io import unpack
from aekit.config import TrainConfig
from aekit.core.io import save_weights, write_config


def make_run(path: Path, seed: int = 0, cfg=CFG) -> str:
    model = tiny_codec(seed, cfg)
    write_config(path, model.cfg, TrainConfig(dataset="npz:unused"))
    save_weights(path, model)
    return str(path)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = make_run(tmp_path / "runs" / "codec1")
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for i, a in enumerate(make_blobs(4, size=12, seed=3)):
        Image.fromarray(a[0]).save(img_dir / f"im{i}.png")
    return tmp_path, run, img_dir


def one_error_line(capsys, match: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aekit: error:") and match in err[0], err
    assert "Traceback" not in err[0]


def test_compress_decompress_info(setup, capsys) -> None:
    tmp, run, imgs = setup
    assert main(["compress", run, str(imgs), "-o", "out.aez"]) == 0
    f = unpack((tmp / "out.aez").read_bytes())
    assert f.count == 4 and f.shapes == ((1, 12, 12),) * 4
    assert main(["codec-info", "out.aez", "--run", run]) == 0
    assert "images            4 of 1x12x12 (C x H x W)" in capsys.readouterr().out
    assert main(["decompress", "out.aez", "-o", "dec", "--run", run]) == 0
    pngs = sorted((tmp / "dec").glob("*.png"))
    assert [p.name for p in pngs] == [f"out-{i}.png" for i in range(4)]
    original = np.asarray(Image.open(imgs / "im0.png"), dtype=float)
    decoded = np.asarray(Image.open(pngs[0]), dtype=float)
    assert decoded.shape == (12, 12) and np.mean((decoded - original) ** 2) < 0.01 * 255**2
    # without --run, the run is found under ./runs by its fingerprint
    assert main(["decompress", "out.aez", "-o", "dec2"]) == 0
    assert (tmp / "dec2" / "out-0.png").read_bytes() == pngs[0].read_bytes()


def test_compress_each_and_dataset(setup, tiny_npz) -> None:
    tmp, run, imgs = setup
    assert main(["compress", run, str(imgs), "-o", "each", "--each"]) == 0
    files = sorted((tmp / "each").glob("*.aez"))
    assert [p.stem for p in files] == ["im0", "im1", "im2", "im3"]
    assert main(["decompress", str(files[1]), "-o", "one", "--run", run]) == 0
    assert (tmp / "one" / "im1.png").exists()
    assert main(["compress", run, "--dataset", tiny_npz, "--limit", "5", "-o", "ds.aez"]) == 0
    assert unpack((tmp / "ds.aez").read_bytes()).count == 5


def test_bad_inputs_one_line_exit_2_nothing_written(setup, capsys) -> None:
    tmp, run, imgs = setup
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp / "small.png")
    assert main(["compress", run, str(tmp / "small.png"), "-o", "x.aez"]) == 2
    one_error_line(capsys, "small.png: image is 3x10x12 but the codec takes 1-channel images; "
                           "pass --resize")
    assert not (tmp / "x.aez").exists()
    (tmp / "junk.png").write_bytes(b"not a png")
    assert main(["compress", run, str(tmp / "junk.png"), "-o", "x.aez"]) == 2
    one_error_line(capsys, "junk.png")

    assert main(["compress", run, str(imgs), "-o", "good.aez"]) == 0
    data = (tmp / "good.aez").read_bytes()
    cases = {
        "trunc.aez": (data[:-9], "truncated"),
        "flip.aez": (data[:20] + bytes([data[20] ^ 4]) + data[21:], "CRC"),
        "magic.aez": (b"GIF8" + data[4:], "magic"),
        "version.aez": (data[:3] + b"\x09" + data[4:], "version 9"),
    }
    for name, (blob, match) in cases.items():
        (tmp / name).write_bytes(blob)
        assert main(["decompress", name, "-o", f"out_{name}", "--run", run]) == 2
        one_error_line(capsys, match)
        assert not (tmp / f"out_{name}").exists()
    other = make_run(tmp / "other", seed=1)
    assert main(["decompress", "good.aez", "-o", "o2", "--run", other]) == 2
    one_error_line(capsys, "different model")
    assert main(["decompress", "missing.aez", "-o", "o3", "--run", run]) == 2
    one_error_line(capsys, "no such file")
    assert main(["codec-info", "flip.aez"]) == 2
    one_error_line(capsys, "CRC")


def test_run_without_codec_or_match(setup, capsys) -> None:
    tmp, run, imgs = setup
    assert main(["compress", run, "-o", "x.aez"]) == 2
    one_error_line(capsys, "--dataset")
    assert main(["compress", str(tmp / "nope"), str(imgs), "-o", "x.aez"]) == 2
    one_error_line(capsys, "not a run folder")
    assert main(["compress", run, str(imgs), "-o", "good.aez"]) == 0
    (tmp / "runs" / "codec1" / "config.json").unlink()  # the only run is gone
    assert main(["decompress", "good.aez", "-o", "d"]) == 2
    one_error_line(capsys, "no codec run with fingerprint")


def test_compress_any_size_resize_converts_channels_and_says_so_once(setup, capsys) -> None:
    tmp, run, imgs = setup
    wide = np.concatenate(list(make_blobs(3, size=12, seed=9)[:, 0]), axis=1)[:10, :31]
    Image.fromarray(wide).save(imgs / "small.png")  # 3 blocks across, cut inside a block
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(imgs / "rgb.png")
    assert main(["compress", run, str(imgs), "--resize", "-o", "x.aez"]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == "aekit: 1 image(s) converted to 1 channel(s)"
    assert out.startswith("6 image(s) -> x.aez")
    assert main(["codec-info", "x.aez"]) == 0
    assert "6 of 1x12x12, 1x10x31 (C x H x W)" in capsys.readouterr().out
    assert main(["decompress", "x.aez", "-o", "dec", "--run", run]) == 0
    small = np.asarray(Image.open(tmp / "dec" / "x-5.png"))  # sorted: im0..im3, rgb, small
    assert small.shape == (10, 31) and np.mean((small - wide.astype(float)) ** 2) < 0.01 * 255**2


def test_compress_quality_and_targets(setup, capsys) -> None:
    tmp, run, imgs = setup
    sizes = {}
    for q in ("-8", "0", "8"):
        assert main(["compress", run, str(imgs), "--quality", q, "-o", f"q{q}.aez"]) == 0
        sizes[q] = (tmp / f"q{q}.aez").stat().st_size
    # (a step other than 0 costs ~2 bytes per image: on 12x12 images a coarser step saves
    # less than that; it pays on photos)
    assert sizes["-8"] < sizes["8"] and sizes["0"] < sizes["8"]
    assert main(["compress", run, str(imgs), "--target-psnr", "30", "-o", "t.aez"]) == 0
    assert main(["decompress", "t.aez", "-o", "dt", "--run", run]) == 0
    for i in range(4):
        a = np.asarray(Image.open(imgs / f"im{i}.png"), dtype=float)
        b = np.asarray(Image.open(tmp / "dt" / f"t-{i}.png"), dtype=float)
        assert 10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-9)) >= 30
    capsys.readouterr()
    assert main(["compress", run, str(imgs), "--quality", "99", "-o", "bad.aez"]) == 2
    one_error_line(capsys, "quality")
    assert not (tmp / "bad.aez").exists()


def test_compress_skips_bad_files_keeps_good_in_order(setup, capsys) -> None:
    tmp, run, imgs = setup
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(imgs / "im1b_rgb.png")
    (imgs / "im2b_junk.png").write_bytes(b"not a png")
    assert main(["compress", run, str(imgs), "-o", "x.aez"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("aekit: skipped ") and "im1b_rgb.png" in err[0]
    assert "takes 1-channel images" in err[0] and "im2b_junk.png" in err[1]
    assert err[2] == "aekit: 4 file(s) done, 2 skipped"
    assert main(["compress", run, str(imgs / "im2.png"), "-o", "two.aez"]) == 0
    assert main(["decompress", "x.aez", "-o", "dec", "--run", run]) == 0
    assert main(["decompress", "two.aez", "-o", "dec2", "--run", run]) == 0
    # the good images in sorted path order: im0, im1, im2, im3 (the bad ones left out)
    assert (tmp / "dec" / "x-2.png").read_bytes() == (tmp / "dec2" / "two.png").read_bytes()
    (imgs / "im0.png").unlink(), (imgs / "im1.png").unlink()
    (imgs / "im2.png").unlink(), (imgs / "im3.png").unlink()
    assert main(["compress", run, str(imgs), "-o", "none.aez"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "none of the 2 image(s)" in err[-1] and err[-1].startswith("aekit: ")
    assert not (tmp / "none.aez").exists()


def test_train_codec_starts_from_the_closed_form_mixture(tmp_path: Path) -> None:
    """`aekit train --model codec` runs init_from_data (k-means + per-cluster PCA) on a new run,
    so after one epoch the cluster means are still close to the k-means centres."""
    import torch

    from aekit.codec.mixture import fit_mixture
    from aekit.core.io import load_model

    x = make_blobs(64, size=12, seed=5)
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x[:8])
    run = tmp_path / "run"
    assert main(["train", "--model", "codec", "--dataset", f"npz:{tmp_path / 'd.npz'}",
                 "--latent-dim", "24", "--option", "clusters=2", "--val-fraction", "0",
                 "--epochs", "1", "--batch-size", "16", "--quiet", "--out", str(run)]) == 0
    model, cfg = load_model(run)
    assert cfg.model_cfg.options["lambda"] == 0.002  # the model's default, stored
    centres = fit_mixture(torch.from_numpy(x), 2, 24, seed=0).means.float()
    assert torch.allclose(model.mean.detach(), centres, atol=0.02)


def test_resume_before_first_checkpoint_runs_the_start_and_export_refuses(tmp_path: Path,
                                                                           capsys,
                                                                           monkeypatch) -> None:
    """A codec run stopped before its first checkpoint restarts with the closed-form start
    (not from the pixel basis); train_seconds counts the start; export names the part."""
    import shutil
    import time

    import torch

    from aekit.codec.mixture import fit_mixture
    from aekit.codec.model import CodecAE
    from aekit.core.io import load_model
    from aekit.io import read_json

    start = CodecAE.init_from_data

    def slow_start(self, *args, **kwargs):  # a start of >= 2 s must show in train_seconds
        time.sleep(2.0)
        return start(self, *args, **kwargs)

    monkeypatch.setattr(CodecAE, "init_from_data", slow_start)
    x = make_blobs(64, size=12, seed=5)
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x[:8])
    run = tmp_path / "run"
    argv = ["train", "--model", "codec", "--dataset", f"npz:{tmp_path / 'd.npz'}",
            "--latent-dim", "24", "--option", "clusters=2", "--val-fraction", "0",
            "--epochs", "1", "--batch-size", "16", "--quiet", "--out", str(run)]
    assert main(argv) == 0
    metrics = read_json(run / "metrics.json")
    assert metrics["train_seconds"] >= 2.0 and metrics["baselines"] == {}  # no PCA "at code size"
    # as if stopped during epoch 1: the config is written, no checkpoint, no weights
    for p in run.iterdir():
        if p.name != "config.json":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    model, _ = load_model(run)
    centres = fit_mixture(torch.from_numpy(x), 2, 24, seed=0).means.float()
    assert torch.allclose(model.mean.detach(), centres, atol=0.02)
    capsys.readouterr()
    for part in ("encoder", "decoder", "model"):
        assert main(["export", str(run), "--part", part, "-o", str(tmp_path / "c.onnx")]) == 2
        one_error_line(capsys, f"codec --part {part}: cannot be exported")
        assert not (tmp_path / "c.onnx").exists()

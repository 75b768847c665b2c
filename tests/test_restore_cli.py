"""`aekit train --corrupt`, `aekit denoise | inpaint | colorize` through cli.main on tiny runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main
from tests.conftest import make_blobs


def _train(out, dataset, corrupt, *extra):
    argv = ["train", "--model", "unet", "--widths", "4,8", "--dataset", dataset, "--epochs", "1",
            "--batch-size", "16", "--corrupt", corrupt, "--out", str(out), "--quiet", *extra]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    """A unet trained (1 epoch) to undo gaussian noise + random blocks on 12x12 grey blobs."""
    d = tmp_path_factory.mktemp("grey")
    x = make_blobs(96)
    np.savez(d / "tiny.npz", x_train=x[:64], x_test=x[64:])
    return _train(d / "run", f"npz:{d / 'tiny.npz'}", "gaussian:0.3+mask:blocks:1:4")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("plain")
    np.savez(d / "tiny.npz", x_train=make_blobs(40))
    out = d / "run"
    assert main(["train", "--model", "conv", "--dataset", f"npz:{d / 'tiny.npz'}", "--epochs", "1",
                 "--batch-size", "16", "--latent-dim", "4", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A unet trained to colorize a tiny RGB folder (16x16 tinted blobs), via folder:DIR."""
    d = tmp_path_factory.mktemp("rgb")
    blobs = make_blobs(48, size=16)[:, 0]  # (N, H, W)
    tints = np.array([[1.0, 0.3, 0.2], [0.2, 0.5, 1.0], [0.3, 1.0, 0.3]])
    for i, b in enumerate(blobs):
        rgb = (b[..., None] * tints[i % 3]).astype(np.uint8)  # (H, W, 3)
        Image.fromarray(rgb).save(d / f"img{i:02d}.png")
    return _train(d / "run", f"folder:{d}", "grayscale")


def _save(path, a):
    Image.fromarray(a).save(path)
    return path


def _images(tmp_path, n=3, size=12):
    src = tmp_path / "imgs"
    src.mkdir()
    for i, b in enumerate(make_blobs(n, size=size, seed=5)[:, 0]):
        _save(src / f"im{i}.png", b)
    return src


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("aekit: error:") and needle in err, err
    assert "Traceback" not in err


def test_train_with_corrupt_reports_output_and_corrupted_input(grey_run):
    m = json.loads((grey_run / "metrics.json").read_text())
    assert m["corrupt"] == "gaussian:0.3+mask:blocks:1:4"
    assert set(m["corrupted_input"]) == {"mse", "psnr", "ssim"}
    assert m["model"] == "unet"


def test_denoise_writes_pngs_and_tiles_other_sizes(grey_run, tmp_path, capsys):
    src = _images(tmp_path)
    _save(src / "big.png", np.tile(make_blobs(1, size=12)[0, 0], (2, 3)))  # 24x36
    out = tmp_path / "o"
    assert main(["denoise", str(grey_run), str(src), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["big.png", "im0.png", "im1.png", "im2.png"]
    assert Image.open(out / "big.png").size == (36, 24)  # tiled: same resolution as the input
    captured = capsys.readouterr()
    assert "1 image(s) are not 12x12" in captured.err and "tiles" in captured.err
    assert main(["denoise", str(grey_run), str(src / "big.png"), "--fit", "resize",
                 "-o", str(tmp_path / "o2")]) == 0
    assert "resized to 12x12 and back" in capsys.readouterr().err
    assert Image.open(tmp_path / "o2" / "big.png").size == (36, 24)


def test_other_channel_count_is_skipped_or_converted_with_resize(grey_run, tmp_path, capsys):
    """The one rule: a colour file for a grey model is listed with the flag that takes it (the
    others are processed, exit 1); with --resize it is converted, said once."""
    src = _images(tmp_path, n=2)
    _save(src / "rgb.png", np.full((20, 20, 3), [200, 10, 10], np.uint8))
    assert main(["denoise", str(grey_run), str(src), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "rgb.png: image is 3x20x20 but the model in" in err and "pass --resize" in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["im0.png", "im1.png"]
    assert main(["denoise", str(grey_run), str(src), "--resize", "-o", str(tmp_path / "o2")]) == 0
    err = capsys.readouterr().err
    assert err.count("aekit: 1 image(s) converted to 1 channel(s)") == 1 and "skipped" not in err
    assert Image.open(tmp_path / "o2" / "rgb.png").size == (20, 20)  # its own size (tiled)


def test_inpaint_keeps_known_pixels_exactly(grey_run, tmp_path):
    src = _images(tmp_path)
    mask = np.zeros((12, 12), np.uint8)
    mask[3:8, 2:9] = 255
    _save(tmp_path / "mask.png", mask)
    out = tmp_path / "o"
    assert main(["inpaint", str(grey_run), str(src), "--mask", str(tmp_path / "mask.png"),
                 "-o", str(out)]) == 0
    for i in range(3):
        before = np.asarray(Image.open(src / f"im{i}.png"))
        after = np.asarray(Image.open(out / f"im{i}.png"))
        assert np.array_equal(before[mask == 0], after[mask == 0])


def test_inpaint_mask_spec_saves_the_masks(grey_run, tmp_path):
    src = _images(tmp_path, n=2)
    out = tmp_path / "o"
    assert main(["inpaint", str(grey_run), str(src), "--mask-spec", "mask:crosshair",
                 "--seed", "3", "-o", str(out)]) == 0
    masks = sorted((out / "masks").iterdir())
    assert [p.name for p in masks] == ["im0.png", "im1.png"]
    m = np.asarray(Image.open(masks[0]))
    assert set(np.unique(m)) == {0, 255}
    before, after = np.asarray(Image.open(src / "im0.png")), np.asarray(Image.open(out / "im0.png"))
    assert np.array_equal(before[m == 0], after[m == 0])
    # The saved masks reproduce the result through --mask.
    assert main(["inpaint", str(grey_run), str(src), "--mask", str(out / "masks"),
                 "-o", str(tmp_path / "o2")]) == 0
    assert np.array_equal(after, np.asarray(Image.open(tmp_path / "o2" / "im0.png")))


def test_colorize_grey_images_keeps_their_luma(colour_run, tmp_path):
    src = _images(tmp_path, size=16)
    out = tmp_path / "o"
    assert main(["colorize", str(colour_run), str(src), "-o", str(out)]) == 0
    grey = np.asarray(Image.open(src / "im0.png")).astype(float)
    rgb = Image.open(out / "im0.png")
    assert rgb.mode == "RGB" and rgb.size == (16, 16)
    luma = np.asarray(rgb.convert("L")).astype(float)
    assert np.abs(luma - grey).max() <= 2  # luma kept (up to rounding and clipping)


def test_bad_image_file_is_skipped_with_exit_1(grey_run, tmp_path, capsys):
    src = _images(tmp_path, n=2)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    assert main(["denoise", str(grey_run), str(src), "-o", str(tmp_path / "o")]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert len(list((tmp_path / "o").iterdir())) == 2


def test_bad_inputs_exit_2_with_one_line(grey_run, plain_run, colour_run, tmp_path, capsys):
    src = _images(tmp_path, n=2)
    rgb = _save(tmp_path / "rgb.png", np.full((12, 12, 3), [200, 10, 10], np.uint8))
    half = np.zeros((12, 12), np.uint8)
    half[:6] = 255
    grey_mask = half.copy()
    grey_mask[0, 0] = 128
    cases = [
        (["denoise", str(grey_run), str(rgb)], "is 3x12x12 but the model in"),
        (["denoise", str(plain_run), str(src)], "not a restoration model"),
        (["colorize", str(grey_run), str(src)], "not to colorize"),
        (["inpaint", str(colour_run), str(src), "--mask-spec", "mask:blocks"], "not to inpaint"),
        (["inpaint", str(grey_run), str(src), "--mask",
          str(_save(tmp_path / "g.png", grey_mask))], "not binary"),
        (["inpaint", str(grey_run), str(src), "--mask",
          str(_save(tmp_path / "s.png", half[:10]))], "must match"),
        (["inpaint", str(grey_run), str(src), "--mask", str(tmp_path / "g.png"),
          str(tmp_path / "s.png"), str(tmp_path / "s.png")], "3 masks for 2 images"),
        (["inpaint", str(grey_run), str(src), "--mask-spec", "gaussian:0.1"], "mask operations"),
        (["inpaint", str(grey_run), str(src), "--mask-spec", "mask:blok"], "did you mean"),
        (["denoise", str(tmp_path / "nope"), str(src)], "not a run folder"),
    ]
    for argv, needle in cases:
        assert main([*argv, "-o", str(tmp_path / "never")]) == 2, argv
        _one_line_error(capsys, needle)
    assert not (tmp_path / "never").exists()  # nothing is written when the input is wrong
    assert main(["train", "--model", "unet", "--dataset", "digits", "--corrupt", "gaussian:x",
                 "--quiet", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "not a number")

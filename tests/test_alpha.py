"""Transparency survives the commands that write images: the models see colour only, and the
input's alpha channel is put back on the output at the output's size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main
from aekit.data.files import ModelInputs
from aekit.data.images import load_with_alpha, save_png
from tests.reliability.seeds import untrained_run

SIZE = 12


def _rgba(path, size=SIZE, opaque=False):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
    a[..., 3] = 255
    if not opaque:
        a[: size // 2, :, 3] = 0  # the top half transparent
        a[size // 2 :, : size // 3, 3] = 128
    Image.fromarray(a, "RGBA").save(path)
    return a[..., 3]


def test_load_with_alpha_and_save_png_round_trip(tmp_path):
    alpha = _rgba(tmp_path / "in.png")
    rgb, got = load_with_alpha(tmp_path / "in.png", "RGB")
    assert rgb.shape == (SIZE, SIZE, 3) and np.array_equal(got, alpha)
    save_png(tmp_path / "out.png", rgb.transpose(2, 0, 1) / 255.0, got)
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[..., 3], alpha)
        assert np.array_equal(np.asarray(im)[..., :3], rgb)
    _rgba(tmp_path / "opaque.png", opaque=True)
    assert load_with_alpha(tmp_path / "opaque.png", "RGB")[1] is None  # nothing to keep
    la = Image.fromarray(alpha, "L").convert("LA")
    la.putalpha(Image.fromarray(alpha, "L"))
    la.save(tmp_path / "la.png")
    grey, got = load_with_alpha(tmp_path / "la.png", "L", (6, 6))
    assert grey.shape == (6, 6) and got.shape == (6, 6)  # resized with the image


@pytest.mark.parametrize("command", ["reconstruct", "denoise"])
def test_commands_keep_the_inputs_transparency(tmp_path, command):
    run = untrained_run(tmp_path / "run", "dense", size=SIZE, in_channels=3,
                        corrupt="gaussian:0.1" if command == "denoise" else "")
    src = tmp_path / "in"
    src.mkdir()
    alpha = _rgba(src / "a.png")
    _rgba(src / "b.png", opaque=True)
    big = _rgba(src / "big.png", size=2 * SIZE + 3)  # through tiles, at its own size
    out = tmp_path / "out"
    assert main([command, str(run), str(src), "-o", str(out), "--threads", "1"]) == 0
    for name, expected in (("a.png", alpha), ("big.png", big)):
        with Image.open(out / name) as im:
            assert im.mode == "RGBA", name
            assert np.array_equal(np.asarray(im)[..., 3], expected), name
    with Image.open(out / "b.png") as im:
        assert im.mode == "RGB"


def test_resized_output_gets_resized_alpha(tmp_path):
    run = untrained_run(tmp_path / "run", "dense", size=SIZE, in_channels=3)
    src = tmp_path / "in"
    src.mkdir()
    _rgba(src / "big.png", size=2 * SIZE)
    out = tmp_path / "out"
    assert main(["reconstruct", str(run), str(src), "-o", str(out), "--resize",
                 "--threads", "1"]) == 0
    with Image.open(out / "big.png") as im:
        assert im.mode == "RGBA" and im.size == (SIZE, SIZE)
        a = np.asarray(im)[..., 3]
        assert a[: SIZE // 2 - 1].max() == 0 and a[-1, -1] == 255


def test_only_commands_that_write_images_keep_alphas(tmp_path):
    # Scoring or embedding a folder of transparent images must not hold every alpha channel.
    alpha = _rgba(tmp_path / "a.png")
    for keep in (False, True):
        inputs = ModelInputs([tmp_path], (3, SIZE, SIZE), keep_alpha=keep)
        assert [names for _, names in inputs.batches()] == [[str(tmp_path / "a.png")]]
        got = inputs.take_alpha(tmp_path / "a.png")
        assert (got is None) if not keep else np.array_equal(got, alpha)
        assert inputs.take_alpha(tmp_path / "a.png") is None  # handed over once

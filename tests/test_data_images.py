"""Reading user images (skipping bad ones), PNG and grid writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.data.images import probe_image, read_image, read_images, save_grid, save_png
from aekit.errors import ConfigError, DataError


def _png(path, size=(5, 4), mode="L", seed=0):
    rng = np.random.default_rng(seed)
    shape = size if mode == "L" else (*size, 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(a, mode).save(path)
    return a


def test_read_images_skips_bad_files(tmp_path):
    a = _png(tmp_path / "a.png")
    _png(tmp_path / "b.png", mode="RGB", seed=1)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    _png(tmp_path / "big.png", size=(9, 9))
    paths = [tmp_path / n for n in ("a.png", "bad.png", "b.png", "missing.png", "big.png")]
    x, good, bad = read_images(paths, channels=1)
    assert x.shape == (2, 1, 5, 4) and x.dtype == torch.float32
    assert good == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert [p for p, _ in bad] == [str(paths[1]), str(paths[3]), str(paths[4])]
    assert torch.allclose(x[0, 0], torch.from_numpy(a).float() / 255)
    x3, good3, bad3 = read_images(paths, channels=3, size=(8, 8))
    assert x3.shape == (3, 3, 8, 8) and len(bad3) == 2
    assert 0.0 <= x3.min() and x3.max() <= 1.0


def test_read_images_all_bad_and_bad_channels(tmp_path):
    x, good, bad = read_images([tmp_path / "nope.png"], channels=3, size=(4, 4))
    assert x.shape == (0, 3, 4, 4) and good == [] and len(bad) == 1
    with pytest.raises(ConfigError):
        read_images([], channels=2)


def test_read_image_raises(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match="x.jpg"):
        read_image(tmp_path / "x.jpg")


def test_save_png_round_trip(tmp_path):
    img = torch.rand(3, 7, 5)
    save_png(tmp_path / "o" / "r.png", img)
    back = read_image(tmp_path / "o" / "r.png", channels=3)
    assert back.shape == (3, 7, 5)
    assert (back - img).abs().max() <= 0.5 / 255 + 1e-6
    save_png(tmp_path / "g.png", torch.tensor([[[float("nan"), 2.0]]]))  # clamped, no crash
    assert read_image(tmp_path / "g.png").flatten().tolist() == [0.0, 1.0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_save_grid(tmp_path):
    originals = torch.rand(4, 1, 28, 28)
    recons = torch.rand(3, 3, 28, 28)
    save_grid(tmp_path / "grid.png", [originals, recons], pad=2)
    with Image.open(tmp_path / "grid.png") as im:
        assert im.mode == "RGB"
        assert im.size == (2 + 4 * (84 + 2), 2 + 2 * (84 + 2))  # 28 px upscaled x3
    save_grid(tmp_path / "small.png", [torch.rand(2, 1, 8, 8)], scale=1, pad=0)
    with Image.open(tmp_path / "small.png") as im:
        assert im.size == (16, 8) and im.mode == "L"


@pytest.mark.parametrize("read", [probe_image, lambda p: read_image(p, channels=1)],
                         ids=["probe", "read"])
def test_a_missing_file_or_a_folder_is_named_as_such(tmp_path, read):
    with pytest.raises(DataError, match=r"nope\.png: image not found"):
        read(tmp_path / "nope.png")
    folder = tmp_path / "photo.png"
    folder.mkdir()
    with pytest.raises(DataError, match=r"photo\.png: is a folder, expected an image file"):
        read(folder)


def test_an_image_over_pillows_pixel_limit_says_what_to_do(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    _png(path, size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # 1,600 pixels is over twice this
    for read in (probe_image, read_image):
        with pytest.raises(DataError, match=r"big\.png: .*more than 1,200 pixels.*downscale"):
            read(path)

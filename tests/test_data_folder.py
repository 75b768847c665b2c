"""'folder:DIR' datasets built from tiny generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.data import load_dataset
from aekit.errors import DataError


def _save(path: Path, size=(6, 5), mode="L", seed=0, fmt=None) -> np.ndarray:
    """Write a random image of size (H, W); returns its pixels."""
    rng = np.random.default_rng(seed)
    shape = size if mode == "L" else (*size, len(mode))
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, mode).save(path, format=fmt)
    return a


def test_class_subfolders_give_labels(tmp_path):
    for k, cls in enumerate(["cat", "ant", "bee"]):
        for i in range(4):
            _save(tmp_path / cls / f"{i}.png", seed=10 * k + i)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.classes == ["ant", "bee", "cat"]
    assert ds.shape == (1, 6, 5)
    assert len(ds.train_x) + len(ds.test_x) == 12 and len(ds.test_x) == 1
    assert ds.train_y.dtype == torch.int64
    labels = torch.cat([ds.train_y, ds.test_y]).sort().values
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    again = load_dataset(f"folder:{tmp_path}")  # the split is seeded
    assert torch.equal(ds.test_x, again.test_x)


def test_flat_folder_without_labels_and_exact_pixels(tmp_path):
    pixels = [_save(tmp_path / f"{i:02d}.png", seed=i) for i in range(20)]
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.train_y is None and ds.classes is None
    assert len(ds.train_x) == 18 and len(ds.test_x) == 2
    all_x = {bytes(x.numpy()) for x in torch.cat([ds.train_x, ds.test_x])}
    assert all_x == {bytes(p) for p in pixels}


def test_train_test_layout(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                _save(tmp_path / split / cls / f"{i}.bmp", fmt="BMP", seed=i)
    ds = load_dataset(f"folder:{tmp_path}")
    assert len(ds.train_x) == 6 and len(ds.test_x) == 4
    assert ds.classes == ["a", "b"] and ds.test_y.tolist() == [0, 0, 1, 1]


def test_any_colour_image_makes_all_rgb(tmp_path):
    grey = _save(tmp_path / "g.png", seed=1)
    _save(tmp_path / "c.png", mode="RGB", seed=2)
    _save(tmp_path / "a.webp", mode="RGBA", seed=3, fmt="WEBP")
    _save(tmp_path / "j.jpg", mode="RGB", seed=4)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.shape == (3, 6, 5)
    x = torch.cat([ds.train_x, ds.test_x])
    grey_rgb = torch.from_numpy(np.stack([grey] * 3))
    assert any(torch.equal(img, grey_rgb) for img in x)  # grey converted to R=G=B


def test_mixed_sizes_error_then_image_size_fix(tmp_path):
    _save(tmp_path / "a.png", size=(8, 8))
    _save(tmp_path / "b.png", size=(10, 12))
    _save(tmp_path / "c.tiff", size=(8, 8), fmt="TIFF")
    with pytest.raises(DataError) as info:
        load_dataset(f"folder:{tmp_path}")
    msg = str(info.value)
    assert "a.png is 8x8" in msg and "b.png is 10x12" in msg and "--image-size" in msg
    ds = load_dataset(f"folder:{tmp_path}", image_size=(4, 6))
    assert ds.shape == (1, 4, 6)
    assert load_dataset(f"folder:{tmp_path}", image_size="5x5").shape == (1, 5, 5)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no images"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "readme.md").write_text("x")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_dataset(f"folder:{tmp_path}")


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_names_the_file(tmp_path, damage):
    for i in range(3):
        _save(tmp_path / f"{i}.png", size=(16, 16), seed=i)
    bad = tmp_path / "1.png"
    data = bad.read_bytes()
    bad.write_bytes(b"not a png at all" if damage == "garbage" else data[: len(data) // 2])
    if damage == "garbage":  # unreadable header: left out and listed, the rest loads
        ds = load_dataset(f"folder:{tmp_path}")
        assert len(ds.train_x) + len(ds.test_x) == 2
        assert [p for p, _ in ds.skipped] == [str(bad)]
    else:  # the header reads, the pixels do not: an error that names the file
        with pytest.raises(DataError, match="1.png"):
            load_dataset(f"folder:{tmp_path}")


def test_top_level_images_beside_class_folders(tmp_path):
    _save(tmp_path / "loose.png")
    _save(tmp_path / "cls" / "x.png")
    with pytest.raises(DataError, match="loose.png"):
        load_dataset(f"folder:{tmp_path}")


def test_train_on_a_folder_with_unreadable_files_lists_them_and_exits_1(tmp_path, capsys):
    from aekit.cli import main

    data = tmp_path / "imgs"
    for i in range(12):
        _save(data / f"{i}.png", size=(8, 8), seed=i)
    (data / "5.png").write_bytes(b"garbage")
    (data / "9.png").write_bytes(b"")
    run = tmp_path / "run"
    code = main(["train", "--model", "dense", "--dataset", f"folder:{data}", "--epochs", "1",
                 "--out", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "5.png" in err and "9.png" in err and "10 file(s) done, 2 skipped" in err
    assert (run / "model.safetensors").is_file()

"""'npz:FILE' datasets and array validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.data import load_dataset
from aekit.data.arrays import images_from_array, labels_from_array
from aekit.errors import DataError

RNG = np.random.default_rng(0)


def test_keras_style_npz_uint8(tmp_path):
    path = tmp_path / "d.npz"
    x = RNG.integers(0, 256, (10, 6, 7), dtype=np.uint8)
    xt = RNG.integers(0, 256, (4, 6, 7), dtype=np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(10) % 3, x_test=xt, y_test=np.array([0, 1, 2, 4]))
    ds = load_dataset(f"npz:{path}")
    assert ds.shape == (1, 6, 7)
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(x))
    assert ds.classes == ["0", "1", "2", "3", "4"]
    assert ds.test_y.dtype == torch.int64


def test_float_channels_last_and_split(tmp_path):
    path = tmp_path / "f.npz"
    x = RNG.random((20, 5, 4, 3)).astype(np.float32)
    np.savez_compressed(path, x_train=x)
    ds = load_dataset(f"npz:{path}")
    assert ds.shape == (3, 5, 4) and ds.train_y is None
    assert len(ds.train_x) == 18 and len(ds.test_x) == 2
    back = torch.cat([ds.train_x, ds.test_x]).float() / 255
    assert back.sum().item() == pytest.approx(float(x.sum()), rel=1e-3)


def test_channels_first_npy(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, RNG.integers(0, 256, (6, 1, 3, 3), dtype=np.uint8))
    assert load_dataset(f"npz:{path}", image_size=(5, 5)).shape == (1, 5, 5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_names_file_and_key(tmp_path, bad):
    path = tmp_path / "nan.npz"
    x = RNG.random((5, 4, 4))
    xt = x.copy()
    xt[1, 2, 3] = bad
    np.savez(path, x_train=x, x_test=xt)
    with pytest.raises(DataError, match=r"nan\.npz\[x_test\].*NaN"):
        load_dataset(f"npz:{path}")


def test_float_out_of_range(tmp_path):
    path = tmp_path / "r.npz"
    np.savez(path, x_train=RNG.random((5, 4, 4)) * 255)
    with pytest.raises(DataError, match="divide by 255"):
        load_dataset(f"npz:{path}")


def test_bad_files(tmp_path):
    missing_key = tmp_path / "k.npz"
    np.savez(missing_key, images=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DataError, match="x_train.*found: images"):
        load_dataset(f"npz:{missing_key}")
    pickled = tmp_path / "p.npz"
    np.savez(pickled, x_train=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="p.npz"):
        load_dataset(f"npz:{pickled}")
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="g.npz"):
        load_dataset(f"npz:{garbage}")
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"npz:{tmp_path / 'none.npz'}")


@pytest.mark.parametrize(
    "arr, match",
    [
        (np.zeros((3, 4, 4, 2), np.uint8), "shape"),
        (np.zeros((0, 4, 4), np.uint8), "no images"),
        (np.full((2, 4, 4), 300, np.int32), "0..255"),
        (np.zeros((2, 4, 4), np.complex64), "unsupported"),
    ],
)
def test_images_from_array_rejects(arr, match):
    with pytest.raises(DataError, match=match):
        images_from_array(arr, "X")


def test_labels_validation():
    assert labels_from_array(np.array([0.0, 2.0]), 2, "y").tolist() == [0, 2]
    with pytest.raises(DataError, match="labels of shape"):
        labels_from_array(np.zeros(3, np.int64), 2, "y")
    with pytest.raises(DataError, match="integers"):
        labels_from_array(np.array([0.5, 1.0]), 2, "y")

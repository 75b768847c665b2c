"""load_dataset dispatch, the Dataset container, splits and the digits dataset."""

from __future__ import annotations

import pytest
import torch

from aekit.data import (
    Dataset,
    list_datasets,
    load_dataset,
    parse_image_size,
    resize_images,
    split_train_val,
    to_unit,
)
from aekit.errors import ConfigError, DataError


def test_unknown_name_lists_available():
    with pytest.raises(ConfigError, match=r"unknown dataset 'nope'.*digits.*folder:DIR"):
        load_dataset("nope")
    with pytest.raises(ConfigError, match="did you mean 'digits'"):
        load_dataset("digit")
    with pytest.raises(ConfigError, match="give a path"):
        load_dataset("folder:")


def test_list_datasets():
    rows = {name: (desc, ok) for name, desc, ok in list_datasets()}
    assert {"fashion-mnist", "mnist", "digits", "idx:DIR", "folder:DIR", "npz:FILE"} <= set(rows)
    assert rows["digits"][1] is True
    assert all(isinstance(desc, str) and desc for desc, _ in rows.values())


def test_digits():
    ds = load_dataset("digits")
    assert ds.train_x.shape == (1500, 1, 8, 8) and ds.test_x.shape == (297, 1, 8, 8)
    assert ds.train_x.dtype == torch.uint8 and int(ds.train_x.max()) == 255
    assert ds.classes == [str(i) for i in range(10)]
    counts = ds.test_y.bincount()
    assert counts.min() >= 28 and counts.max() <= 31  # stratified
    assert torch.equal(load_dataset("digits").test_y, ds.test_y)  # fixed split
    assert load_dataset("digits", image_size=(28, 28)).shape == (1, 28, 28)


@pytest.mark.parametrize("n, frac, n_val", [(100, 0.1, 10), (5, 0.01, 1), (7, 0.0, 0), (1, 0.5, 0)])
def test_split_train_val(n, frac, n_val):
    tr, va = split_train_val(n, frac, seed=3)
    assert len(va) == n_val and len(tr) == n - n_val
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(n))
    tr2, va2 = split_train_val(n, frac, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)


def test_split_seed_changes_split_and_bad_fraction():
    assert not torch.equal(split_train_val(100, 0.2, 0)[1], split_train_val(100, 0.2, 1)[1])
    with pytest.raises(ConfigError, match="val_fraction"):
        split_train_val(10, 1.0, 0)


def test_to_float_and_resize():
    x = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)
    f = to_unit(x)
    assert f.dtype == torch.float32 and f.flatten().tolist() == pytest.approx([0, 1, 0.2, 0.4])
    assert x.dtype == torch.uint8  # input untouched
    flat = torch.full((3, 1, 10, 10), 77, dtype=torch.uint8)
    assert torch.equal(resize_images(flat, (4, 6)), torch.full((3, 1, 4, 6), 77, dtype=torch.uint8))


def test_parse_image_size():
    assert parse_image_size("28x32") == (28, 32)
    assert parse_image_size("16") == (16, 16)
    assert parse_image_size((8, 9)) == (8, 9)
    assert parse_image_size(None) is None
    for bad in ("axb", "0x5", "1x2x3"):
        with pytest.raises(ConfigError):
            parse_image_size(bad)


def test_dataset_validates_and_reprs():
    x = torch.zeros(4, 1, 3, 3, dtype=torch.uint8)
    ds = Dataset("t", x, torch.zeros(4, dtype=torch.int64), x[:2], None, ["a"])
    assert ds.shape == (1, 3, 3) and "train=4" in repr(ds)
    with pytest.raises(DataError, match="uint8"):
        Dataset("t", x.float(), None, x, None, None)
    with pytest.raises(DataError, match="image-size"):
        Dataset("t", x, None, torch.zeros(2, 1, 4, 4, dtype=torch.uint8), None, None)

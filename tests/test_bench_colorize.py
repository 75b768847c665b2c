"""bench/colorize.py: the train/test patch split can never overlap (tiny arrays, no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.colorize import boxes_overlap, chroma, cut, split_boxes, starts


def test_starts_keep_every_window_inside():
    assert starts(0, 10, 4, 3) == [0, 3, 6]  # 6 + 4 = 10 fits, 9 would not
    assert starts(7, 10, 4, 1) == []  # region narrower than a patch
    assert starts(4, 12, 4, 4) == [4, 8]
    with pytest.raises(ValueError):
        starts(0, 10, 4, 0)


@pytest.mark.parametrize("h, w, size, stride, frac",
                         [(20, 30, 4, 2, 0.7), (17, 23, 5, 1, 0.6), (32, 40, 8, 3, 0.5),
                          (427, 640, 32, 8, 0.7)])
def test_train_and_test_patches_never_overlap(h, w, size, stride, frac):
    train, test, boundary = split_boxes(h, w, size, stride, frac)
    assert train and test
    assert boundary == round(w * frac)
    assert all(x + size <= boundary and y + size <= h for y, x in train)
    assert all(x >= boundary and x + size <= w and y + size <= h for y, x in test)
    # test patches tile without overlapping each other ...
    assert not any(boxes_overlap(a, b, size) for i, a in enumerate(test) for b in test[i + 1 :])
    # ... and none overlaps any training patch (pairwise, not only via the boundary)
    if len(train) * len(test) < 200_000:
        assert not any(boxes_overlap(a, b, size) for a in train for b in test)
    # pixel sets are disjoint too
    img = np.zeros((h, w), np.int32)
    for y, x in train:
        img[y : y + size, x : x + size] |= 1
    for y, x in test:
        img[y : y + size, x : x + size] |= 2
    assert not (img == 3).any()


def test_real_photo_layout_counts():
    train, test, boundary = split_boxes(427, 640, 32, 8, 0.7)
    assert boundary == 448
    assert len(test) == 13 * 6  # rows 0..384, columns 448..608
    assert len(train) == 50 * 53
    assert max(x for _, x in train) + 32 == 448 and min(x for _, x in test) == 448


def test_cut_returns_the_boxes_pixels():
    img = np.arange(6 * 8 * 3).reshape(6, 8, 3)
    train, test, _ = split_boxes(6, 8, 2, 1, 0.5)
    p = cut(img, test, 2)
    assert p.shape == (len(test), 2, 2, 3)
    for (y, x), patch in zip(test, p, strict=True):
        assert (patch == img[y : y + 2, x : x + 2]).all()
    assert cut(img, [], 2).shape == (0, 2, 2, 3)


def test_chroma_is_zero_for_grey_and_signed_for_colour():
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert chroma(grey).abs().max() < 1e-12
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1
    cb, cr = chroma(red)[0, :, 0, 0].tolist()
    assert cr == pytest.approx((1 - 0.299) / 1.402) and cb < 0


def test_luma_table_baseline_keeps_luma_and_uses_the_colour_of_that_brightness():
    from bench.colorize import apply_luma_table, luma_chroma_table

    # training pixels: dark ones are blue-ish, bright ones are red-ish
    dark, bright = np.array([0.1, 0.1, 0.4]), np.array([0.9, 0.6, 0.5])
    table = luma_chroma_table(np.stack([dark, dark, bright]))
    y_dark = float(dark @ np.array([0.299, 0.587, 0.114]))
    grey = torch.full((1, 3, 1, 2), round(y_dark * 255) / 255)
    out = apply_luma_table(grey, table)
    luma = (out[:, 0] * 0.299 + out[:, 1] * 0.587 + out[:, 2] * 0.114)
    assert torch.allclose(luma, grey[:, 0], atol=1e-5)
    assert (out[0, 2] > out[0, 0]).all()  # blue where the training pixels of that luma were
    # a luma never seen in training gets the overall mean offset
    offsets = np.stack([dark, dark, bright]) - (np.stack([dark, dark, bright])
                                                @ np.array([0.299, 0.587, 0.114]))[:, None]
    assert torch.allclose(table[0], torch.from_numpy(offsets.mean(0)).float())

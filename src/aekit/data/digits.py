"""'digits': scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download needed)."""

from __future__ import annotations

import numpy as np
import torch

from aekit.data.dataset import Dataset
from aekit.errors import DataError
from aekit.registry import register_dataset

N_TEST = 297  # 1,500 train / 297 test, stratified by class
SPLIT_SEED = 0


@register_dataset("digits")
def _load_digits(arg: str, image_size) -> Dataset:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DataError(
            "the 'digits' dataset needs scikit-learn: pip install scikit-learn"
        ) from None
    bunch = load_digits()
    # Values are 0..16 counts of set pixels; scale to the full 0..255 range of uint8 images.
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=N_TEST, stratify=y, random_state=SPLIT_SEED
    )
    idx_train.sort()
    idx_test.sort()
    return Dataset(
        "digits",
        torch.from_numpy(np.ascontiguousarray(x[idx_train])),
        torch.from_numpy(y[idx_train]),
        torch.from_numpy(np.ascontiguousarray(x[idx_test])),
        torch.from_numpy(y[idx_test]),
        [str(i) for i in range(10)],
    )

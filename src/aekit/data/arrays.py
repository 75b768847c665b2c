"""'npz:FILE': images from a NumPy .npz (keys x_train, optional y_train, x_test, y_test) or .npy.

Accepted images: uint8 0..255 (or other integers in that range, or bool) and float 0..1, shaped
(N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3}. Files are opened with
allow_pickle=False: an npz holding pickled objects is rejected, never executed.
"""

from __future__ import annotations

import io
import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from numpy.lib import format as npformat

from aekit.data.dataset import Dataset, resize_images, split_train_val
from aekit.errors import DataError
from aekit.registry import register_dataset

TEST_FRACTION = 0.1
SPLIT_SEED = 0
_KEYS = ("x_train", "y_train", "x_test", "y_test")
# numpy parses an .npy header with Python's tokenizer/ast: hostile headers raise any of these.
_LOAD_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError,
                SyntaxError, tokenize.TokenError, TypeError, OverflowError, RecursionError,
                NotImplementedError, zlib.error)
_MAX_EXPANSION = 1100  # deflate cannot exceed ~1032:1; an uncompressed .npy is 1:1
_MAX_HEADER = 1 << 16  # numpy writes a few hundred bytes and refuses more than 10,000


def _npy_nbytes(f) -> int:
    """Bytes an .npy stream's header declares (reads only the header, at most 64 KiB: numpy
    itself would first read a header of whatever length the file states)."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise ValueError("not an .npy array (bad magic bytes)")
    major, minor = magic[6], magic[7]
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"unsupported .npy format version {major}.{minor}")
    length = f.read(2 if major == 1 else 4)
    n = int.from_bytes(length, "little")
    if len(length) < (2 if major == 1 else 4) or n > _MAX_HEADER:
        raise ValueError(f".npy header length {n} is corrupt")
    read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
    shape, _, dtype = read(io.BytesIO(length + f.read(n)))
    return math.prod(shape) * dtype.itemsize


def _check_declared_sizes(path: Path) -> None:
    """numpy allocates an array of the declared shape before reading its data: reject headers
    that declare more than the file could hold, before anything that size is allocated."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            declared = 0
            for info in z.infolist():
                if info.filename.endswith(".npy"):
                    with z.open(info) as f:
                        declared += _npy_nbytes(f)
    else:
        with open(path, "rb") as f:
            declared = _npy_nbytes(f)
    size = path.stat().st_size
    if declared > _MAX_EXPANSION * size + (1 << 20):
        raise DataError(
            f"{path}: array headers declare {declared:,} bytes, impossible for a {size:,}-byte "
            "file; the file is truncated or corrupt"
        )


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an .npz (by key) or an .npy (as 'x_train'); DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'is a folder' if path.is_dir() else 'file not found'}")
    try:
        _check_declared_sizes(path)
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.ndarray):
            return {"x_train": obj}
        with obj:
            return {k: obj[k] for k in obj.files}
    except _LOAD_ERRORS as e:
        why = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise DataError(
            f"{path}: not a readable .npz/.npy file ({why}); save arrays with np.savez "
            "(no pickled objects)"
        ) from None


def images_from_array(arr: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    """Validate and convert an image array to uint8 (N, C, H, W); `what` names it in errors."""
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    if a.ndim == 3:
        a = a[:, None]  # (N, 1, H, W)
    elif a.ndim == 4 and a.shape[1] in (1, 3):
        pass  # already (N, C, H, W)
    elif a.ndim == 4 and a.shape[3] in (1, 3):
        a = a.transpose(0, 3, 1, 2)  # channels-last -> (N, C, H, W)
    else:
        raise DataError(
            f"{what}: images of shape {a.shape} are not (N, H, W), (N, H, W, C) or (N, C, H, W) "
            "with C = 1 or 3"
        )
    if 0 in a.shape:
        raise DataError(f"{what}: holds no images (shape {a.shape})")
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
    elif a.dtype.kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{what}: integer pixel values span {lo}..{hi}; expected 0..255")
        a = a.astype(np.uint8)
    elif a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            bad = int(a.size - np.count_nonzero(finite))
            raise DataError(f"{what}: {bad} NaN/inf pixel values; clean the data first")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            hint = " (divide by 255?)" if lo >= 0 and hi <= 255 else ""
            raise DataError(f"{what}: float pixel values span {lo:g}..{hi:g}; expected 0..1{hint}")
        a = np.rint(a * 255.0).astype(np.uint8)
    else:
        raise DataError(f"{what}: unsupported pixel type {a.dtype}; use uint8 0..255 or float 0..1")
    return torch.from_numpy(np.ascontiguousarray(a))


def labels_from_array(arr: np.ndarray, n: int, what: str) -> torch.Tensor:
    """Validate integer class labels (N,) -> int64 tensor."""
    a = np.asarray(arr)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or len(a) != n:
        raise DataError(f"{what}: labels of shape {a.shape} for {n} images; expected ({n},)")
    if a.dtype.kind == "f" and np.isfinite(a).all() and np.array_equal(a, np.rint(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise DataError(f"{what}: labels must be integers, got {a.dtype}")
    if n and a.min() < 0:
        raise DataError(f"{what}: negative label {int(a.min())}")
    return torch.from_numpy(a.astype(np.int64))


def load_npz(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> Dataset:
    path = Path(path)
    arrays = read_arrays(path)
    if "x_train" not in arrays:
        raise DataError(
            f"{path}: no 'x_train' array (found: {', '.join(arrays) or 'none'}); expected keys "
            f"{', '.join(_KEYS)} (only x_train is required)"
        )
    x = images_from_array(arrays["x_train"], f"{path}[x_train]")
    y = arrays.get("y_train")
    y = None if y is None else labels_from_array(y, len(x), f"{path}[y_train]")
    if "x_test" in arrays:
        xt = images_from_array(arrays["x_test"], f"{path}[x_test]")
        yt = arrays.get("y_test")
        yt = None if yt is None else labels_from_array(yt, len(xt), f"{path}[y_test]")
    else:
        if len(x) < 2:
            raise DataError(f"{path}: only one image and no x_test; need at least 2")
        tr, te = split_train_val(len(x), TEST_FRACTION, SPLIT_SEED)
        x, xt = x[tr], x[te]
        y, yt = (None, None) if y is None else (y[tr], y[te])
    if x.shape[1] != xt.shape[1]:
        raise DataError(f"{path}: x_train has {x.shape[1]} channels but x_test {xt.shape[1]}")
    if image_size is not None:
        x, xt = resize_images(x, image_size), resize_images(xt, image_size)
    labels = [t for t in (y, yt) if t is not None and len(t)]
    classes = [str(i) for i in range(int(max(t.max() for t in labels)) + 1)] if labels else None
    return Dataset(f"npz:{path}", x, y, xt, yt, classes)


@register_dataset("npz:")
def _load_npz(arg: str, image_size) -> Dataset:
    return load_npz(arg, image_size)

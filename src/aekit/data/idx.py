"""IDX files (the MNIST format), raw or gzipped: a strict reader, a writer, and the loaders for
'fashion-mnist', 'mnist' and 'idx:DIR'.

IDX layout: magic 0x00 0x00 <dtype> <ndim>, then ndim big-endian uint32 dims, then the data in
big-endian C order. The reader checks the declared size against the bytes really present before
allocating anything of that size, so a tiny file that declares huge dims fails fast.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from aekit.data.catalog import (
    STANDARD_NAMES,
    SYSTEM_DIR,
    data_root,
    fashion_mnist_dir,
    find_idx_file,
    mnist_dir,
)
from aekit.data.dataset import Dataset
from aekit.errors import DataError
from aekit.io import atomic_write_bytes
from aekit.registry import register_dataset

# IDX type code -> numpy dtype (big-endian as stored).
_CODES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DEFLATE_RATIO = 1100  # deflate cannot exceed ~1032:1; more declared data means a lie
_CHUNK = 1 << 22

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

def _parse_header(head: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """-> (dtype, dims, header length); raises DataError on a bad magic number."""
    if len(head) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(head)} bytes)")
    zero0, zero1, code, ndim = head[:4]
    if zero0 != 0 or zero1 != 0 or code not in _CODES:
        raise DataError(
            f"{path}: not an IDX file (bad magic number 0x{head[:4].hex()}); "
            "expected 00 00 <type> <ndim>, e.g. 00 00 08 03 for uint8 images"
        )
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    n_head = 4 + 4 * ndim
    if len(head) < n_head:
        raise DataError(f"{path}: truncated IDX header ({len(head)} of {n_head} bytes)")
    dims = struct.unpack(f">{ndim}I", head[4:n_head])
    # numpy refuses a shape whose non-zero dims multiply past 2**63 even when another dim is 0.
    if math.prod(d for d in dims if d) * _CODES[code].itemsize >= 1 << 62:
        raise DataError(f"{path}: IDX header declares impossible dimensions {dims}")
    return _CODES[code], dims, n_head


def _describe(dims: tuple[int, ...], dtype: np.dtype) -> str:
    return f"{'x'.join(map(str, dims))} {dtype.name}"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not, detected by content) -> array in native byte order."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            is_gz = f.read(2) == _GZIP_MAGIC
        size = path.stat().st_size
        if is_gz:
            return _read_gz(path, size)
        with open(path, "rb") as f:
            dtype, dims, n_head = _parse_header(f.read(4 + 4 * 255), path)
            f.seek(n_head)
            expected = math.prod(dims) * dtype.itemsize
            actual = size - n_head
            if actual != expected:
                raise DataError(
                    f"{path}: IDX header declares {_describe(dims, dtype)} ({expected} bytes) "
                    f"but the file holds {actual} data bytes; the file is "
                    f"{'truncated' if actual < expected else 'longer than declared'} — "
                    "re-copy or re-download it"
                )
            buf = bytearray(expected)
            if f.readinto(buf) != expected:
                raise DataError(f"{path}: file changed while reading")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected an IDX file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return _to_array(buf, dtype, dims)


def _read_gz(path: Path, compressed_size: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            first = f.read(4)
            head = first + f.read(4 * first[3]) if len(first) == 4 else first
            dtype, dims, _ = _parse_header(head, path)
            expected = math.prod(dims) * dtype.itemsize
            if expected > _MAX_DEFLATE_RATIO * compressed_size + (1 << 20):
                raise DataError(
                    f"{path}: IDX header declares {_describe(dims, dtype)} ({expected} bytes), "
                    f"impossible for a {compressed_size}-byte gzip file; the file is corrupt"
                )
            # Grow in chunks: memory follows the bytes really decompressed, not the header's claim.
            buf = bytearray()
            while len(buf) < expected:
                chunk = f.read(min(_CHUNK, expected - len(buf)))
                if not chunk:
                    break
                buf += chunk
            extra = len(f.read(1)) if len(buf) == expected else 0
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({e}); re-copy or re-download it"
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(buf) != expected or extra:
        state = "truncated" if len(buf) < expected else "longer than declared"
        raise DataError(
            f"{path}: IDX header declares {_describe(dims, dtype)} ({expected} bytes) but the "
            f"data is {state} ({len(buf)}{'+' if extra else ''} bytes); re-copy or re-download it"
        )
    return _to_array(buf, dtype, dims)


def _to_array(buf: bytearray, dtype: np.dtype, dims: tuple[int, ...]) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=dtype).reshape(dims)  # no copy; bytearray keeps it writable
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as IDX (gzipped when the name ends in .gz), atomically."""
    arr = np.asarray(array)
    code = next((c for c, dt in _CODES.items() if dt.kind == arr.dtype.kind
                 and dt.itemsize == arr.dtype.itemsize), None)  # fmt: skip
    if code is None or arr.ndim == 0 or arr.ndim > 255:
        raise DataError(
            f"{path}: cannot write a {arr.dtype} array of {arr.ndim} dims as IDX "
            "(types: uint8, int8, int16, int32, float32, float64; 1..255 dims)"
        )
    if any(d >= 2**32 for d in arr.shape):
        raise DataError(f"{path}: dimension too large for IDX: {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + np.ascontiguousarray(arr, dtype=_CODES[code]).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(path, data)


# --- loaders -------------------------------------------------------------------------------------


def _images_to_tensor(arr: np.ndarray, path: Path) -> torch.Tensor:
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8 (IDX type 0x08), got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[:, None]  # (N, 1, H, W)
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)  # channels-last -> (N, C, H, W)
    else:
        raise DataError(f"{path}: expected images of shape (N, H, W), got {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"{path}: holds no images")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _labels_to_tensor(arr: np.ndarray, path: Path, n_images: int, n_classes: int | None):
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise DataError(
            f"{path}: labels must be a 1-D integer IDX array, got {arr.dtype} {arr.shape}"
        )
    if len(arr) != n_images:
        raise DataError(f"{path}: {len(arr)} labels for {n_images} images; the files do not match")
    if len(arr) and (arr.min() < 0 or (n_classes is not None and arr.max() >= n_classes)):
        raise DataError(f"{path}: labels outside 0..{(n_classes or 1) - 1}")
    return torch.from_numpy(arr.astype(np.int64))


def load_idx_folder(
    folder: str | os.PathLike, name: str | None = None, classes: list[str] | None = None
) -> Dataset:
    """Load the four standard IDX files from `folder` (each optionally .gz)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: IDX folder not found")
    paths = {}
    for key, base in STANDARD_NAMES.items():
        p = find_idx_file(folder, base)
        if p is None:
            raise DataError(
                f"{folder}: missing {base}[.gz]; an IDX folder needs "
                f"{', '.join(STANDARD_NAMES.values())} (each optionally .gz)"
            )
        paths[key] = p
    n_classes = len(classes) if classes else None
    tensors = {}
    for split in ("train", "test"):
        xp, yp = paths[f"{split}_x"], paths[f"{split}_y"]
        x = _images_to_tensor(read_idx(xp), xp)
        tensors[f"{split}_x"] = x
        tensors[f"{split}_y"] = _labels_to_tensor(read_idx(yp), yp, len(x), n_classes)
    if classes is None:
        top = int(max(tensors["train_y"].max(), tensors["test_y"].max()))
        classes = [str(i) for i in range(top + 1)]
    return Dataset(name or f"idx:{folder}", classes=classes, **tensors)


@register_dataset("fashion-mnist")
def _load_fashion(arg: str, image_size) -> Dataset:
    d = fashion_mnist_dir()
    if d is None:
        looked = ([str(data_root() / "fashion-mnist")] if data_root() else []) + [
            f"{SYSTEM_DIR}/fashion-mnist"
        ]
        raise DataError(
            f"Fashion-MNIST not found (looked in {', '.join(looked)}); install it with "
            "`apt-get install dataset-fashion-mnist`, or put the four IDX files in "
            "$AEKIT_DATA/fashion-mnist"
        )
    return load_idx_folder(d, "fashion-mnist", FASHION_CLASSES)


@register_dataset("mnist")
def _load_mnist(arg: str, image_size) -> Dataset:
    d, root = mnist_dir(), data_root()
    if d is None:
        where = f"{root / 'mnist'}" if root else "$AEKIT_DATA/mnist (AEKIT_DATA is not set)"
        raise DataError(
            f"MNIST not found in {where}; copy the four standard IDX files "
            f"({', '.join(STANDARD_NAMES.values())}, .gz or not) there and set AEKIT_DATA, "
            "or use idx:DIR for any folder holding them"
        )
    return load_idx_folder(d, "mnist", [str(i) for i in range(10)])


@register_dataset("idx:")
def _load_idx(arg: str, image_size) -> Dataset:
    return load_idx_folder(arg)

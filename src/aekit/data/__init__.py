"""Datasets as uint8 tensors in memory, loaded by name through `aekit.registry.DATASETS`.

Names: 'fashion-mnist', 'mnist', 'digits' and the schemes 'idx:DIR', 'folder:DIR', 'npz:FILE'.
Images stay uint8 (N, C, H, W) so the training loop can batch by indexing; `to_float` converts a
batch to float32 in [0, 1] only when it is used.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aekit.errors import ConfigError, DataError, check_range
from aekit.registry import DATASETS, register_dataset

__all__ = [
    "Dataset",
    "load_dataset",
    "list_datasets",
    "parse_image_size",
    "resize_images",
    "split_train_val",
    "to_float",
]


@dataclass(repr=False)
class Dataset:
    """A train/test pair of uint8 image tensors (N, C, H, W) with optional int64 labels (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor | None
    test_x: torch.Tensor
    test_y: torch.Tensor | None
    classes: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        for split, x, y in (
            ("train", self.train_x, self.train_y),
            ("test", self.test_x, self.test_y),
        ):
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise DataError(
                    f"dataset {self.name}: {split} images must be uint8 (N, C, H, W), "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y is not None and (y.ndim != 1 or len(y) != len(x)):
                raise DataError(
                    f"dataset {self.name}: {len(x)} {split} images but labels of shape "
                    f"{tuple(y.shape)}"
                )
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise DataError(
                f"dataset {self.name}: train images are {tuple(self.train_x.shape[1:])} but test "
                f"images are {tuple(self.test_x.shape[1:])}; pass --image-size HxW"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train_x)}, test={len(self.test_x)}, "
            f"shape={self.shape}, classes={self.num_classes})"
        )


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (same shape)."""
    return x.to(torch.float32).div_(255.0)


def split_train_val(
    n: int, val_fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic random split of range(n) -> (train_idx, val_idx), each sorted int64.

    A positive fraction always yields at least one validation and one training item (n >= 2).
    """
    check_range("val_fraction", val_fraction, 0.0, 0.99)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def parse_image_size(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """'28x28' / '32' / (h, w) -> (h, w); None stays None."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.lower().replace("×", "x").split("x")
        try:
            dims = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"--image-size {text!r}: expected HxW, e.g. 28x28") from None
        if len(dims) == 1:
            dims = dims * 2
    else:
        dims = [int(d) for d in text]
    if len(dims) != 2 or not all(1 <= d <= 8192 for d in dims):
        raise ConfigError(f"image size {text!r}: expected HxW with 1 <= H, W <= 8192, e.g. 28x28")
    return dims[0], dims[1]


def resize_images(x: torch.Tensor, size: tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, *size): bilinear with antialiasing (area-like shrink)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    out = torch.empty((x.shape[0], x.shape[1], *size), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        y = torch.nn.functional.interpolate(
            x[i : i + chunk].float(),
            size=size,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out[i : i + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


# --- registry glue -------------------------------------------------------------------------------
# A loader is `fn(arg: str, image_size) -> Dataset`; `arg` is the text after the scheme ('' for a
# full name). Loaders may ignore image_size: load_dataset resizes whatever they return.

Loader = Callable[[str, "tuple[int, int] | None"], Dataset]
_INFO: dict[str, tuple[str, Callable[[], bool]]] = {}
_PREFERRED_ORDER = ["fashion-mnist", "mnist", "digits", "idx:", "folder:", "npz:"]


def dataset_loader(
    prefix: str, description: str, available: Callable[[], bool] = lambda: True
) -> Callable[[Loader], Loader]:
    """register_dataset plus the description/availability `aekit datasets` shows."""

    def wrap(fn: Loader) -> Loader:
        _INFO[prefix] = (description, available)
        return register_dataset(prefix)(fn)

    return wrap


def _display(prefix: str) -> str:
    if prefix.endswith(":"):
        return prefix + ("FILE" if prefix == "npz:" else "DIR")
    return prefix


def list_datasets() -> list[tuple[str, str, bool]]:
    """[(name, description, available)] for every registered dataset, in registration order."""
    rows = []
    order = {p: i for i, p in enumerate(_PREFERRED_ORDER)}
    for prefix in sorted(DATASETS, key=lambda p: (order.get(p, len(order)), p)):
        desc, avail = _INFO.get(prefix, ("", lambda: True))
        try:
            ok = bool(avail())
        except Exception:  # an availability probe must never break the listing
            ok = False
        rows.append((_display(prefix), desc, ok))
    return rows


def load_dataset(name: str, image_size: tuple[int, int] | str | None = None) -> Dataset:
    """Load a dataset by name ('fashion-mnist', 'digits', 'folder:DIR', ...) as uint8 tensors."""
    size = parse_image_size(image_size)
    name = str(name).strip()
    fn, arg = None, ""
    scheme, sep, rest = name.partition(":")
    if sep and scheme + ":" in DATASETS:
        fn, arg = DATASETS[scheme + ":"], os.path.expanduser(rest.strip())
        if not arg:
            raise ConfigError(
                f"dataset {name!r}: give a path after '{scheme}:', e.g. {scheme}:/data"
            )
    elif name in DATASETS and not name.endswith(":"):
        fn = DATASETS[name]
    if fn is None:
        raise ConfigError(_unknown_message(name))
    ds = fn(arg, size)
    if size is not None and ds.shape[1:] != size:
        ds = Dataset(
            ds.name,
            resize_images(ds.train_x, size),
            ds.train_y,
            resize_images(ds.test_x, size),
            ds.test_y,
            ds.classes,
        )
    return ds


def _unknown_message(name: str) -> str:
    known = [row[0] for row in list_datasets()]
    msg = f"unknown dataset {name!r}; available: {', '.join(known)}"
    close = difflib.get_close_matches(name, [p for p in DATASETS if not p.endswith(":")], n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    elif os.path.isdir(os.path.expanduser(name)):
        msg += f" (for a folder, use folder:{name} or idx:{name})"
    elif os.path.isfile(os.path.expanduser(name)):
        msg += f" (for an array file, use npz:{name})"
    return msg


# Importing the loaders fills the registry (they import Dataset/dataset_loader from above).
from aekit.data import arrays, digits, folder, idx  # noqa: E402, F401

"""Datasets as uint8 tensors in memory, loaded by name through `aekit.registry.DATASETS`.

Names: 'fashion-mnist', 'mnist', 'digits' and the schemes 'idx:DIR', 'folder:DIR', 'npz:FILE'.
Images stay uint8 (N, C, H, W) so the training loop can batch by indexing; `to_unit` converts a
batch to float32 in [0, 1] only when it is used.
"""

from __future__ import annotations

import difflib
import os

from aekit.data.dataset import (
    _INFO,
    Dataset,
    dataset_loader,
    resize_images,
    split_train_val,
)
from aekit.data.units import parse_image_size, to_unit
from aekit.errors import ConfigError
from aekit.registry import DATASETS

_LISTING_ORDER = ["fashion-mnist", "mnist", "digits", "idx:", "folder:", "npz:"]

__all__ = [
    "Dataset",
    "dataset_loader",
    "load_dataset",
    "load_pair",
    "list_datasets",
    "parse_image_size",
    "resize_images",
    "split_train_val",
    "to_unit",
]


def _display(prefix: str) -> str:
    if prefix.endswith(":"):
        return prefix + ("FILE" if prefix == "npz:" else "DIR")
    return prefix


def list_datasets() -> list[tuple[str, str, bool]]:
    """[(name, description, available)] for every registered dataset, in registration order."""
    rows = []
    order = {p: i for i, p in enumerate(_LISTING_ORDER)}
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
from aekit.data import arrays, digits, folder, idx  # noqa: E402, F401  (loaders register themselves)
from aekit.data.pair import load_pair  # noqa: E402  (two domains as one paired dataset)

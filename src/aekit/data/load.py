"""`load_dataset(name)`: a dataset by name or scheme, through the catalogue (catalog.py)."""

from __future__ import annotations

import difflib
import os

from aekit.data.catalog import known_prefixes, list_datasets, loader
from aekit.data.dataset import Dataset, resize_images
from aekit.data.units import parse_image_size
from aekit.errors import ConfigError


def load_dataset(name: str, image_size: tuple[int, int] | str | None = None) -> Dataset:
    """Load a dataset by name ('fashion-mnist', 'digits', 'folder:DIR', ...) as uint8 tensors."""
    size = parse_image_size(image_size)
    name = str(name).strip()
    fn, arg = None, ""
    scheme, sep, rest = name.partition(":")
    if sep and loader(scheme + ":") is not None:
        fn, arg = loader(scheme + ":"), os.path.expanduser(rest.strip())
        if not arg:
            raise ConfigError(
                f"dataset {name!r}: give a path after '{scheme}:', e.g. {scheme}:/data"
            )
    elif not name.endswith(":") and loader(name) is not None:
        fn = loader(name)
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
    names = [p for p in known_prefixes() if not p.endswith(":")]
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    elif os.path.isdir(os.path.expanduser(name)):
        msg += f" (for a folder, use folder:{name} or idx:{name})"
    elif os.path.isfile(os.path.expanduser(name)):
        msg += f" (for an array file, use npz:{name})"
    return msg

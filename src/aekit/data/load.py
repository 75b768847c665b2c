"""`load_dataset(name)`: a dataset by name or scheme, through the catalogue (catalog.py)."""

from __future__ import annotations

import difflib
import os

from aekit.data.catalog import known_prefixes, list_datasets, loader
from aekit.data.dataset import Dataset, resize_images
from aekit.data.patches import check_patch, patch_tensor
from aekit.data.units import parse_image_size
from aekit.errors import ConfigError


def load_dataset(name: str, image_size: tuple[int, int] | str | None = None,
                 patch: int = 0) -> Dataset:
    """Load a dataset by name ('fashion-mnist', 'digits', 'folder:DIR', ...) as uint8 tensors.

    `image_size` resizes every image; `patch` cuts every image into patch x patch patches
    instead (aekit.data.patches; a folder's images may then differ in size). Not both."""
    size = parse_image_size(image_size)
    if patch:
        check_patch(patch, size)
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
    if patch:
        return _patches(name, scheme, arg, fn, patch)
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


def _patches(name: str, scheme: str, arg: str, fn, patch: int) -> Dataset:
    if scheme == "folder" and arg:  # sizes may differ: each image is cut at its own size
        from aekit.data.folder import load_image_folder

        return load_image_folder(arg, patch=patch)
    ds = fn(arg, None)
    train_x, train_y = patch_tensor(ds.train_x, ds.train_y, patch, f"{name} (train split)")
    test_x, test_y = patch_tensor(ds.test_x, ds.test_y, patch, f"{name} (test split)")
    return Dataset(ds.name, train_x, train_y, test_x, test_y, ds.classes, ds.skipped)


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

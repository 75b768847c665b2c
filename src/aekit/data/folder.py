"""'folder:DIR': a folder of PNG/JPEG/BMP/WebP/TIFF images as a dataset.

Layouts: DIR/train/ + DIR/test/ (used as given) or a plain DIR (seeded 90/10 split); in each,
one sub-folder per class gives labels (sorted names), images directly inside give none.
All images load as RGB if any is colour, else grey. Their sizes must agree unless they are resized
(--image-size) or cut into patches (--patch, aekit.data.patches). A file whose header cannot be
read is left out and listed (`Dataset.skipped`); a folder with no readable image is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aekit.data.dataset import Dataset, split_train_val
from aekit.data.files import probe_files
from aekit.data.images import IMAGE_EXTENSIONS, is_image_file, load_uint8
from aekit.data.patches import check_patch, no_patch_error, patch_split
from aekit.errors import DataError
from aekit.registry import register_dataset

TEST_FRACTION = 0.1
SPLIT_SEED = 0
_KINDS = "/".join(e.lstrip(".").upper() for e in IMAGE_EXTENSIONS if e not in (".jpeg", ".tif"))


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _images_under(d: Path) -> list[Path]:
    return sorted(
        p for p in d.rglob("*")
        if p.is_file() and is_image_file(p)
        and all(_visible(q) for q in p.relative_to(d).parents if str(q) != ".")
    )  # fmt: skip


def _scan(d: Path) -> tuple[list[Path], list[str] | None]:
    """-> (image files, class name per file or None when there are no class sub-folders)."""
    try:
        entries = sorted(e for e in d.iterdir() if _visible(e))
    except OSError as e:
        raise DataError(f"{d}: cannot list folder: {e.strerror or e}") from None
    top = [e for e in entries if e.is_file() and is_image_file(e)]
    by_class = {e.name: _images_under(e) for e in entries if e.is_dir()}
    by_class = {k: v for k, v in by_class.items() if v}
    if not by_class:
        return top, None
    if top:
        raise DataError(
            f"{d}: has both images at the top ({top[0].name}) and class sub-folders "
            f"({', '.join(list(by_class)[:3])}); move the top-level images into a class folder"
        )
    files, names = [], []
    for cls in sorted(by_class):
        files += by_class[cls]
        names += [cls] * len(by_class[cls])
    return files, names


def _fmt(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


def common_shape(layout: FolderLayout, root: Path, image_size: tuple[int, int] | None
                 ) -> tuple[bool, tuple[int, int]]:
    """(any colour image, the size every image has or is resized to), from the headers. Sizes
    must agree unless `image_size` says what to resize them to."""
    files = layout.files
    sizes = [layout.headers[p][0] for p in files]
    colour = any(layout.headers[p][1] for p in files)
    if image_size is None:
        odd = next((i for i, hw in enumerate(sizes) if hw != sizes[0]), None)
        if odd is not None:
            raise DataError(
                f"folder:{root}: images differ in size: {files[0]} is {_fmt(sizes[0])} but "
                f"{files[odd]} is {_fmt(sizes[odd])} (HxW); pass --patch P to cut PxP patches "
                f"from each image at its own size, or --image-size HxW (e.g. --image-size "
                f"{_fmt(sizes[0])}) to resize them all"
            )
        image_size = sizes[0]
    return colour, tuple(image_size)


def _load_files(layout: FolderLayout, root: Path, image_size: tuple[int, int] | None
                ) -> torch.Tensor:
    """Decode every file into one preallocated uint8 (N, C, H, W), at the common size."""
    colour, image_size = common_shape(layout, root, image_size)
    files = layout.files
    mode, c = ("RGB", 3) if colour else ("L", 1)
    out = np.empty((len(files), c, *image_size), dtype=np.uint8)
    for i, p in enumerate(files):
        a = load_uint8(p, mode, image_size)
        out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)
    return torch.from_numpy(out)


@dataclass(frozen=True)
class FolderLayout:
    """What a `folder:` dataset holds, from the file names alone: every image in order (train/
    before test/ when pre-split), the class names and one label per file when sub-folders name
    classes, and the train/test split (the same for in-memory and streamed loading)."""

    files: list[Path]
    classes: list[str] | None
    labels: torch.Tensor | None
    train_idx: torch.Tensor | slice
    test_idx: torch.Tensor | slice
    # Files whose header cannot be read: left out of `files`, listed for the user.
    skipped: list[tuple[str, str]]
    headers: dict[Path, tuple[tuple[int, int], bool]]  # file -> ((H, W), is colour)


def folder_parts(root: Path) -> tuple[list[Path], bool]:
    """(the folders holding images, whether they are a train/ + test/ pair)."""
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    return ([root / "train", root / "test"] if presplit else [root]), presplit


def scan_folder(root: Path) -> FolderLayout:
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "folder not found"
        raise DataError(f"folder:{root}: {what}")
    parts, presplit = folder_parts(root)
    scans = [_scan(d) for d in parts]
    for d, (files, _) in zip(parts, scans, strict=True):
        if not files:
            raise DataError(f"folder:{root}: no images ({_KINDS}) found in {d}")
    # One unreadable file must not stop a whole folder: drop it, list it, go on with the rest.
    probed, skipped = probe_files([f for fs, _ in scans for f in fs])
    if skipped:
        bad = {Path(p) for p, _ in skipped}
        scans = [([f for f in fs if f not in bad],
                  None if names is None else [n for f, n in zip(fs, names, strict=True)
                                              if f not in bad]) for fs, names in scans]
        for d, (files, _) in zip(parts, scans, strict=True):
            if not files:
                shown = "; ".join(f"{p}: {why}" for p, why in skipped[:3])
                raise DataError(f"folder:{root}: no readable image in {d} ({shown})")
    labelled = [names is not None for _, names in scans]
    if any(labelled) and not all(labelled):
        raise DataError(
            f"folder:{root}: train/ and test/ must both have class sub-folders or neither"
        )
    classes = sorted({n for _, names in scans for n in names}) if all(labelled) else None
    files = [p for fs, _ in scans for p in fs]
    y = None
    if classes is not None:
        index = {n: i for i, n in enumerate(classes)}
        y = torch.tensor([index[n] for _, names in scans for n in names], dtype=torch.int64)
    if presplit:
        n_train = len(scans[0][0])
        train_idx, test_idx = slice(0, n_train), slice(n_train, None)  # views, no copy
    else:
        if len(files) < 2:
            raise DataError(f"folder:{root}: only one image; need at least 2 to carve a test split")
        train_idx, test_idx = split_train_val(len(files), TEST_FRACTION, SPLIT_SEED)
    headers = {f: (hw, colour) for f, hw, colour in probed}
    return FolderLayout(files, classes, y, train_idx, test_idx, skipped, headers)


def load_image_folder(
    folder: str | os.PathLike, image_size: tuple[int, int] | None = None, patch: int = 0
) -> Dataset:
    """A folder of images as a Dataset; with `patch` every image is read at its own size and
    cut into patch x patch patches (aekit.data.patches), so the sizes may differ."""
    root = Path(folder)
    if patch:
        check_patch(patch, image_size)
    layout = scan_folder(root)
    y, train_idx, test_idx = layout.labels, layout.train_idx, layout.test_idx
    if patch:
        return _folder_patches(layout, root, patch)
    x = _load_files(layout, root, image_size)
    return Dataset(
        f"folder:{root}",
        x[train_idx],
        None if y is None else y[train_idx],
        x[test_idx],
        None if y is None else y[test_idx],
        layout.classes,
        layout.skipped,
    )


def _folder_patches(layout: FolderLayout, root: Path, size: int) -> Dataset:
    """The patches of every image; an image smaller than the patch on a side gives none and is
    listed with the skipped files (its size is known from the header, so it is not decoded)."""
    colour = any(layout.headers[p][1] for p in layout.files)
    mode = "RGB" if colour else "L"
    order = torch.arange(len(layout.files))
    splits, small = [], []
    for what, idx in (("train", layout.train_idx), ("test", layout.test_idx)):
        chosen = order[idx].tolist()
        sides = {i: min(layout.headers[layout.files[i]][0]) for i in chosen}
        fits = [i for i in chosen if sides[i] >= size]
        if not fits:
            raise no_patch_error(f"folder:{root} ({what} split)", size, min(sides.values()))
        small += [i for i in chosen if sides[i] < size]
        images = (_chw(load_uint8(layout.files[i], mode)) for i in fits)
        labels = None if layout.labels is None else layout.labels[fits]
        splits.append(patch_split(images, labels, size, f"folder:{root} ({what} split)"))
    (train_x, train_y), (test_x, test_y) = splits
    skipped = layout.skipped + [
        (str(layout.files[i]), f"{_fmt(layout.headers[layout.files[i]][0])} (HxW) is smaller "
         f"than the {size}x{size} patches: no patch") for i in small]
    return Dataset(f"folder:{root}", train_x, train_y, test_x, test_y, layout.classes, skipped,
                   sources=len(layout.files) - len(small))


def _chw(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, 3) -> (C, H, W)."""
    # a copy: Pillow's arrays are read-only, and (H, W, 3) must become contiguous (C, H, W)
    return torch.from_numpy(np.array(a[None] if a.ndim == 2 else a.transpose(2, 0, 1)))


@register_dataset("folder:")
def _load_folder(arg: str, image_size) -> Dataset:
    return load_image_folder(arg, image_size)

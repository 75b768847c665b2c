"""Training on patches: every image cut into a grid of P x P patches, at its own size.

Photos come in many sizes, and a model trained on whole images learns one fixed size. With
`aekit train --patch P` (`load_dataset(name, patch=P)`) each image is cut into the
non-overlapping P x P patches that fit in it, the grid centred so that the margins left over are
split evenly, and the patches are the dataset: images of different sizes need no resize, no
pixel is stretched, and memory holds no more pixels than the images themselves. A patch keeps its
image's label and its image's split (all patches of a test image are test patches), so no test
pixel is seen in training. An image smaller than P on a side gives no patch (a folder's are
listed with its skipped files).

A model trained on patches works on whole images of any size afterwards: reconstruct, denoise,
inpaint and the anomaly heat maps run larger images through overlapping tiles of the training
size (aekit.data.tiles).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from aekit.errors import ConfigError, DataError

# The smallest patch side: the default conv halves an axis down to 4 pixels (models/conv.py).
MIN_PATCH = 4


def check_patch(size: int, image_size: tuple[int, int] | None = None) -> None:
    """A valid patch side, and not together with a resize (`image_size`)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < MIN_PATCH:
        raise DataError(f"--patch {size!r}: patches must be at least {MIN_PATCH} pixels a side")
    if image_size is not None:
        raise ConfigError("--patch and --image-size both set: patches are cut from the images "
                          "at their own size; give one of them")


def grid_offsets(length: int, size: int) -> list[int]:
    """Starts of the non-overlapping `size`-long windows that fit in `length`, centred."""
    n = length // size
    margin = (length - n * size) // 2
    return [margin + i * size for i in range(n)]


def _grid(x: torch.Tensor, size: int) -> torch.Tensor:
    """The grid of size x size patches of same-size images x (N, C, H, W): (N * gy * gx, C,
    size, size), image by image, rows first; empty when none fits."""
    n, c, h, w = x.shape
    ys, xs = grid_offsets(h, size), grid_offsets(w, size)
    if not ys or not xs:
        return x.new_empty((0, c, size, size))
    block = x[:, :, ys[0] : ys[-1] + size, xs[0] : xs[-1] + size]
    # (N, C, gy, size, gx, size) -> (N, gy, gx, C, size, size)
    block = block.reshape(n, c, len(ys), size, len(xs), size).permute(0, 2, 4, 1, 3, 5)
    return block.reshape(-1, c, size, size).contiguous()


def cut_patches(image: torch.Tensor, size: int) -> torch.Tensor:
    """The grid of size x size patches of one image (C, H, W): (M, C, size, size), rows first."""
    return _grid(image[None], size)


def no_patch_error(what: str, size: int, smallest: int | None) -> DataError:
    """The error for a split in which no image is as large as the patch."""
    hint = f" (the smallest side is {smallest} pixels)" if smallest is not None else ""
    return DataError(f"{what}: no image is at least {size}x{size}{hint}; pass a smaller --patch")


def patch_split(images: Iterable[torch.Tensor], labels: torch.Tensor | None, size: int,
                what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(patches (M, C, size, size), their images' labels (M,) or None) of a split's images,
    each (C, H, W) uint8 at its own size. `what` names the split in the error when no image is
    large enough (a folder checks that from the headers first, naming the smallest side)."""
    check_patch(size)
    pieces, owners = [], []
    for i, img in enumerate(images):
        pieces.append(cut_patches(img, size))
        owners.append(torch.full((len(pieces[-1]),), i, dtype=torch.int64))
    if not any(len(p) for p in pieces):
        raise no_patch_error(what, size, None)
    y = None if labels is None else labels[torch.cat(owners)]
    return torch.cat(pieces), y


def patch_tensor(x: torch.Tensor, labels: torch.Tensor | None, size: int, what: str
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """patch_split of same-size images x (N, C, H, W), in one reshape."""
    check_patch(size)
    patches = _grid(x, size)
    if len(patches) == 0:
        raise no_patch_error(what, size, min(x.shape[2:]) if len(x) else None)
    y = None if labels is None else labels.repeat_interleave(len(patches) // len(x))
    return patches, y

"""The dataset type every loader returns, and the helpers loaders share (splits, resizing,
registration with a description for `aekit datasets`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aekit.errors import DataError, check_range


@dataclass(repr=False)
class Dataset:
    """A train/test pair of uint8 image tensors (N, C, H, W) with optional int64 labels (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor | None
    test_x: torch.Tensor
    test_y: torch.Tensor | None
    classes: list[str] | None = field(default=None)
    # [(path, reason)] of files a folder loader could not read (or, with patches, found too
    # small) and left out.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # How many files the items came from, where that is not one item each (patches); else None.
    sources: int | None = None

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

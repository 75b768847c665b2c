"""Two image domains as one dataset of pairs, for the `swap` model (`--dataset A --dataset-b B`).

A pair is an A image and a B image stacked on the channel axis: uint8 (N, 2C, H, W), channels
[:C] from A and [C:] from B. The domains are unpaired (no B image belongs to an A image), so B is
matched to A by a seeded random permutation; the smaller domain is cycled, so every image of the
larger one appears exactly once per epoch and N = max(len(A), len(B)). Train and test splits are
paired separately. Labels are dropped: a pair has two.
"""

from __future__ import annotations

import torch

from aekit.data.dataset import Dataset
from aekit.errors import DataError

# Seed of the A-B matching; fixed so that a run's data is the same whenever it is reloaded.
PAIR_SEED = 0


def pair_indices(n_a: int, n_b: int, seed: int = PAIR_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(A indices, B indices), each of length max(n_a, n_b): A in order (cycled when it is the
    smaller domain), B by a seeded permutation (cycled when it is the smaller one)."""
    n = max(n_a, n_b)
    g = torch.Generator().manual_seed(int(seed))
    return torch.arange(n) % n_a, torch.randperm(n, generator=g) % n_b


def pair_datasets(a: Dataset, b: Dataset, what_a: str = "--dataset",
                  what_b: str = "--dataset-b", seed: int = PAIR_SEED) -> Dataset:
    """The paired Dataset of two loaded domains; a DataError when they cannot be stacked."""
    (ca, ha, wa), (cb, hb, wb) = a.shape, b.shape
    if ca != cb:
        raise DataError(f"{what_a} {a.name} has {ca}-channel images but {what_b} {b.name} has "
                        f"{cb}-channel ones; both domains need the same channel count")
    if (ha, wa) != (hb, wb):
        raise DataError(f"{what_a} {a.name} has {ha}x{wa} images but {what_b} {b.name} has "
                        f"{hb}x{wb}; pass --image-size HxW to resize both")
    splits = []
    for k, (xa, xb) in enumerate(((a.train_x, b.train_x), (a.test_x, b.test_x))):
        if len(xa) == 0 or len(xb) == 0:
            split = "train" if k == 0 else "test"
            empty = a.name if len(xa) == 0 else b.name
            raise DataError(f"dataset {empty} has no {split} images; each domain needs some")
        ia, ib = pair_indices(len(xa), len(xb), seed + k)
        splits.append(torch.cat([xa[ia], xb[ib]], dim=1))  # (N, 2C, H, W)
    return Dataset(f"{a.name}+{b.name}", splits[0], None, splits[1], None)


def load_pair(a: str, b: str, image_size: tuple[int, int] | str | None = None) -> Dataset:
    """Load datasets `a` and `b` (names as for `load_dataset`) and pair them: uint8
    (N, 2C, H, W) images, A's C channels first."""
    from aekit.data import load_dataset

    return pair_datasets(load_dataset(a, image_size), load_dataset(b, image_size))

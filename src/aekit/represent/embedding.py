"""Embeddings: a trained encoder turns images into feature vectors for downstream models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aekit.data.units import to_unit

SPLITS = ("test", "train", "all")


@torch.inference_mode()
def embed(model: nn.Module, x: torch.Tensor, batch_size: int = 500,
          keep: int | None = None) -> np.ndarray:
    """Codes of images x (uint8 or [0, 1] float, (N, C, H, W)) as float32 (N, D), flattened.

    A VAE gives its posterior mean. `keep` zeroes every unit after the first `keep` (for nested
    models) and returns only those `keep` columns.
    """
    from aekit import infer

    model.eval()
    device = next(model.parameters()).device
    out = [z.flatten(1).float().cpu()  # (B, D)
           for z in infer.batched(model, "encode", x, batch_size, lambda b: to_unit(b, device))]
    z = torch.cat(out).numpy()
    return z[:, :keep] if keep is not None else z


def dataset_split(ds, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels or None) of a Dataset's 'train', 'test' or 'all' (train then test)."""
    if split == "train":
        return ds.train_x, ds.train_y
    if split == "test":
        return ds.test_x, ds.test_y
    x = torch.cat([ds.train_x, ds.test_x])
    y = None if ds.train_y is None or ds.test_y is None else torch.cat([ds.train_y, ds.test_y])
    return x, y

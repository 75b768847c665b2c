"""Training-time augmentation of clean batches (the target and, before corruption, the input).

Drawn from the epoch's generator like the shuffle and the corruption noise, so `--resume` stays
exact. Only label-free, distribution-preserving transforms belong here: an autoencoder is scored
on reconstructing the test images as they are.
"""

from __future__ import annotations

import torch

from aekit.errors import ConfigError

AUGMENTS = ("none", "hflip")


def check_augment(kind: str) -> str:
    """Validate an augmentation name ("" means none)."""
    if (kind or "none") not in AUGMENTS:
        raise ConfigError(f"augment={kind!r} is not allowed; use one of {', '.join(AUGMENTS)}")
    return kind


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Apply `kind` to a float batch (B, C, H, W); "hflip" mirrors a random half of the images."""
    if not kind or kind == "none":
        return x
    flip = torch.rand(x.shape[0], generator=gen) < 0.5  # (B,) drawn on CPU: same on every device
    flip = flip.to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)

"""Small building blocks shared by the conv model and the seed presets."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError


def conv_out(size: int, kernel: int = 3, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution (or floor-mode pooling) along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_out_same(size: int, stride: int = 2) -> int:
    """Output length of a Keras/TF `padding='same'` pooling: ceil(size / stride)."""
    return math.ceil(size / stride)


def activation(name: str) -> nn.Module:
    """The activations a model option may name."""
    acts = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}
    try:
        return acts[name]()
    except KeyError:
        raise ConfigError(f"activation={name!r} is unknown; use one of {sorted(acts)}") from None


class Flatten(nn.Module):
    """(B, ...) -> (B, D); a module (not a reshape in forward) so `summary` lists it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Unflatten(nn.Module):
    """(B, D) -> (B, *shape)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Resize(nn.Module):
    """Nearest-neighbour resize to an exact size (TF1 `resize_images(NEAREST_NEIGHBOR)` indexing).

    Resizing to a size rather than by a factor lets odd sizes (7 -> 14 -> 28, 5 -> 9) round-trip.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = (int(size[0]), int(size[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == self.size:
            return x
        return F.interpolate(x, size=self.size, mode="nearest")

    def extra_repr(self) -> str:
        return f"size={self.size}"


class UpConv(nn.Sequential):
    """Nearest-neighbour resize to `size`, then a 3x3 'same' conv: the checkerboard-free upsampler
    (Odena et al., 2016) that seed 004 uses instead of transposed convolutions."""

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int]) -> None:
        super().__init__(Resize(size), nn.Conv2d(c_in, c_out, 3, padding=1))

"""Images of any size through a model of one fixed size: overlapping tiles, stitched seamlessly.

    out = map_tiles(fn, x, (h, w))        # x (N, C, H, W); fn: (B, C, h, w) -> (B, C', h, w)

An image of exactly the tile size goes through `fn` as it is (bit for bit what `fn(x)` gives).
A larger one is cut into tiles of the model's size that overlap by about half a tile
(`tile_starts`); each tile's output is weighted by a separable tent window (highest at the tile's
centre, small but positive at its edges) and the weighted outputs are divided by the summed
weights, so there are no seams and an identity `fn` gives the input back (to float rounding).
A side shorter than the tile is padded first (mirrored where the side allows it, else by
repeating the border) and cropped back after stitching. The result has the input's own size.

`TileGrid` is the same cut as an object, for callers that need the tiles themselves (scores per
tile, masks split alongside the image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def tile_starts(length: int, tile: int, stride: int | None = None) -> list[int]:
    """Tile offsets covering [0, length): the first at 0, the last at length - tile, evenly
    spread so that neighbours are at most `stride` apart (default half a tile)."""
    if length <= tile:
        return [0]
    step = max(1, stride if stride is not None else tile // 2)
    n = math.ceil((length - tile) / step) + 1
    return sorted({round(i * (length - tile) / (n - 1)) for i in range(n)})


def tent(n: int) -> torch.Tensor:
    """A positive triangular window: tile centres count more than tile edges when blending."""
    i = torch.arange(n, dtype=torch.float32)
    return torch.minimum(i + 1, n - i) / ((n + 1) / 2)


class TileGrid:
    """The overlapping tiles of (H, W) images for a model of size `tile` = (h, w).

    `split(x)` gives the tiles of every image, image by image ((N * len(grid), C, h, w));
    `stitch(tiles)` blends per-tile outputs (any channel count) back into (N, C', H, W).
    """

    def __init__(self, size: Sequence[int], tile: Sequence[int], stride: int | None = None
                 ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.tile = (int(tile[0]), int(tile[1]))
        if min(self.size) < 1 or min(self.tile) < 1:
            raise ValueError(f"image size {self.size} and tile {self.tile} must be positive")
        self.padded = (max(self.size[0], self.tile[0]), max(self.size[1], self.tile[1]))
        self.ys = tile_starts(self.padded[0], self.tile[0], stride)
        self.xs = tile_starts(self.padded[1], self.tile[1], stride)
        self.starts = [(y, x) for y in self.ys for x in self.xs]

    def __len__(self) -> int:
        return len(self.starts)

    def __repr__(self) -> str:
        return f"TileGrid(size={self.size}, tile={self.tile}, tiles={len(self)})"

    def pad(self, x: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
        """x (N, C, H, W) padded at the bottom/right to at least the tile size. `mode`:
        'reflect' (mirror; falls back to repeating the border where a side is too short to
        mirror) or 'constant' (zeros / False, e.g. for masks)."""
        ph, pw = self.padded[0] - x.shape[2], self.padded[1] - x.shape[3]
        if not (ph or pw):
            return x
        if mode == "constant":
            return F.pad(x, (0, pw, 0, ph))
        can_mirror = ph < x.shape[2] and pw < x.shape[3]
        dtype = x.dtype
        out = F.pad(x.float(), (0, pw, 0, ph), mode="reflect" if can_mirror else "replicate")
        return out.to(dtype)

    def split(self, x: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
        """The tiles of images x (N, C, H, W), image-major: (N * len(self), C, h, w)."""
        self._check(x)
        xp = self.pad(x, mode)
        th, tw = self.tile
        tiles = torch.stack([xp[:, :, y : y + th, x0 : x0 + tw] for y, x0 in self.starts], 1)
        return tiles.reshape(-1, x.shape[1], th, tw)

    def window(self) -> torch.Tensor:
        """The blending weight of one tile (h, w)."""
        return tent(self.tile[0])[:, None] * tent(self.tile[1])[None, :]

    def stitch(self, tiles: torch.Tensor) -> torch.Tensor:
        """Per-tile outputs (N * len(self), C', h, w), as `split` orders them, blended into
        (N, C', H, W) float32."""
        t = len(self)
        if tiles.ndim != 4 or len(tiles) % t or tuple(tiles.shape[2:]) != self.tile:
            raise ValueError(f"stitch: expected ({t} * N, C, {self.tile[0]}, {self.tile[1]}) "
                             f"tiles, got {tuple(tiles.shape)}")
        th, tw = self.tile
        tiles = tiles.float().reshape(-1, t, *tiles.shape[1:])
        n, c = tiles.shape[0], tiles.shape[2]
        win = self.window()
        acc = torch.zeros((n, c, *self.padded))
        weight = torch.zeros(self.padded)
        for k, (y, x0) in enumerate(self.starts):
            acc[:, :, y : y + th, x0 : x0 + tw] += tiles[:, k] * win
            weight[y : y + th, x0 : x0 + tw] += win
        h, w = self.size
        return (acc / weight)[:, :, :h, :w]

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[2:]) != self.size:
            raise ValueError(f"TileGrid for {self.size[0]}x{self.size[1]} images got shape "
                             f"{tuple(x.shape)}; expected (N, C, {self.size[0]}, {self.size[1]})")


def map_tiles(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
              tile: Sequence[int], batch_size: int = 256, stride: int | None = None
              ) -> torch.Tensor:
    """fn applied to images x (N, C, H, W) of any size through overlapping tiles of size
    `tile`, `batch_size` tiles per call; (N, C', H, W). Images of the tile size are passed to
    fn as they are (batched), with no blending."""
    batch_size = max(1, int(batch_size))
    if tuple(x.shape[2:]) == tuple(int(s) for s in tile):
        return torch.cat([fn(b) for b in x.split(batch_size)])
    grid = TileGrid(x.shape[2:], tile, stride)
    tiles = grid.split(x)
    return grid.stitch(torch.cat([fn(b) for b in tiles.split(batch_size)]))


def is_larger(size: Sequence[int], tile: Sequence[int]) -> bool:
    """True for an (H, W) at least the tile's size on both sides and larger on one."""
    h, w = (int(s) for s in size)
    th, tw = (int(s) for s in tile)
    return h >= th and w >= tw and (h, w) != (th, tw)


__all__ = ["TileGrid", "is_larger", "map_tiles", "tent", "tile_starts"]

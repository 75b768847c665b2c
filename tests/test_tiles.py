"""aekit.data.tiles: overlapping tiles stitched without seams, any image size in, the same out."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.data.tiles import TileGrid, is_larger, map_tiles, tent, tile_starts

sizes = st.integers(1, 70)
tiles = st.integers(1, 24)


@settings(max_examples=150, deadline=None)
@given(h=sizes, w=sizes, th=tiles, tw=tiles, c=st.sampled_from([1, 3]), n=st.integers(1, 3),
       batch=st.integers(1, 50))
def test_identity_stitches_back_the_input_at_its_own_size(h, w, th, tw, c, n, batch):
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(h * 1000 + w))
    out = map_tiles(lambda t: t, x, (th, tw), batch_size=batch)
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-6, rtol=0)


@settings(max_examples=80, deadline=None)
@given(length=st.integers(1, 300), tile=st.integers(1, 40))
def test_tiles_cover_every_pixel_with_about_half_a_tile_of_overlap(length, tile):
    starts = tile_starts(length, tile)
    assert starts[0] == 0 and starts == sorted(set(starts))
    covered = set()
    for s in starts:
        covered |= set(range(s, min(s + tile, length)))
    assert covered == set(range(length))
    if length > tile:
        assert starts[-1] == length - tile
        assert max(b - a for a, b in zip(starts, starts[1:], strict=False)) <= max(1, tile // 2)
    assert bool((tent(tile) > 0).all())


def test_model_size_images_go_through_fn_unchanged():
    x = torch.rand(5, 1, 8, 8)
    seen = []

    def fn(t):
        seen.append(t.shape)
        return t * 2

    assert torch.equal(map_tiles(fn, x, (8, 8), batch_size=2), x * 2)  # bit for bit
    assert seen == [(2, 1, 8, 8), (2, 1, 8, 8), (1, 1, 8, 8)]


def test_no_seams_for_a_smooth_function_and_other_output_channels():
    """A per-pixel function commutes with tiling; the output may have other channels."""
    x = torch.rand(2, 3, 37, 53)
    out = map_tiles(lambda t: t.mean(1, keepdim=True) ** 2, x, (16, 16), batch_size=7)
    assert out.shape == (2, 1, 37, 53)
    assert torch.allclose(out, x.mean(1, keepdim=True) ** 2, atol=1e-6)


def test_grid_split_and_stitch_are_image_major_and_checked():
    grid = TileGrid((20, 30), (10, 10))
    x = torch.arange(2 * 20 * 30, dtype=torch.float32).reshape(2, 1, 20, 30)
    t = grid.split(x)
    assert t.shape == (2 * len(grid), 1, 10, 10)
    assert torch.equal(t[0], x[0, :, :10, :10]) and torch.equal(t[len(grid)], x[1, :, :10, :10])
    assert torch.allclose(grid.stitch(t), x)
    with pytest.raises(ValueError, match="TileGrid for 20x30"):
        grid.split(x[:, :, :10])
    with pytest.raises(ValueError, match="stitch"):
        grid.stitch(t[:-1])
    small = TileGrid((5, 40), (12, 12))  # shorter than a tile: padded, then cropped back
    assert small.padded == (12, 40)
    assert is_larger((16, 12), (12, 12)) and not is_larger((12, 12), (12, 12))
    assert not is_larger((16, 8), (12, 12))

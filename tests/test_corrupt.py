"""Corruptions: shapes, ranges, determinism per generator, masks, and the spec parser."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.data.corrupt import (
    LUMA,
    MASK_FILL,
    Corruption,
    block_mask,
    fill_masked,
    parse_corruption,
    to_grayscale,
)
from aekit.errors import ConfigError

SPECS = ["gaussian:0.5", "salt-pepper:0.1", "mask:blocks", "mask:blocks:2:5", "mask:crosshair",
         "mask:crosshair:3", "mask:random-pixels:0.3", "grayscale", "downscale:2",
         "gaussian:0.3+mask:blocks", "mask:crosshair+salt-pepper:0.05", "affine", "affine:0.5",
         "affine+mask:blocks"]


def _x(b=4, c=3, h=28, w=28, seed=0) -> torch.Tensor:
    return torch.rand((b, c, h, w), generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("spec", SPECS)
def test_shape_range_and_determinism(spec):
    c = parse_corruption(spec)
    x = _x()
    before = x.clone()
    a, b, other = c.apply(x, _gen(1)), c.apply(x, _gen(1)), c.apply(x, _gen(2))
    assert torch.equal(x, before)  # the clean batch is never modified
    assert a.x.shape == x.shape and a.x.dtype == x.dtype
    assert float(a.x.min()) >= 0.0 and float(a.x.max()) <= 1.0
    assert torch.equal(a.x, b.x)
    if spec not in ("grayscale", "downscale:2"):  # the only deterministic ones
        assert not torch.equal(a.x, other.x)
    assert (a.mask is not None) == c.has_mask
    if a.mask is not None:
        assert a.mask.shape == (4, 1, 28, 28) and a.mask.dtype == torch.bool
        assert torch.equal(a.mask, b.mask)
    assert torch.equal(c(x, _gen(1)), a.x)  # the training loop's hook


def test_affine_warps_small_and_keeps_the_image_at_tiny_strength():
    x = _x(c=1)
    c = parse_corruption("affine:1")
    assert c.spec == "affine" and parse_corruption("affine:0.5").spec == "affine:0.5"
    out = c(x, _gen(0))
    assert not torch.allclose(out, x, atol=1e-3)
    tiny = parse_corruption("affine:0.0001")(x, _gen(0))
    assert torch.allclose(tiny, x, atol=0.02)  # near the identity map


def test_gaussian_is_the_seed_protocol():
    x = _x(c=1)
    out = parse_corruption("gaussian:0.5")(x, _gen(3))
    expected = (x + 0.5 * torch.randn(x.shape, generator=_gen(3))).clamp(0, 1)
    assert torch.equal(out, expected)


def test_masked_pixels_are_filled_and_the_rest_untouched():
    x = _x()
    r = parse_corruption("mask:blocks").apply(x, _gen())
    m = r.mask.expand_as(x)
    assert bool((r.x[m] == MASK_FILL).all())
    assert torch.equal(r.x[~m], x[~m])
    assert torch.equal(fill_masked(x, r.mask), r.x)


def test_block_mask_geometry():
    r = parse_corruption("mask:blocks:2:5").apply(_x(b=50), _gen())
    area = r.mask.flatten(1).sum(1)
    assert bool((area >= 25).all()) and bool((area <= 50).all())
    # Default count: about one 8x8 block per 256 pixels -> 3 on 28x28.
    area = parse_corruption("mask:blocks").apply(_x(b=50), _gen()).mask.flatten(1).sum(1)
    assert bool((area >= 64).all()) and bool((area <= 192).all()) and int(area.max()) > 128


def test_crosshair_covers_a_full_row_band_and_column_band():
    m = parse_corruption("mask:crosshair").apply(_x(b=20, h=28, w=20), _gen()).mask[:, 0]
    assert bool((m.flatten(1).sum(1) == 2 * 28 + 2 * 20 - 4).all())
    full_rows = m.all(2).sum(1)
    full_cols = m.all(1).sum(1)
    assert bool((full_rows == 2).all()) and bool((full_cols == 2).all())


def test_random_pixels_fraction_and_salt_pepper_values():
    m = parse_corruption("mask:random-pixels:0.3").apply(_x(b=64), _gen()).mask
    assert abs(float(m.float().mean()) - 0.3) < 0.02
    x = torch.full((64, 3, 28, 28), 0.5)
    out = parse_corruption("salt-pepper:0.2")(x, _gen())
    hit = (out != 0.5).any(1)
    assert abs(float(hit.float().mean()) - 0.2) < 0.02
    assert set(out.unique().tolist()) == {0.0, 0.5, 1.0}
    assert bool((out.amin(1) == out.amax(1)).all())  # all channels of a pixel agree


def test_grayscale_and_downscale():
    x = _x()
    g = parse_corruption("grayscale")(x, _gen())
    luma = sum(w * x[:, i] for i, w in enumerate(LUMA))
    assert torch.allclose(g[:, 0], luma, atol=1e-6)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    grey = _x(c=1)
    assert torch.equal(to_grayscale(grey), grey)
    flat = torch.full((2, 1, 28, 28), 0.25)
    assert torch.allclose(parse_corruption("downscale:3")(flat, _gen()), flat)
    with pytest.raises(ConfigError, match="larger than"):
        parse_corruption("downscale:40")(flat, _gen())


def test_composition_order_and_mask_union():
    c = parse_corruption("mask:crosshair + gaussian:0.2 + mask:blocks:1")
    assert c.spec == "mask:crosshair+gaussian:0.2+mask:blocks:1"
    assert c.has_mask and c.has_noise and not c.is_grayscale
    assert c.mask_only().spec == "mask:crosshair+mask:blocks:1"
    r = c.apply(_x(), _gen())
    cross = parse_corruption("mask:crosshair").apply(_x(), _gen()).mask
    assert bool((r.mask | cross).eq(r.mask).all())  # the union contains the crosshair
    assert bool((r.x[r.mask.expand_as(r.x)] == MASK_FILL).all())


@pytest.mark.parametrize("spec, needle", [
    ("", "empty corruption"),
    ("gaussian", "takes one value"),
    ("gaussian:abc", "not a number"),
    ("gaussian:0", "out of range"),
    ("gaussian:-1", "out of range"),
    ("gaussian:nan", "finite"),
    ("gausian:0.5", "did you mean 'gaussian'"),
    ("salt-pepper:1.5", "out of range"),
    ("mask", "say which mask"),
    ("mask:block", "did you mean 'mask:blocks'"),
    ("mask:blocks:0", "out of range"),
    ("mask:blocks:2.5", "not an integer"),
    ("mask:blocks:1:2:3", "up to two"),
    ("mask:random-pixels", "one fraction"),
    ("grayscale:1", "no value"),
    ("downscale:1", "out of range"),
    ("gaussian:0.5+", "empty part"),
    ("gaussian:0.5++mask:blocks", "empty part"),
    ("blur:2", "unknown corruption"),
    ("affine:0", "affine S"),
    ("affine:1:2", "affine takes"),
])
def test_parser_errors_name_the_problem(spec, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_corruption(spec)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="gaussin:-+0123456789.maskblocrhpxelygdwt ", max_size=30))
def test_parser_raises_only_config_errors(text):
    try:
        c = parse_corruption(text)
    except ConfigError as e:
        assert str(e)
    else:
        assert isinstance(c, Corruption) and parse_corruption(c.spec).spec == c.spec


_OPS = st.one_of(
    st.floats(1e-3, 10, allow_nan=False).map(lambda s: f"gaussian:{s!r}"),
    st.floats(1e-3, 1, allow_nan=False).map(lambda p: f"salt-pepper:{p!r}"),
    st.floats(1e-3, 1, allow_nan=False).map(lambda p: f"mask:random-pixels:{p!r}"),
    st.integers(1, 6).map(lambda n: f"mask:blocks:{n}"),
    st.integers(1, 4).map(lambda w: f"mask:crosshair:{w}"),
    st.just("grayscale"), st.just("mask:blocks"), st.integers(2, 8).map(lambda k: f"downscale:{k}"),
    st.floats(1e-3, 4, allow_nan=False).map(lambda s: f"affine:{s!r}"),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_OPS, min_size=1, max_size=4), st.integers(0, 2**31))
def test_valid_specs_round_trip_and_reproduce(ops, seed):
    c = parse_corruption("+".join(ops))
    again = parse_corruption(c.spec)
    assert again.spec == c.spec
    x = _x(b=2, h=16, w=16)
    a, b = c.apply(x, _gen(seed)), again.apply(x, _gen(seed))
    assert torch.equal(a.x, b.x)
    assert 0.0 <= float(a.x.min()) and float(a.x.max()) <= 1.0


def test_default_blocks_leave_most_of_a_small_image():
    """The default mask:blocks removes about a quarter of any image: on 8x8 not all of it (an
    8x8 square would), on 28x28 the same three 8x8 squares as always."""
    spec = parse_corruption("mask:blocks")
    for h, w, low, high in [(8, 8, 0.05, 0.4), (12, 12, 0.05, 0.4), (28, 28, 0.1, 0.3)]:
        out = spec(torch.ones(16, 1, h, w), torch.Generator().manual_seed(0))
        removed = float((out == 0).float().mean())
        assert low < removed < high, (h, w, removed)
    ref = block_mask((16, 28, 28), torch.Generator().manual_seed(1), 3, 8)
    got = spec(torch.ones(16, 1, 28, 28), torch.Generator().manual_seed(1)) == 0
    assert torch.equal(got, ref)

"""Seeded, composable image corruptions for restoration training (`aekit train --corrupt SPEC`).

A spec is one or more operations joined by '+', applied left to right:

    gaussian:SIGMA            clip(x + SIGMA * N(0, 1), 0, 1)   (the seed protocol uses 0.5)
    salt-pepper:P             each pixel (all channels) set to 0 or 1 with probability P
    mask:blocks[:N[:SIZE]]    N random SIZE x SIZE squares removed (default: SIZE 8, or a third
                              of the shorter side below 24 px; N removes about a quarter)
    mask:crosshair[:WIDTH]    a full-length horizontal + vertical bar of WIDTH pixels (default 2)
                              crossing at a random point of the image's central half
    mask:random-pixels:P      each pixel removed with probability P
    grayscale                 RGB -> luma (ITU-R BT.601), repeated on the 3 channels
    downscale:K               K x K average pooling, then bilinear back to the original size
    affine[:S]                a random small affine warp per image (rotation up to 15*S degrees,
                              scale 1 +- 0.1*S, shift up to 0.1*S of the side; S = 1 by default,
                              zero fill): the model learns to undo small deformations, which
                              makes its code less sensitive to them (few-label pretraining)

Removed ("masked") pixels are set to MASK_FILL (0, black) in every channel after all the other
operations (so they are exactly 0 whatever the order; noise never lands on them): the model keeps
its C input channels, so one network and one training loop serve every corruption. The mask
itself (True = missing) is returned by `Corruption.apply`, so inpainting can keep the known pixels
exactly and replace only the missing ones. Every random draw comes from the `torch.Generator`
passed in, so a corruption is reproducible per generator (fresh noise each epoch in training).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aekit.data.augment import warp
from aekit.errors import ConfigError

MASK_FILL = 0.0
BLOCK_SIZE = 8
CROSSHAIR_WIDTH = 2
# ITU-R BT.601 luma, the weights Pillow's convert("L") uses.
LUMA = (0.299, 0.587, 0.114)

NOISE_KINDS = ("gaussian", "salt-pepper", "downscale", "affine")
MASK_KINDS = ("blocks", "crosshair", "random-pixels")
SPEC_HELP = ("gaussian:SIGMA, salt-pepper:P, mask:blocks[:N[:SIZE]], mask:crosshair[:WIDTH], "
             "mask:random-pixels:P, grayscale, downscale:K, affine[:S]; join with '+', "
             "e.g. gaussian:0.3+mask:blocks")


@dataclass(frozen=True)
class Corrupted:
    """A corrupted batch: `x` (B, C, H, W) in [0, 1] and `mask` (B, 1, H, W) bool (True =
    missing pixel) or None when no operation removed pixels."""

    x: torch.Tensor
    mask: torch.Tensor | None


def _rand(shape: tuple[int, ...], gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) drawn on the CPU generator (reproducible on any device), moved to x's."""
    return torch.rand(shape, generator=gen).to(like.device)


def _randn(shape: tuple[int, ...], gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(like.device)


def _randint(high: int, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, max(1, high), shape, generator=gen)


# --- the operations: (x, gen) -> (x, mask or None) -----------------------------------------------

def gaussian(x: torch.Tensor, gen: torch.Generator, sigma: float) -> tuple:
    return (x + sigma * _randn(tuple(x.shape), gen, x)).clamp_(0.0, 1.0), None


def salt_pepper(x: torch.Tensor, gen: torch.Generator, p: float) -> tuple:
    b, _, h, w = x.shape
    u = _rand((b, 1, h, w), gen, x)
    hit, salt = u < p, u < p / 2  # one draw decides both: salt is the lower half of the hits
    return torch.where(hit, salt.to(x.dtype), x), None


def block_mask(shape: tuple[int, int, int], gen: torch.Generator, count: int, size: int
               ) -> torch.Tensor:
    """(B, 1, H, W) bool: `count` random size x size squares per image (clipped to it)."""
    b, h, w = shape
    sh, sw = min(size, h), min(size, w)
    y0 = _randint(h - sh + 1, (b, count, 1), gen)
    x0 = _randint(w - sw + 1, (b, count, 1), gen)
    rows, cols = torch.arange(h), torch.arange(w)
    in_y = (rows >= y0) & (rows < y0 + sh)  # (B, N, H)
    in_x = (cols >= x0) & (cols < x0 + sw)  # (B, N, W)
    return (in_y[..., :, None] & in_x[..., None, :]).any(1)[:, None]  # (B, 1, H, W)


def crosshair_mask(shape: tuple[int, int, int], gen: torch.Generator, width: int
                   ) -> torch.Tensor:
    """(B, 1, H, W) bool: one full-length horizontal and one vertical bar per image."""
    b, h, w = shape
    cy = h // 4 + _randint(max(1, h // 2), (b, 1), gen) - width // 2
    cx = w // 4 + _randint(max(1, w // 2), (b, 1), gen) - width // 2
    rows, cols = torch.arange(h), torch.arange(w)
    in_y = (rows >= cy) & (rows < cy + width)  # (B, H)
    in_x = (cols >= cx) & (cols < cx + width)  # (B, W)
    return (in_y[:, :, None] | in_x[:, None, :])[:, None]  # (B, 1, H, W)


def pixel_mask(shape: tuple[int, int, int], gen: torch.Generator, p: float) -> torch.Tensor:
    return torch.rand((shape[0], 1, shape[1], shape[2]), generator=gen) < p


def fill_masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The model input for inpainting: known pixels as they are, missing ones set to MASK_FILL."""
    return x.masked_fill(mask.to(x.device), MASK_FILL)


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> luma repeated on 3 channels; a 1-channel image is returned as is."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ConfigError(f"grayscale needs 1- or 3-channel images, got {x.shape[1]} channels")
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True).expand_as(x).contiguous()


def downscale(x: torch.Tensor, k: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if k > min(h, w):
        raise ConfigError(f"downscale:{k} is larger than the {h}x{w} images; use K <= {min(h, w)}")
    small = F.avg_pool2d(x, k, ceil_mode=True)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp_(0, 1)


def affine(x: torch.Tensor, gen: torch.Generator, strength: float) -> torch.Tensor:
    """Each image warped by its own random rotation, scale and shift (see the module doc)."""
    u = torch.rand(x.shape[0], 4, generator=gen) * 2 - 1  # (B, 4) in [-1, 1), drawn on the CPU
    angle = u[:, 0] * math.radians(15) * strength
    scale = 1 + 0.1 * strength * u[:, 1]
    shift = 0.2 * strength * u[:, 2:]  # grid units span 2 per side: 0.2 = a tenth of the side
    return warp(x, angle, scale, shift).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Op:
    """One parsed operation: its canonical text and the function applying it."""

    text: str
    kind: str  # 'noise', 'mask' or 'color'
    fn: Callable[[torch.Tensor, torch.Generator], tuple]


class Corruption:
    """A parsed spec; `corruption(x, gen)` is the training loop's hook (returns the model input)."""

    def __init__(self, ops: list[Op]) -> None:
        if not ops:
            raise ConfigError(f"empty corruption spec; use {SPEC_HELP}")
        self.ops = tuple(ops)

    @property
    def spec(self) -> str:
        """The canonical spec (defaults spelled out); parsing it gives the same corruption."""
        return "+".join(op.text for op in self.ops)

    @property
    def has_mask(self) -> bool:
        return any(op.kind == "mask" for op in self.ops)

    @property
    def has_noise(self) -> bool:
        return any(op.kind == "noise" for op in self.ops)

    @property
    def is_grayscale(self) -> bool:
        return any(op.kind == "color" for op in self.ops)

    def mask_only(self) -> Corruption:
        """The mask operations alone (what `aekit inpaint --mask-spec` draws)."""
        return Corruption([op for op in self.ops if op.kind == "mask"])

    def apply(self, x: torch.Tensor, gen: torch.Generator) -> Corrupted:
        """Corrupt a float batch (B, C, H, W) in [0, 1]; `x` itself is not modified."""
        if x.ndim != 4:
            raise ConfigError(f"corruption {self.spec}: expected images (B, C, H, W), got "
                              f"shape {tuple(x.shape)}")
        out, mask = x.clone(), None
        for op in self.ops:
            out, m = op.fn(out, gen)
            if m is not None:
                m = m.to(out.device)
                mask = m if mask is None else mask | m
        # Filled last, so a missing pixel is exactly MASK_FILL whatever the order of operations.
        return Corrupted(out if mask is None else fill_masked(out, mask), mask)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.apply(x, gen).x

    def __repr__(self) -> str:
        return f"Corruption({self.spec!r})"


# --- parsing -------------------------------------------------------------------------------------

def _number(text: str, what: str, cast=float):
    try:
        value = cast(text)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise ConfigError(f"corruption {what}: {text!r} is not {kind}") from None
    if cast is float and not math.isfinite(value):
        raise ConfigError(f"corruption {what}: {text!r} is not a finite number")
    return value


def _fmt(value: float) -> str:
    """Shortest text that parses back to exactly `value` ('0.5', '1e-05', '2')."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _check(what: str, value, low, high, low_open: bool = False) -> None:
    bad = value < low or value > high or (low_open and value == low)
    if bad:
        lo = "(" if low_open else "["
        raise ConfigError(f"corruption {what}={value:g} is out of range; allowed: "
                          f"{lo}{low:g}, {high:g}]")


def _args(part: str, name: str, given: list[str], low: int, high: int, usage: str) -> None:
    if not low <= len(given) <= high:
        raise ConfigError(f"corruption {part!r}: {name} takes {usage}")


def _parse_op(part: str) -> Op:
    name, *args = part.split(":")
    name = name.strip().lower()
    args = [a.strip() for a in args]
    if name == "gaussian":
        _args(part, name, args, 1, 1, "one value, the noise std: gaussian:0.5")
        sigma = _number(args[0], "gaussian sigma")
        _check("gaussian sigma", sigma, 0.0, 10.0, low_open=True)
        return Op(f"gaussian:{_fmt(sigma)}", "noise", lambda x, g: gaussian(x, g, sigma))
    if name == "salt-pepper":
        _args(part, name, args, 1, 1, "one value, the fraction of pixels hit: salt-pepper:0.1")
        p = _number(args[0], "salt-pepper P")
        _check("salt-pepper P", p, 0.0, 1.0, low_open=True)
        return Op(f"salt-pepper:{_fmt(p)}", "noise", lambda x, g: salt_pepper(x, g, p))
    if name == "downscale":
        _args(part, name, args, 1, 1, "one integer factor: downscale:2")
        k = _number(args[0], "downscale K", int)
        _check("downscale K", k, 2, 64)
        return Op(f"downscale:{k}", "noise", lambda x, g: (downscale(x, k), None))
    if name == "affine":
        _args(part, name, args, 0, 1, "at most one strength: affine or affine:0.5")
        strength = _number(args[0], "affine S") if args else 1.0
        _check("affine S", strength, 0.0, 4.0, low_open=True)
        text = "affine" + (f":{_fmt(strength)}" if strength != 1.0 else "")
        return Op(text, "noise", lambda x, g: (affine(x, g, strength), None))
    if name == "grayscale":
        _args(part, name, args, 0, 0, "no value: grayscale")
        return Op("grayscale", "color", lambda x, g: (to_grayscale(x), None))
    if name == "mask":
        return _parse_mask(part, args)
    known = ["gaussian", "salt-pepper", "mask", "grayscale", "downscale", "affine"]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown corruption {name!r}{hint}; use {SPEC_HELP}")


def _parse_mask(part: str, args: list[str]) -> Op:
    if not args or not args[0]:
        raise ConfigError(f"corruption {part!r}: say which mask: mask:{'|mask:'.join(MASK_KINDS)}")
    kind, rest = args[0].lower(), args[1:]

    def mask_op(text: str, make) -> Op:
        def fn(x: torch.Tensor, g: torch.Generator) -> tuple:
            return x, make((x.shape[0], x.shape[2], x.shape[3]), g)

        return Op(text, "mask", fn)

    if kind == "blocks":
        _args(part, "mask:blocks", rest, 0, 2, "up to two integers: mask:blocks[:COUNT[:SIZE]]")
        size = _number(rest[1], "mask:blocks SIZE", int) if len(rest) > 1 else BLOCK_SIZE
        _check("mask:blocks SIZE", size, 1, 4096)
        if rest:
            count = _number(rest[0], "mask:blocks COUNT", int)
            _check("mask:blocks COUNT", count, 1, 1024)
            text = f"mask:blocks:{count}" + (f":{size}" if size != BLOCK_SIZE else "")
            return mask_op(text, lambda s, g: block_mask(s, g, count, size))
        # Default size: 8, or a third of the shorter side of a smaller image (an 8x8 square
        # would remove every pixel of an 8x8 image); default count: about a quarter of the
        # image removed (3 blocks on 28x28, one per 256 pixels at size 8).
        def default_blocks(s, g):
            side = min(BLOCK_SIZE, max(1, min(s[1], s[2]) // 3))
            return block_mask(s, g, max(1, round(s[1] * s[2] / (4 * side * side))), side)

        return mask_op("mask:blocks", default_blocks)
    if kind == "crosshair":
        _args(part, "mask:crosshair", rest, 0, 1, "at most one integer: mask:crosshair[:WIDTH]")
        width = _number(rest[0], "mask:crosshair WIDTH", int) if rest else CROSSHAIR_WIDTH
        _check("mask:crosshair WIDTH", width, 1, 4096)
        text = "mask:crosshair" + (f":{width}" if width != CROSSHAIR_WIDTH else "")
        return mask_op(text, lambda s, g: crosshair_mask(s, g, width))
    if kind == "random-pixels":
        _args(part, "mask:random-pixels", rest, 1, 1, "one fraction: mask:random-pixels:0.5")
        p = _number(rest[0], "mask:random-pixels P")
        _check("mask:random-pixels P", p, 0.0, 1.0, low_open=True)
        return mask_op(f"mask:random-pixels:{_fmt(p)}", lambda s, g: pixel_mask(s, g, p))
    close = difflib.get_close_matches(kind, MASK_KINDS, n=1)
    hint = f" (did you mean 'mask:{close[0]}'?)" if close else ""
    raise ConfigError(f"unknown mask {kind!r}{hint}; use mask:blocks, mask:crosshair or "
                      "mask:random-pixels:P")


def parse_corruption(spec: str) -> Corruption:
    """Parse e.g. 'gaussian:0.5' or 'gaussian:0.3+mask:blocks'; ConfigError on any mistake."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty corruption spec; use {SPEC_HELP}")
    parts = [p.strip() for p in spec.split("+")]
    if any(not p for p in parts):
        raise ConfigError(f"corruption {spec!r}: empty part around '+'; use {SPEC_HELP}")
    return Corruption([_parse_op(p) for p in parts])

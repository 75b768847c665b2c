"""Pixel units and image sizes: the one place that turns uint8 images into [0, 1] floats and
parses "HxW" size strings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from aekit.errors import ConfigError, DataError

MAX_SIDE = 8192  # the largest image side aekit accepts anywhere (sizes, resizes, loaders)


def to_unit(x: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is taken as already in [0, 1].

    Optionally moves the batch to `device` first, so datasets stay uint8 in memory (4x smaller)
    and are converted one batch at a time where they are used.
    """
    if device is not None:
        x = x.to(device, non_blocking=True)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def parse_image_size(text: str | tuple[int, int] | None,
                     name: str = "image_size") -> tuple[int, int] | None:
    """'28x28' / '32' / (h, w) -> (h, w); None stays None. Errors name the parameter `name`."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.lower().replace("×", "x").split("x")
        try:
            dims = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"{name}={text!r}: expected HxW, e.g. 28x28") from None
        if len(dims) == 1:
            dims = dims * 2
    else:
        dims = [int(d) for d in text]
    if len(dims) != 2 or not all(1 <= d <= MAX_SIDE for d in dims):
        raise ConfigError(f"{name}={text!r}: expected HxW with 1 <= H, W <= {MAX_SIDE}, "
                          "e.g. 28x28")
    return dims[0], dims[1]


def as_image_tensor(X: Any, name: str = "X", shape: tuple[int, int, int] | None = None
                    ) -> torch.Tensor:
    """Validate X and return a (N, C, H, W) tensor: uint8 kept as uint8, floats as float32 in
    [0, 1]. Integer images must lie in [0, 255], float images in [0, 1] (see `as_images`)."""
    return as_images(X, name, shape)[0]


# The layouts images may come in, as `as_images` reports them and `to_layout` restores them:
# flat (N, C*H*W) rows, (N, H, W) grey, (N, C, H, W), channels-last (N, H, W, C).
LAYOUTS = ("flat", "nhw", "nchw", "nhwc")


def as_images(X: Any, name: str = "X", shape: tuple[int, ...] | None = None, *,
              owner: str = "the model", int_white: float = 255.0, float_white: float = 1.0,
              larger: bool = False) -> tuple[torch.Tensor, str]:
    """Validate X; return ((N, C, H, W) tensor, layout it came in).

    X: a numpy array, a torch tensor or anything numpy reads as one (nested lists, a DataFrame);
    object arrays of numbers are converted. `shape` is (C, H, W) or (H, W): what a fitted model
    expects, or how 2-D rows unflatten (without it a row of D values is a 1 x D image).
    Units: integer images count `int_white` (default 255) as white, float images `float_white`
    (default 1.0); the result is uint8 (integers with white 255, kept compact) or float32 in
    [0, 1]. Values below 0 or above white are an error, never clipped. `larger=True` (with a
    (C, H, W) `shape`) also accepts images (not rows) of C channels at least H x W, for callers
    that process them in tiles (aekit.data.tiles).
    """
    t = read_array(X, name)
    t, layout = _as_nchw(t, name, shape, owner, larger)
    return _to_units(t, name, int_white, float_white), layout


def read_array(X: Any, name: str = "X") -> torch.Tensor:
    """X as a tensor of its own numbers (no reshaping or scaling): torch as is, numpy and
    array-likes through numpy; wrong types (strings, dicts, sparse matrices) are an
    AekitTypeError."""
    from aekit.errors import AekitTypeError

    if isinstance(X, torch.Tensor):
        t = X.detach()
        if t.is_complex():
            raise DataError(f"{name}: Complex data not supported; images are real numbers")
        if t.dtype == torch.bool:
            raise AekitTypeError(f"{name}: dtype {t.dtype} is not an image type; use uint8, "
                                 "integers or floats")
        return t
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy.sparse
        raise AekitTypeError(f"{name}: sparse input is not supported; pass a dense array "
                             f"({name}.toarray())")
    try:
        a = np.asarray(X)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise DataError(f"{name}: cannot be read as an array of images ({e})") from None
    if a.ndim == 0 or a.dtype.kind in "USVMm":
        raise AekitTypeError(f"{name}: expected images as a numpy array, torch tensor or nested "
                             f"lists of numbers, got {type(X).__name__}"
                             + (f" of {a.dtype}" if a.ndim else ""))
    if a.dtype == object:
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise AekitTypeError(f"{name}: holds something that is not a number ({e})") from None
    if a.dtype.kind == "c":
        raise DataError(f"{name}: Complex data not supported; images are real numbers")
    if a.dtype.kind == "b":
        raise AekitTypeError(f"{name}: dtype {a.dtype} is not an image type; use uint8, "
                             "integers or floats")
    if a.dtype.kind == "f" and a.dtype not in (np.float16, np.float32, np.float64):
        a = a.astype(np.float64)  # e.g. longdouble, which torch lacks
    elif not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype.kind in "ui" and a.dtype != np.uint8:
        if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
            raise DataError(f"{name}: integer pixel values up to {a.max()} are not image values")
        a = a.astype(np.int64)  # torch lacks most unsigned types; the range is checked later
    if not a.flags.writeable:  # torch wants writable memory (e.g. a read-only memmap)
        a = a.copy()
    return torch.from_numpy(np.ascontiguousarray(a))


def _full_shape(shape: tuple[int, ...], d: int | None = None) -> tuple[int, ...] | None:
    """(C, H, W) from (C, H, W), or from (H, W) and a row length d; None if it does not fit."""
    if len(shape) == 3:
        return tuple(int(s) for s in shape)
    h, w = (int(s) for s in shape)
    if d is None or d % (h * w):
        return None
    return (d // (h * w), h, w)


def _as_nchw(t: torch.Tensor, name: str, shape: tuple[int, ...] | None, owner: str,
             larger: bool = False) -> tuple[torch.Tensor, str]:
    if t.ndim == 2:
        n, d = t.shape
        if d == 0:
            raise DataError(f"{name}: found array with 0 feature(s) (shape={tuple(t.shape)}) "
                            "while a minimum of 1 is required.")
        full = (1, 1, d) if shape is None else _full_shape(shape, d)
        if full is None or math.prod(full) != d:
            want = math.prod(full) if full else f"a multiple of {shape[0] * shape[1]}"
            raise DataError(f"{name} has {d} features, but {owner} is expecting {want} features "
                            f"as input (images {tuple(shape)} flattened)")
        t, layout = t.reshape(n, *full), "flat"  # (N, C*H*W) -> (N, C, H, W)
    elif t.ndim == 3:
        t, layout = t.unsqueeze(1), "nhw"  # (N, H, W) -> (N, 1, H, W)
    elif t.ndim == 4:
        layout = "nchw"
        if shape is not None:
            chw = _full_shape(shape, math.prod(t.shape[1:]))
            if chw and tuple(t.shape[1:]) != chw and (t.shape[3], *t.shape[1:3]) == chw:
                layout = "nhwc"
            elif larger and len(shape) == 3 and t.shape[1] != shape[0] == t.shape[3]:
                layout = "nhwc"
        elif t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
            layout = "nhwc"
        if layout == "nhwc":
            t = t.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    else:
        layout = ""
    if t.ndim < 2:
        raise DataError(f"{name}: expected images or rows, got a {t.ndim}-D array of shape "
                        f"{tuple(t.shape)}; Reshape your data: X.reshape(1, -1) for one row, "
                        "X.reshape(-1, 1) for one value per image")
    if not layout or len(t) == 0:
        raise DataError(f"{name}: expected a non-empty batch of images (N, H, W), (N, C, H, W), "
                        f"(N, H, W, C) or rows (N, C*H*W); got shape {tuple(t.shape)}")
    if shape is not None:
        want = _full_shape(shape, math.prod(t.shape[1:])) or tuple(shape)
        if larger and layout != "flat" and len(want) == 3 and t.shape[1] == want[0] \
                and t.shape[2] >= want[1] and t.shape[3] >= want[2]:
            return t, layout
        if tuple(t.shape[1:]) != tuple(want):
            also = " or larger, in tiles" if larger and layout != "flat" else ""
            raise DataError(f"{name}: images are {tuple(t.shape[1:])} (C, H, W) but {owner} "
                            f"expects {tuple(want)}{also}")
    return t, layout


def _to_units(t: torch.Tensor, name: str, int_white: float, float_white: float) -> torch.Tensor:
    if t.dtype == torch.uint8 and int_white == 255:
        return t.contiguous()
    hint = ("; set pixel_max (the value of white) on the estimator if your images use another "
            "range")
    if not t.is_floating_point():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi > int_white:
            neg = "Negative values in data: " if lo < 0 else ""
            raise DataError(f"{name}: {neg}integer pixel values must lie in [0, {int_white:g}] "
                            f"(got {lo}..{hi}){hint}")
        if int_white == 255:
            return t.to(torch.uint8).contiguous()
        return (t.double() / int_white).float().contiguous()
    if not torch.isfinite(t).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0 or hi > float_white:
        extra = "; divide uint8 images by 255" if float_white == 1 else ""
        neg = "Negative values in data: " if lo < 0 else ""
        raise DataError(f"{name}: {neg}float values must lie in [0, {float_white:g}] (got "
                        f"{lo:.3g}..{hi:.3g}){extra}{hint}")
    if float_white != 1:
        t = t.double() / float_white
    return t.float().contiguous()


def float_white_of(X: torch.Tensor, pixel_max: float | None) -> float:
    """The white value of float images for an estimator fitted on X ((N, C, H, W), as
    `read_array` gives it): `pixel_max` when set, else 1.0, or X's maximum when X is float
    data above 1 (e.g. 16.0 for scikit-learn's digits)."""
    if pixel_max is not None:
        return float(pixel_max)
    if X.is_floating_point() and X.numel() and torch.isfinite(X).all() and float(X.max()) > 1:
        return float(X.max())
    return 1.0


def to_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """(N, C, H, W) images back into the layout `as_images` reported for the input."""
    if layout == "flat":
        return t.reshape(len(t), -1)  # (N, C*H*W)
    if layout == "nhw" and t.shape[1] == 1:
        return t[:, 0]  # (N, H, W)
    if layout == "nhwc":
        return t.permute(0, 2, 3, 1)  # (N, H, W, C)
    return t


def layout_of(X: Any, shape: tuple[int, ...], name: str = "like", owner: str = "the model"
              ) -> str:
    """The layout `as_images` reports for images shaped like X ((C, H, W) = `shape`), read
    from X's shape alone: its values are not looked at."""
    dims = getattr(X, "shape", None)
    if dims is None:
        dims = np.shape(read_array(X, name))
    t = torch.zeros((), dtype=torch.uint8).expand(tuple(int(d) for d in dims))
    return _as_nchw(t, name, shape, owner)[1]


def like_input(result: torch.Tensor, reference: Any) -> Any:
    """`result` as the caller gave its input: a torch tensor stays a tensor, else numpy (float64
    when the input was a float64 array, as scikit-learn transformers keep that dtype)."""
    if isinstance(reference, torch.Tensor):
        return result
    out = result.cpu().numpy()
    if getattr(reference, "dtype", None) == np.float64 and out.dtype == np.float32:
        out = out.astype(np.float64)
    return out


def check_feature_names(estimator: Any, X: Any, reset: bool) -> None:
    """scikit-learn's `feature_names_in_` bookkeeping for 2-D (tabular) input such as a
    DataFrame; a mismatch is a DataError."""
    if isinstance(X, torch.Tensor) or getattr(X, "ndim", 0) != 2:
        if reset and hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    from sklearn.utils.validation import validate_data

    try:
        validate_data(estimator, X, reset=reset, skip_check_array=True)
    except ValueError as e:  # scikit-learn's message may span lines; ours is one
        raise DataError(" ".join(str(e).split())) from None

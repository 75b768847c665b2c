"""Pixel units and image sizes: the one place that turns uint8 images into [0, 1] floats and
parses "HxW" size strings."""

from __future__ import annotations

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
    """Validate X and return a (N, C, H, W) tensor: uint8 kept as uint8, floats as float32."""
    t = torch.from_numpy(np.ascontiguousarray(X)) if isinstance(X, np.ndarray) else X
    if not isinstance(t, torch.Tensor):
        raise DataError(f"{name}: expected a numpy array or torch tensor, got {type(X).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise DataError(f"{name}: dtype {t.dtype} is not an image type; use uint8 or float")
    if t.ndim == 2 and shape is not None and t.shape[1] == int(np.prod(shape)):
        t = t.reshape(len(t), *shape)  # (N, C*H*W) -> (N, C, H, W)
    elif t.ndim == 3:
        t = t.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    elif t.ndim == 4 and t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
        t = t.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if t.ndim != 4 or len(t) == 0:
        raise DataError(f"{name}: expected a non-empty batch of images (N, H, W) or (N, C, H, W), "
                        f"got shape {tuple(t.shape)}")
    if shape is not None and tuple(t.shape[1:]) != tuple(shape):
        raise DataError(f"{name}: images are {tuple(t.shape[1:])} but the model expects {shape}")
    if t.dtype == torch.uint8:
        return t.contiguous()
    t = t.float()
    if not torch.isfinite(t).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    if t.min() < 0 or t.max() > 1:
        raise DataError(f"{name}: float values must lie in [0, 1] (got {float(t.min()):.3g}.."
                        f"{float(t.max()):.3g}); divide uint8 images by 255")
    return t.contiguous()


def like_input(result: torch.Tensor, reference: Any) -> Any:
    """`result` as the caller gave its input: a torch tensor stays a tensor, else numpy."""
    return result if isinstance(reference, torch.Tensor) else result.cpu().numpy()

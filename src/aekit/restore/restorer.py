"""Putting a restoration run to work: denoise, inpaint and colorize images of any size.

A restoration run is one trained with `--corrupt` (input = corrupt(x), target = x). Images of the
model's size go through the model in batches; any other size is either tiled (default:
overlapping model-size tiles blended with a tent window, so the output keeps the input's
resolution) or resized to the model's size and back (`fit="resize"`).

Inpainting keeps every known pixel exactly: the model sees the image with missing pixels set to
`corrupt.MASK_FILL` (as in training) and only the masked pixels are taken from its output.
Colorization feeds the luma of the image and, by default, keeps that luma exactly: the output is
the input's Y with the model's chroma (YCbCr, BT.601).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aekit.data.corrupt import LUMA, Corruption, fill_masked, parse_corruption, to_grayscale
from aekit.data.tiles import TileGrid, tent, tile_starts  # noqa: F401 (re-exported)
from aekit.data.units import as_images, like_input, read_array, to_layout, to_unit
from aekit.errors import ConfigError, DataError, RunError

TASKS = ("denoise", "inpaint", "colorize")
FITS = ("tile", "resize")
_TRAIN_HINT = {
    "denoise": "aekit train --model unet --corrupt gaussian:0.5 --out RUN",
    "inpaint": "aekit train --model unet --corrupt mask:blocks --out RUN",
    "colorize": "aekit train --model unet --dataset folder:RGB_DIR --corrupt grayscale --out RUN",
}


def task_error(run_dir: str | Path, task: str, spec: str, channels: int) -> str | None:
    """Why a run cannot do `task` (None when it can)."""
    hint = f"train one with `{_TRAIN_HINT[task]}`"
    if not spec:
        return (f"{run_dir} is not a restoration model: it was trained without --corrupt (a "
                f"plain autoencoder); {hint}")
    c = parse_corruption(spec)
    can = {"denoise": c.has_noise, "inpaint": c.has_mask,
           "colorize": c.is_grayscale and channels == 3}
    if can[task]:
        return None
    fits = [t for t in TASKS if can[t]]
    also = f" (it can `aekit {fits[0]}`)" if fits else ""
    return f"{run_dir} was trained to undo --corrupt {spec}, not to {task}{also}; {hint}"


@dataclass(repr=False)
class Restorer:
    """A loaded restoration model plus what it was trained to undo.

    A plain class, not a scikit-learn estimator: it fits nothing (training is `aekit train
    --corrupt` or `aekit.Autoencoder(corrupt=...)`), it applies a trained model.
    """

    model: torch.nn.Module
    corruption: Corruption
    shape: tuple[int, int, int]  # the model's (C, H, W)
    batch_size: int = 256

    @classmethod
    def load(cls, run_dir: str | Path, task: str, device: str = "cpu",
             batch_size: int = 256) -> Restorer:
        from aekit.core.io import load_model, read_config
        from aekit.device import resolve_device

        if task not in TASKS:
            raise ConfigError(f"task={task!r} is not a restoration task; use one of "
                              f"{', '.join(TASKS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r}: expected an integer of at least 1")
        run = read_config(run_dir)
        why = task_error(run_dir, task, run.train_cfg.corrupt, run.model_cfg.in_channels)
        if why:
            raise RunError(why)
        model, run = load_model(run_dir, resolve_device(device))
        return cls(model, parse_corruption(run.train_cfg.corrupt), run.model_cfg.shape,
                   batch_size)

    def __repr__(self) -> str:
        return (f"Restorer(corruption={self.corruption.spec!r}, shape={tuple(self.shape)}, "
                f"batch_size={self.batch_size})")

    @property
    def size(self) -> tuple[int, int]:
        return self.shape[1], self.shape[2]

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Model output for model-size inputs (B, C, H, W), batched, on the fastest exact
        implementation (aekit.infer); float CPU tensor."""
        from aekit import infer

        device = next(self.model.parameters()).device
        outs = [o.float().cpu() for o in infer.batched(
            self.model, "reconstruct", x, self.batch_size, lambda b: b.to(device))]
        return torch.cat(outs) if outs else x.clone()

    # -- the three tasks on one batch of same-size images ------------------------------------------
    # x: numpy or torch, uint8 [0, 255] or float [0, 1], (B, C, H, W), (B, H, W) or (B, H, W, C),
    # any H x W; the result is float in [0, 1] in the input's library and layout.

    def denoise(self, x: Any, fit: str = "tile") -> Any:
        t, back = _images_in(x)
        return back(self._apply(t, None, fit))

    def inpaint(self, x: Any, mask: Any, fit: str = "tile") -> Any:
        """mask: bool (B, 1, H, W) or (B, H, W), True = missing; known pixels are returned
        unchanged."""
        t, back = _images_in(x)
        m = _read_mask(mask)
        m = m.unsqueeze(1) if m.dim() == 3 else m  # (B, 1, H, W)
        if m.dtype != torch.bool and m.numel() and not bool(((m == 0) | (m == 1)).all()):
            raise DataError("mask: expected True/False (or 0/1) per pixel, True = missing")
        m = m.bool()
        check_mask_shape(m, t)
        out = self._apply(t, m, fit)
        return back(torch.where(m, out, t))

    def colorize(self, x: Any, fit: str = "tile", keep_luma: bool = True) -> Any:
        """Grey (B, 1, ...) or colour (B, 3, ...) images -> colour (B, 3, ...)."""
        t, back = _images_in(x)
        grey = to_grayscale(t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t)
        out = self._apply(grey, None, fit)
        return back(with_luma(out, grey[:, :1]) if keep_luma else out)

    def _apply(self, x: torch.Tensor, mask: torch.Tensor | None, fit: str) -> torch.Tensor:
        if fit not in FITS:
            raise ConfigError(f"fit={fit!r}: use tile or resize")
        if x.shape[1] != self.shape[0]:
            raise DataError(f"x: images have {x.shape[1]} channel(s) but the model takes "
                            f"{self.shape[0]}")
        if tuple(x.shape[2:]) == self.size:
            return self.predict(x if mask is None else fill_masked(x, mask))
        if fit == "resize":
            return self._resized(x, mask)
        return torch.cat([self._tiled(x[i], None if mask is None else mask[i])[None]
                          for i in range(len(x))])

    def _resized(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h, w = x.shape[2:]
        small = resize(x, self.size)
        if mask is not None:
            # A model pixel is missing if any image pixel under it is.
            small_mask = resize(mask.float(), self.size, antialias=True) > 0
            small = fill_masked(small, small_mask)
        return resize(self.predict(small), (h, w))

    def _tiled(self, img: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One image (C, H, W) of any size through overlapping model-size tiles
        (aekit.data.tiles: tent-window blending, smaller sides padded and cropped back)."""
        grid = TileGrid(img.shape[1:], self.size)
        tiles = grid.split(img[None])
        if mask is not None:
            tiles = fill_masked(tiles, grid.split(mask[None], mode="constant"))
        return grid.stitch(self.predict(tiles))[0]


def resize(x: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                         antialias=antialias).clamp_(0, 1)


def with_luma(rgb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Replace the luma of RGB images (B, 3, H, W) by `y` (B, 1, H, W), keeping their chroma
    (R - Y, B - Y): luma is linear with weights summing to 1, so one offset per pixel does it."""
    weights = torch.tensor(LUMA, dtype=rgb.dtype).view(1, 3, 1, 1)
    chroma = rgb - (rgb * weights).sum(1, keepdim=True)  # (B, 3, H, W), luma-free offsets
    # Clipping y + chroma to [0, 1] would change the luma; instead shrink the chroma per pixel
    # by the largest factor s <= 1 that keeps every channel in range, so the luma stays exact.
    tiny = torch.finfo(rgb.dtype).tiny
    room = torch.where(chroma > 0, (1 - y) / chroma.clamp_min(tiny),
                       torch.where(chroma < 0, y / (-chroma).clamp_min(tiny),
                                   torch.ones_like(chroma)))
    s = room.amin(1, keepdim=True).clamp(0, 1)  # (B, 1, H, W)
    return (y + s * chroma).clamp_(0, 1)


def check_mask_shape(mask: torch.Tensor, x: torch.Tensor) -> None:
    if mask.dtype != torch.bool:
        raise DataError(f"mask must be boolean (True = missing), got {mask.dtype}")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0] \
            or mask.shape[2:] != x.shape[2:]:
        raise DataError(f"mask of shape {tuple(mask.shape)} does not fit images of shape "
                        f"{tuple(x.shape)}; expected {(x.shape[0], 1, *x.shape[2:])}")


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask image -> bool (1, H, W), True = pixel to fill. Must be binary: 0/255 (or 0/1)."""
    from aekit.data.images import load_uint8

    a = load_uint8(path, "L")
    values = np.unique(a)
    if not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        odd = next(int(v) for v in values if v not in (0, 1, 255))
        raise DataError(f"mask {path} is not binary (it holds grey value {odd}); use black (0) "
                        "for known pixels and white (255) for pixels to fill, saved as PNG "
                        "(JPEG blurs the edges)")
    return torch.from_numpy(a > 0)[None]


def _read_mask(mask: Any) -> torch.Tensor:
    """A mask as given (bool, or 0/1 numbers; numpy, torch or nested lists) as a tensor."""
    if isinstance(mask, torch.Tensor) and mask.dtype == torch.bool:
        return mask.detach()
    if not isinstance(mask, torch.Tensor) and not hasattr(mask, "nnz"):
        try:
            a = np.asarray(mask)
        except (TypeError, ValueError):
            a = None
        if a is not None and a.dtype == bool:
            return torch.from_numpy(np.ascontiguousarray(a))
    return read_array(mask, "mask")


def _images_in(x: Any) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """(float (B, C, H, W) in [0, 1], a function giving a result back in x's library/layout)."""
    t, layout = as_images(x, "x", owner="the restorer")
    return to_unit(t), lambda r: like_input(to_layout(r, layout), x)

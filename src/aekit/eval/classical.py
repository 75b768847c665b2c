"""Classical restoration baselines (scikit-image, and BM3D when the optional `bm3d` package is
installed), applied image by image to float batches (B, C, H, W) in [0, 1].

Denoisers take one strength parameter each; `tune` picks it by PSNR on images that are not the
test images (the benchmarks use training images), so the baselines get a fair, tuned setting.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from aekit.errors import ConfigError
from aekit.eval.metrics import mse, psnr


def _hwc(img: torch.Tensor) -> tuple[np.ndarray, int | None]:
    """(C, H, W) tensor -> float64 (H, W) or (H, W, C) array, and the channel axis for skimage."""
    a = img.detach().cpu().double().numpy()
    return (a[0], None) if a.shape[0] == 1 else (a.transpose(1, 2, 0), -1)


def _chw(a: np.ndarray) -> torch.Tensor:
    a = np.clip(a, 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    from skimage.filters import gaussian

    a, axis = _hwc(img)
    return _chw(gaussian(a, sigma=sigma, channel_axis=axis, preserve_range=True))


def tv_chambolle(img: torch.Tensor, weight: float) -> torch.Tensor:
    from skimage.restoration import denoise_tv_chambolle

    a, axis = _hwc(img)
    return _chw(denoise_tv_chambolle(a, weight=weight, channel_axis=axis))


def nl_means(img: torch.Tensor, h: float) -> torch.Tensor:
    from skimage.restoration import denoise_nl_means

    a, axis = _hwc(img)
    # 5x5 patches searched within 6 pixels: scikit-image's example settings for small images.
    return _chw(denoise_nl_means(a, h=h, patch_size=5, patch_distance=6, fast_mode=True,
                                 channel_axis=axis))


def bm3d_available() -> bool:
    return importlib.util.find_spec("bm3d") is not None


def bm3d_denoise(img: torch.Tensor, sigma_psd: float) -> torch.Tensor:
    if not bm3d_available():
        raise ConfigError("BM3D needs the optional package: pip install bm3d (or aekit[bench])")
    import bm3d

    a, axis = _hwc(img)
    if axis is None:
        return _chw(bm3d.bm3d(a, sigma_psd=sigma_psd))
    return _chw(bm3d.bm3d_rgb(a, sigma_psd=sigma_psd))


@dataclass(frozen=True)
class Denoiser:
    name: str
    fn: Callable[[torch.Tensor, float], torch.Tensor]
    param: str
    grid: tuple[float, ...]  # the values `tune` tries


DENOISERS: dict[str, Denoiser] = {
    d.name: d for d in (
        Denoiser("gaussian-blur", gaussian_blur, "sigma", (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)),
        Denoiser("tv-chambolle", tv_chambolle, "weight", (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5)),
        Denoiser("nl-means", nl_means, "h", (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)),
        # Coarse runs put the best sigma_psd near 0.3 for clipped sigma=0.5 noise; BM3D is slow.
        Denoiser("bm3d", bm3d_denoise, "sigma_psd", (0.25, 0.3, 0.35, 0.4)),
    )
}


def available_denoisers() -> list[str]:
    return [n for n in DENOISERS if n != "bm3d" or bm3d_available()]


def apply_each(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
               ) -> tuple[torch.Tensor, float]:
    """Apply a per-image function to (B, C, H, W); returns (outputs, images per second)."""
    t0 = time.perf_counter()
    out = torch.stack([fn(img) for img in x])
    return out, len(x) / max(time.perf_counter() - t0, 1e-9)


def denoise(name: str, x: torch.Tensor, value: float) -> tuple[torch.Tensor, float]:
    """Denoise a batch with a named baseline -> (outputs, images per second)."""
    if name not in DENOISERS:
        raise ConfigError(f"unknown baseline {name!r}; available: {', '.join(DENOISERS)}")
    fn = DENOISERS[name].fn
    return apply_each(lambda img: fn(img, value), x)


def tune(name: str, noisy: torch.Tensor, clean: torch.Tensor,
         grid: Sequence[float] | None = None) -> tuple[float, dict[float, float]]:
    """The grid value with the best PSNR on (noisy, clean) -> (best value, {value: psnr})."""
    scores = {}
    for value in grid or DENOISERS[name].grid:
        out, _ = denoise(name, noisy, value)
        scores[float(value)] = psnr(mse(out, clean))
    return max(scores, key=scores.get), scores


def inpaint_biharmonic(img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the pixels where `mask` (1, H, W) or (H, W) is True by biharmonic interpolation."""
    from skimage.restoration import inpaint_biharmonic as _inpaint

    a, axis = _hwc(img)
    m = mask.detach().cpu().numpy().astype(bool).reshape(a.shape[:2])
    if not m.any():
        return img.detach().cpu().float().clone()
    return _chw(_inpaint(a, m, channel_axis=axis))


def inpaint_batch(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Biharmonic inpainting of a batch; mask (B, 1, H, W) bool -> (outputs, images per second)."""
    t0 = time.perf_counter()
    out = torch.stack([inpaint_biharmonic(img, m) for img, m in zip(x, mask, strict=True)])
    return out, len(x) / max(time.perf_counter() - t0, 1e-9)

"""Image files <-> tensors with Pillow: reading user images (skipping or rejecting bad ones),
writing PNGs atomically, and PNG grids (originals over reconstructions) without matplotlib.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from aekit.errors import ConfigError, DataError
from aekit.io import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"}
# Decoders expand at most ~1000:1 (deflate, JPEG) to a few thousand (LZW); a header claiming
# more than this per file byte is a lie. Images up to 4 MiB decoded are never questioned
# (flat synthetic images in lossless WebP can legitimately beat 4096:1 above that).
_MAX_EXPANSION = 4096
_ALWAYS_DECODE = 4 << 20
_EXIF_FORMATS = {"JPEG", "MPO"}  # where EXIF sits in the header (PNG would need a full decode)
# Errors Pillow's decoders raise on unreadable / corrupt / truncated / oversized files.
_PIL_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    Image.DecompressionBombError,
)


def is_image_file(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _is_colour(im: Image.Image) -> bool:
    if im.mode in _COLOUR_MODES:
        return True
    if im.mode in ("P", "PA"):
        pal = np.asarray(im.getpalette() or [], dtype=np.int32).reshape(-1, 3)
        return bool(np.any(pal != pal[:, :1]))  # a palette of greys is grey
    return False


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """(H, W) after the EXIF rotation that loading applies."""
    w, h = im.size
    if im.format in _EXIF_FORMATS and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        w, h = h, w
    return h, w


def _in_memory(path: str | os.PathLike) -> io.BytesIO:
    """The file's bytes as a stream: Pillow's plugins call fp.read(n) with lengths taken from the
    file (a PNG chunk may claim 512 MB); a real file object allocates n bytes up front, a BytesIO
    at most what is really there."""
    return io.BytesIO(Path(path).read_bytes())


@contextmanager
def _opened(path: str | os.PathLike, failure: str) -> Iterator[Image.Image]:
    """Image.open on the file's bytes; any error while the image is open (opening, decoding,
    aekit's own checks) leaves as one DataError naming the file, `failure` saying what went
    wrong with Pillow's reason after it. Pillow's DecompressionBombWarning is silenced: a
    command's stderr carries one line per bad file, and the check that matters is ours (a
    header that a file this small cannot hold, `_check_declared_size`). A photo of 90-180
    megapixels opens quietly; above that Pillow's DecompressionBombError refuses it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(_in_memory(path)) as im:
                yield im
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected an image file") from None
    except DataError:  # ours, already naming the file (it is a ValueError too)
        raise
    except _PIL_ERRORS as e:
        raise DataError(f"{path}: {failure} ({_reason(e)})") from None


def probe_image(path: str | os.PathLike) -> tuple[tuple[int, int], bool]:
    """Read only the header: ((H, W), is_colour). Raises DataError naming the file."""
    with _opened(path, "not a readable image") as im:
        _check_declared_size(im, path)  # getpalette() below decodes the whole image
        return _oriented_size(im), _is_colour(im)


def _reason(e: BaseException) -> str:
    if isinstance(e, UnidentifiedImageError):  # its text names an in-memory buffer, not the file
        return "not an image format Pillow recognises"
    if isinstance(e, Image.DecompressionBombError):  # a real photo may be this big: say what to do
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        return f"more than {limit:,} pixels, Pillow's limit against decompression bombs; " \
               "downscale the image first"
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert to 'L' or 'RGB', scaling 16-bit/float greys instead of clipping them."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode == "F":
            a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a
        elif im.mode.startswith("I;16") or (a.size and a.max() > 255):
            a = a / 257.0
        im = Image.fromarray(np.clip(np.nan_to_num(np.rint(a)), 0, 255).astype(np.uint8), "L")
    elif im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")  # avoids Pillow's palette-transparency warning
    return im if im.mode == mode else im.convert(mode)


def _check_declared_size(im: Image.Image, path: str | os.PathLike) -> None:
    """Reject a header whose image could not come from a file this small, before Pillow
    allocates it: a 100-byte file must not cost hundreds of MB (truncated or hostile files)."""
    # Bytes Pillow will allocate: 1 per pixel for 1/L/P, 2 for I;16*, 4 for everything else.
    per_pixel = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4
    declared = im.width * im.height * per_pixel
    if declared <= _ALWAYS_DECODE:
        return
    size = os.path.getsize(path)
    if declared > _MAX_EXPANSION * size:
        raise DataError(
            f"{path}: header declares a {im.width}x{im.height} image, impossible for a "
            f"{size}-byte file; the file is truncated or corrupt"
        )


def load_uint8(
    path: str | os.PathLike, mode: str, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode one image as uint8 (H, W) for mode 'L' or (H, W, 3) for 'RGB', optionally resized
    to size=(H, W). Raises DataError naming the file."""
    return load_with_alpha(path, mode, size)[0]


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        im.mode == "P" and "transparency" in im.info)


def load_with_alpha(
    path: str | os.PathLike, mode: str, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """As `load_uint8`, plus the image's alpha channel as uint8 (H, W) at the same size, or None
    when the file has none or it is fully opaque (the models see colour only; writers put the
    alpha back, so a transparent region stays transparent)."""
    with _opened(path, "corrupt or unreadable image") as im:
        _check_declared_size(im, path)
        im.load()
        if im.format in _EXIF_FORMATS:
            im = ImageOps.exif_transpose(im)
        alpha = im.convert("RGBA").getchannel("A") if _has_alpha(im) else None
        if alpha is not None and alpha.getextrema()[0] == 255:
            alpha = None
        im = _to_mode(im, mode)
        if size is not None and (im.height, im.width) != tuple(size):
            # Pillow's bilinear widens its support when shrinking, i.e. it is antialiased.
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            if alpha is not None:
                alpha = alpha.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        return a, None if alpha is None else np.asarray(alpha, dtype=np.uint8)


def _mode_for(channels: int) -> str:
    if channels not in (1, 3):
        raise ConfigError(f"channels={channels!r}: images have 1 (grey) or 3 (RGB) channels")
    return "L" if channels == 1 else "RGB"


def _hwc_to_chw_float(a: np.ndarray) -> torch.Tensor:
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)
    return torch.from_numpy(a.astype(np.float32)).div_(255.0)  # astype: a writable copy


def read_image(
    path: str | os.PathLike, channels: int = 1, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """One image -> float32 (C, H, W) in [0, 1]; raises DataError if it cannot be read."""
    return _hwc_to_chw_float(load_uint8(path, _mode_for(channels), size))


def read_images(
    paths: Sequence[str | os.PathLike], channels: int = 1, size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, list[str], list[tuple[str, str]]]:
    """Many images -> (float32 (B, C, H, W) in [0, 1], good paths, [(bad path, reason)]).

    Unreadable files are reported, not raised, so one bad file does not stop a batch. Without
    `size`, every image must match the first good one's size; others are reported as bad.
    """
    mode = _mode_for(channels)
    arrays, good, bad = [], [], []
    for p in paths:
        try:
            a = load_uint8(p, mode, size)
        except DataError as e:
            bad.append((str(p), str(e).removeprefix(f"{p}: ")))
            continue
        if arrays and a.shape[:2] != arrays[0].shape[:2]:
            h, w = arrays[0].shape[:2]
            bad.append((str(p), f"size {a.shape[0]}x{a.shape[1]} differs from {h}x{w} of "
                                f"{good[0]}; give an image size to resize"))  # fmt: skip
            continue
        arrays.append(a)
        good.append(str(p))
    if not arrays:
        h, w = size if size is not None else (0, 0)
        return torch.empty((0, channels, h, w)), good, bad
    return torch.stack([_hwc_to_chw_float(a) for a in arrays]), good, bad


# --- writing -------------------------------------------------------------------------------------


def to_pil(img: torch.Tensor | np.ndarray) -> Image.Image:
    """(C, H, W) or (H, W) float in [0, 1] (or uint8) -> a PIL 'L' or 'RGB' image."""
    t = torch.as_tensor(img).detach().cpu()
    if t.ndim == 3 and t.shape[0] in (1, 3):
        t = t.permute(1, 2, 0)  # (H, W, C)
    elif t.ndim != 2:
        raise ValueError(
            f"expected an image (C, H, W) with C in 1, 3 or (H, W); got {tuple(t.shape)}"
        )
    if t.dtype != torch.uint8:
        t = torch.nan_to_num(t.float(), 0.0).clamp(0, 1).mul(255).round().to(torch.uint8)
    a = t.numpy()
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(a), "L" if a.ndim == 2 else "RGB")


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def save_png(path: str | os.PathLike, img: torch.Tensor | np.ndarray,
             alpha: np.ndarray | None = None) -> None:
    """Write one image (C, H, W) in [0, 1] as PNG, atomically; with `alpha` (uint8 (H', W'),
    resized to the image's size when it differs) as its transparency (RGBA or LA)."""
    im = to_pil(img)
    if alpha is not None:
        a = Image.fromarray(np.ascontiguousarray(alpha, dtype=np.uint8), "L")
        if a.size != im.size:
            a = a.resize(im.size, Image.Resampling.BILINEAR)
        im.putalpha(a)
    atomic_write_bytes(path, _png_bytes(im))


def grid_image(
    rows: Sequence[torch.Tensor],
    pad: int = 2,
    scale: int | None = None,
    background: int = 255,
) -> Image.Image:
    """Rows of (N, C, H, W) images in [0, 1] -> one PIL image, one row per tensor.

    Small images are upscaled (nearest, so pixels stay crisp) to at least ~84 px; grey rows are
    shown as RGB when any row is colour; shorter rows leave blank cells.
    """
    rows = [torch.as_tensor(r).detach().cpu() for r in rows]
    rows = [r[None] if r.ndim == 3 else r for r in rows]
    if not rows or any(r.ndim != 4 for r in rows):
        raise ValueError("save_grid needs a non-empty list of (N, C, H, W) tensors")
    h = max(int(r.shape[2]) for r in rows)
    w = max(int(r.shape[3]) for r in rows)
    cols = max(int(r.shape[0]) for r in rows)
    if scale is None:
        scale = max(1, 84 // max(h, w, 1))
    mode = "RGB" if any(r.shape[1] == 3 for r in rows) else "L"
    cell_h, cell_w = h * scale, w * scale
    canvas = Image.new(
        mode,
        (pad + cols * (cell_w + pad), pad + len(rows) * (cell_h + pad)),
        (background,) * 3 if mode == "RGB" else background,
    )
    for i, r in enumerate(rows):
        for j in range(r.shape[0]):
            tile = to_pil(r[j]).convert(mode)
            tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
            x0 = pad + j * (cell_w + pad) + (cell_w - tile.width) // 2
            y0 = pad + i * (cell_h + pad) + (cell_h - tile.height) // 2
            canvas.paste(tile, (x0, y0))
    return canvas


def save_grid(
    path: str | os.PathLike,
    rows: Sequence[torch.Tensor],
    pad: int = 2,
    scale: int | None = None,
    background: int = 255,
) -> None:
    """Write rows of images (e.g. [originals, reconstructions]) as one PNG grid, atomically."""
    atomic_write_bytes(path, _png_bytes(grid_image(rows, pad, scale, background)))

"""Compression baselines on the same images as the learned codec, counted in real file bytes.

- Pillow formats (WebP, JPEG lossy over a quality sweep; PNG lossless): bytes of the file Pillow
  writes, decoded back with Pillow.
- PCA + uniform quantization: the classic transform coder. PCA fitted on training images, every
  coefficient quantized with one step size, coded with aekit's own range coder and per-component
  integer tables fitted on the training set, inside the same `.aez` container (same header cost).

Every point reports bpp = file bytes * 8 / pixels, PSNR over the whole set (docs/DESIGN.md)
and SSIM.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from aekit.eval.metrics import quality
from aekit.eval.pca import PCA, fit_pca, flat_unit

WEBP_QUALITIES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80)
JPEG_QUALITIES = (5, 10, 20, 30, 50, 70, 85, 95)
FIT_IMAGES = 20000  # random training images the PCA baselines are fitted on


def _to_pil(img: np.ndarray):
    from PIL import Image

    a = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)  # (C, H, W) -> PIL layout
    return Image.fromarray(np.ascontiguousarray(a), "L" if a.ndim == 2 else "RGB")


def _from_pil(im, channels: int) -> np.ndarray:
    a = np.asarray(im.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _point(name: str, setting, n_bytes: int, rec: np.ndarray, x: np.ndarray,
           payload: int | None = None) -> dict:
    n, _, h, w = x.shape
    q = quality(torch.from_numpy(rec).float() / 255, torch.from_numpy(x).float() / 255)
    out = {"codec": name, "setting": setting, "bytes": int(n_bytes),
           "bpp": n_bytes * 8.0 / (n * h * w), "psnr": q["psnr"], "ssim": q["ssim"]}
    if payload is not None:
        out["payload_bpp"] = payload * 8.0 / (n * h * w)
    return out


def webp_payload_bytes(data: bytes) -> int:
    """Bytes of a lossy WebP file that are VP8 compressed data: the file without its RIFF
    header (12 bytes), chunk headers (8 bytes each) and the VP8 frame header (10 bytes: frame
    tag, start code, width and height). Other chunks (VP8X, ALPH, metadata) count as headers."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    pos, payload = 12, 0
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if tag == b"VP8 ":
            payload += max(0, size - 10)
        pos += 8 + size + (size & 1)
    return payload


def pillow_point(x: np.ndarray, fmt: str, quality_value: int | None = None) -> dict:
    """One Pillow format at one quality on uint8 images (N, C, H, W); one file per image."""
    from PIL import Image

    total, payload, rec = 0, 0, np.empty_like(x)
    kwargs = {"quality": quality_value} if quality_value is not None else {"optimize": True}
    for i, img in enumerate(x):
        buf = io.BytesIO()
        _to_pil(img).save(buf, format=fmt, **kwargs)
        data = buf.getvalue()
        total += len(data)
        if fmt.upper() == "WEBP":
            payload += webp_payload_bytes(data)
        with Image.open(io.BytesIO(data)) as im:
            rec[i] = _from_pil(im, x.shape[1])
    return _point(fmt.lower(), quality_value, total, rec, x,
                  payload if fmt.upper() == "WEBP" else None)


def pillow_sweep(x: np.ndarray, fmt: str, qualities=None) -> list[dict]:
    if fmt.upper() == "PNG":
        return [pillow_point(x, "PNG")]
    qualities = qualities or (WEBP_QUALITIES if fmt.upper() == "WEBP" else JPEG_QUALITIES)
    return [pillow_point(x, fmt.upper(), q) for q in qualities]


def fit_basis(train: np.ndarray, seed: int = 0) -> PCA:
    """Every component of a PCA of up to FIT_IMAGES random training images (uint8)."""
    return fit_pca(train, None, seed=seed, max_images=FIT_IMAGES, shuffle=True)


class PCAQuantizer:
    """PCA + uniform scalar quantization + range coding with training-set integer tables."""

    def __init__(self, train: np.ndarray, step: float, components: int | None = None,
                 pca: PCA | None = None) -> None:
        from aekit.codec.density import integer_table
        from aekit.codec.entropy import TableCoder

        pca = pca if pca is not None else fit_basis(train)
        self.mean, xf = pca.mean, flat_unit(train[pca.fit_index])
        self.shape = train.shape[1:]
        k = components or xf.shape[1]
        self.basis = pca.components[:k].T  # (P, k)
        self.step = step
        q = np.round((xf - self.mean) @ self.basis / step).astype(np.int64)
        self.lo, self.hi = q.min(0), q.max(0)
        tables = [integer_table(np.bincount(q[:, j] - self.lo[j]) + 0.5) for j in range(k)]
        self.coder = TableCoder(tables)

    def encode(self, x: np.ndarray) -> list[bytes]:
        xf = x.reshape(len(x), -1).astype(np.float64) / 255.0
        q = np.round((xf - self.mean) @ self.basis / self.step).astype(np.int64)
        q = np.clip(q, self.lo, self.hi) - self.lo  # outliers clamp into the training support
        out = []
        for row in q.astype(np.int32):
            enc = self.coder.encoder()
            for j in range(len(row)):
                enc.put(j, row[j : j + 1])
            out.append(enc.finish())
        return out

    def decode(self, payloads: list[bytes]) -> np.ndarray:
        k = self.basis.shape[1]
        q = np.zeros((len(payloads), k))
        for i, p in enumerate(payloads):
            dec = self.coder.decoder(p)
            q[i] = [dec.get(j, 1)[0] for j in range(k)]
        xf = (q + self.lo) * self.step @ self.basis.T + self.mean
        return np.clip(np.rint(xf * 255), 0, 255).astype(np.uint8).reshape(len(q), *self.shape)


def pca_quant_point(train: np.ndarray, x: np.ndarray, step: float,
                    components: int | None = None, pca: PCA | None = None) -> dict:
    """PCA+quantization at one step size; bytes = payload + the `.aez` header of one file per
    image (the same container the learned codec pays for)."""
    from aekit.codec.io import AezFile, pack

    pq = PCAQuantizer(train, step, components, pca)
    payloads = pq.encode(x)
    shape = tuple(int(s) for s in x.shape[1:])
    total = sum(len(pack(AezFile.uniform(b"\0" * 4, shape, (p,)))) for p in payloads)
    return _point("pca+quant", {"step": step, "components": pq.basis.shape[1]}, total,
                  pq.decode(payloads), x)


def pca_float_point(train: np.ndarray, x: np.ndarray, components: int = 32,
                    pca: PCA | None = None) -> dict:
    """Unquantized PCA-k reconstruction (the "PCA-32" reference): no rate."""
    pca = pca if pca is not None else fit_basis(train)
    rec = pca.reconstruct(flat_unit(x), components)
    rec = np.clip(np.rint(rec * 255), 0, 255).astype(np.uint8)
    q = quality(torch.from_numpy(rec.reshape(x.shape)).float() / 255,
                torch.from_numpy(x).float() / 255)
    return {"codec": f"pca-{components} (float)", "psnr": q["psnr"], "ssim": q["ssim"]}


def bd_rate(ref: list[tuple[float, float]], test: list[tuple[float, float]],
            lo: float | None = None, hi: float | None = None) -> tuple[float, tuple[float, float]]:
    """Bjøntegaard delta rate (%) of `test` vs `ref`, points (bpp, psnr): the mean log-rate
    difference at equal PSNR, from monotone piecewise-cubic (PCHIP) interpolation of log(rate)
    against PSNR, over [lo, hi] clipped to where both curves have points (no extrapolation).
    Returns (percent, (lo, hi) used); negative = `test` needs fewer bits."""
    from scipy.interpolate import PchipInterpolator

    def prep(points):
        pts = sorted((p for p in points if p[0] > 0 and np.isfinite(p[1])), key=lambda p: p[1])
        psnr, rate = [], []
        for r, q in pts:
            if not psnr or q > psnr[-1]:
                psnr.append(q)
                rate.append(np.log(r))
        return np.array(psnr), np.array(rate)

    (pr, rr), (pt, rt) = prep(ref), prep(test)
    if len(pr) < 2 or len(pt) < 2:
        raise ValueError("BD-rate needs at least two points per curve")
    lo = max(pr[0], pt[0], lo if lo is not None else -np.inf)
    hi = min(pr[-1], pt[-1], hi if hi is not None else np.inf)
    if hi <= lo:
        raise ValueError("the two curves do not overlap in PSNR")
    grid = np.linspace(lo, hi, 2001)
    diff = PchipInterpolator(pt, rt)(grid) - PchipInterpolator(pr, rr)(grid)
    avg = float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(grid)) / (hi - lo))
    return (float(np.exp(avg) - 1) * 100, (float(lo), float(hi)))

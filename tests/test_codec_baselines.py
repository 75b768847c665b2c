"""Compression baselines and the BD-rate used by bench/codec.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_blobs

from aekit.codec import baselines as bl


def test_bd_rate_half_the_bits_is_minus_50() -> None:
    ref = [(1.0, 20.0), (2.0, 26.0), (3.0, 30.0), (4.0, 33.0)]
    half = [(r / 2, q) for r, q in ref]
    pct, used = bl.bd_rate(ref, half, 24, 32)
    assert pct == pytest.approx(-50.0, abs=1e-9) and used == (24.0, 32.0)
    pct, used = bl.bd_rate(ref, [(r * 1.1, q) for r, q in ref], lo=25)
    assert pct == pytest.approx(10.0, abs=1e-9) and used == (25.0, 33.0)
    _, used = bl.bd_rate(ref, [(r * 1.1, q) for r, q in ref[1:]], 24, 32)
    assert used == (26.0, 32.0)  # clipped to where both curves have points
    with pytest.raises(ValueError):
        bl.bd_rate(ref, [(1.0, 40.0), (2.0, 45.0)])


def test_pillow_points_count_real_bytes() -> None:
    x = make_blobs(6, size=16)
    webp = bl.pillow_point(x, "WEBP", 50)
    png = bl.pillow_sweep(x, "PNG")[0]
    assert webp["bytes"] > 6 * 20 and webp["bpp"] == webp["bytes"] * 8 / (6 * 16 * 16)
    assert png["psnr"] == float("inf") and 0 < webp["psnr"] < 60
    # payload only: each lossy WebP file loses its 12 + 8 + 10 header bytes
    assert webp["payload_bpp"] == (webp["bytes"] - 6 * 30) * 8 / (6 * 16 * 16)


def test_webp_payload_bytes_parses_riff() -> None:
    vp8 = b"\x9d" * 10 + b"DATA!"  # a 10-byte frame header and 5 payload bytes (odd: padded)
    riff = b"WEBP" + b"VP8 " + len(vp8).to_bytes(4, "little") + vp8 + b"\0"
    data = b"RIFF" + len(riff).to_bytes(4, "little") + riff
    assert bl.webp_payload_bytes(data) == 5
    with pytest.raises(ValueError):
        bl.webp_payload_bytes(b"\x89PNG" + bytes(20))


def test_pca_quant_roundtrip_and_rate_falls_with_step() -> None:
    train, x = make_blobs(300, size=10, seed=1), make_blobs(8, size=10, seed=2)
    pca = bl.fit_basis(train)
    pq = bl.PCAQuantizer(train, 0.2, pca=pca)
    rec = pq.decode(pq.encode(x))
    xf = x.reshape(8, -1) / 255.0
    q = np.clip(np.round((xf - pq.mean) @ pq.basis / 0.2), pq.lo, pq.hi)
    direct = np.clip(np.rint((q * 0.2 @ pq.basis.T + pq.mean) * 255), 0, 255)
    assert np.array_equal(rec.reshape(8, -1), direct)
    fine = bl.pca_quant_point(train, x, 0.05, pca=pca)
    coarse = bl.pca_quant_point(train, x, 0.5, pca=pca)
    assert fine["bpp"] > coarse["bpp"] and fine["psnr"] > coarse["psnr"]

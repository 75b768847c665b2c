"""Detector on texture patches: localisation of an obvious defect, pure noise, larger images."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from aekit.anomaly.detector import Detector
from aekit.data.tiles import TileGrid
from aekit.errors import DataError

P = 16
TINY = dict(latent_dim=8, widths=(8, 16), epochs=1, batch_size=32, precision="fp32",
            random_state=0)


def _patches(img: np.ndarray, rows: tuple[int, int], n: int, seed: int, size: int = P):
    rng = np.random.default_rng(seed)
    ys = rng.integers(rows[0], rows[1] - size, n)
    xs = rng.integers(0, img.shape[1] - size, n)
    return np.stack([img[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])[
        :, None]


@pytest.fixture(scope="module")
def brick():
    img = skimage.data.brick()  # uint8 (512, 512) grey
    det = Detector(**TINY).fit(_patches(img, (0, 320), 150, seed=0))
    return img, det


def test_a_white_blob_is_where_the_heat_map_is_bright(brick):
    img, det = brick
    test = _patches(img, (352, 512), 6, seed=1)
    yy, xx = np.mgrid[0:P, 0:P]
    blob = (yy - 8) ** 2 + (xx - 7) ** 2 <= 9  # radius 3
    bad = test.copy()
    bad[:, 0][:, blob] = 255
    maps = det.anomaly_maps(bad)
    assert maps.shape == (6, P, P)
    inside, outside = maps[:, blob], maps[:, ~blob]
    assert inside.mean() > 2 * outside.mean()
    assert (inside.mean(1) > outside.mean(1)).all()  # in every image, not just on average
    heat = det.heatmaps(bad)
    assert tuple(heat.shape) == (6, 3, P, P)
    assert (det.score_samples(bad) > det.score_samples(test)).mean() >= 5 / 6


def test_pure_noise_is_flagged(brick):
    _, det = brick
    noise = np.random.default_rng(3).integers(0, 256, (3, 1, P, P), dtype=np.uint8)
    assert det.predict(noise).tolist() == [1, 1, 1]


def test_a_larger_image_is_scored_by_its_highest_tile(brick, capsys):
    img, det = brick
    big = img[None, None, 360:400, 100:156]  # 40 x 56: tiles of 16 x 16
    total, parts = det.score_parts(big)
    tiles = TileGrid((40, 56), (P, P)).split(torch.from_numpy(big.copy()))
    per_tile = det.score_samples(tiles.numpy())
    assert total.shape == (1,) and total[0] == pytest.approx(per_tile.max())
    best = int(per_tile.argmax())
    _, tile_parts = det.score_parts(tiles.numpy()[best : best + 1])
    assert all(parts[k][0] == pytest.approx(tile_parts[k][0], rel=1e-4) for k in parts)
    assert det.anomaly_maps(big).shape == (1, 40, 56)
    assert det.error_maps(big).shape == (1, 40, 56)
    assert tuple(det.heatmaps(big).shape) == (1, 3, 40, 56)
    assert det.reconstruct(big).shape == big.shape
    assert det.reconstruct(big[:, 0]).shape == (1, 40, 56)  # (N, H, W) in, the same out
    with pytest.raises(DataError, match="or larger"):
        det.score_samples(img[None, None, :12, :40])  # smaller than the training size
    # a model-size image is scored exactly as before: one tile, no blending
    one = big[:, :, :P, :P]
    assert det.score_samples(one)[0] == pytest.approx(det.score_samples(tiles.numpy()[:1])[0],
                                                      rel=1e-4)


def test_local_gate_is_a_quantile_of_the_held_out_local_scores(brick):
    """The default gates `local` at the 0.95 quantile of the held-out local z-scores (1: their
    highest); a lower gate counts it sooner, so a faint defect scores at least as high;
    combine_parts re-gates without refitting."""
    img, det = brick
    held = det.heldout_parts_["local"]
    z = (held - det.stats_["local"][0]) / det.stats_["local"][1]
    assert det.local_gate == 0.95
    assert det.local_gate_[0] == pytest.approx(float(np.quantile(z, 0.95)))
    test = _patches(img, (352, 512), 6, seed=2)
    faint = test.copy()
    faint[:, 0, 6:10, 6:10] = np.clip(faint[:, 0, 6:10, 6:10].astype(int) + 40, 0, 255)
    _, parts = det.score_parts(faint)
    top = det.combine_parts(parts, gate_quantile=1.0)
    assert det._gate(det.heldout_parts_, tuple(parts), 1.0)[0] == pytest.approx(float(z.max()))
    default = det.combine_parts(parts)
    low = det.combine_parts(parts, gate_quantile=0.5)
    assert np.all(default >= top - 1e-9) and np.all(low >= default - 1e-9)
    assert np.any(low > top)
    gated = Detector(**TINY, local_gate=0.5).fit(_patches(img, (0, 320), 150, seed=0))
    held = gated.heldout_parts_["local"]
    z = (held - gated.stats_["local"][0]) / gated.stats_["local"][1]
    assert gated.local_gate_[0] == pytest.approx(float(np.quantile(z, 0.5)))
    with pytest.raises(ValueError, match="local_gate"):
        Detector(local_gate=1.5).fit(_patches(img, (0, 320), 20, seed=0))

"""bench/photos_full.py runs end to end in its --quick mode (20 training steps, the held-out
photos' centres) and writes its JSON and picture under runs/ only."""

from __future__ import annotations

import json

import pytest

import bench.photos_full as photos_full


@pytest.mark.slow
def test_quick_photos_full_runs_and_writes_under_runs():
    pytest.importorskip("bm3d", reason="BM3D is in the bench extra")
    quick = photos_full.ROOT / "runs" / "photos-full-quick"
    (quick / "photos_full.json").unlink(missing_ok=True)
    results = photos_full.RESULTS_PATH.stat().st_mtime if photos_full.RESULTS_PATH.exists() else 0
    assert photos_full.main(["--quick", "--threads", "1"]) == 0
    data = json.loads((quick / "photos_full.json").read_text())
    assert set(data["per_photo"]) == set(photos_full.TEST)
    for row in data["per_photo"].values():
        assert row["size"] == [photos_full.QUICK["side"]] * 2  # returned at the input's size
        assert all(0 < row[k]["psnr"] < 60 for k in ("noisy", "aekit", "bm3d"))
    assert data["train"]["epochs"] >= 1 and "--steps 20" in data["flags"]
    assert (quick / "photos_full_denoise.png").stat().st_size > 1000
    after = photos_full.RESULTS_PATH.stat().st_mtime if photos_full.RESULTS_PATH.exists() else 0
    assert after == results  # a smoke test never writes into bench/results

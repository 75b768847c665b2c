"""bench/pilots/unet_speed.py: the U-Net size pilot measures what it says on a tiny budget."""

from __future__ import annotations

from bench.pilots.unet_speed import CANDIDATES, measure


def test_measure_reports_parameters_and_positive_rates():
    widths, options = CANDIDATES[0]
    r = measure(widths, options, n_infer=1000, steps=1)
    assert r["parameters"] > 0
    assert r["inference"] > 0 and r["training"] > 0

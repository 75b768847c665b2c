"""bench/families.py: the verdict of a cell (no training: the table from a results dict)."""

from __future__ import annotations

from bench.families import MARGIN_DB, report


def _cell(psnr: float, warnings: list[str] | None = None) -> dict:
    return {"psnr": psnr, "pca_psnr": 15.0, "warnings": warnings or []}


def test_a_cell_trains_only_above_the_mean_level_and_without_warnings():
    mean = 10.0
    results = {"columns": {"digits": {"mean_db": mean, "cells": {
        "dense": _cell(mean + MARGIN_DB + 0.1),
        "deep": _cell(mean + MARGIN_DB - 0.1),
        "conv": _cell(30.0, ["warning: near-constant output"]),
    }}}}
    rows = {line.split(" | ")[0].strip("| `"): line for line in report(results).splitlines()}
    assert "✗" not in rows["dense"]
    assert "✗" in rows["deep"] and "✗" in rows["conv"]
    assert rows["unet"].endswith("— |")  # not run
    assert "10.00" in rows["mean image"]

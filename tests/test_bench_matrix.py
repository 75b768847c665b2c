"""bench/matrix.py: the one-table benchmark runs end to end in its --quick mode (tiny budgets
and subsets), writes its JSON and pictures, and its report reads that JSON back."""

from __future__ import annotations

import json
import re

import pytest

import bench.matrix as matrix
from bench.common import environment


def test_results_record_the_commit_they_ran_on():
    # A long pass resumed later (--reuse) shows by this field whether it ran on the same code.
    assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?|unknown", environment()["commit"])


@pytest.mark.slow
def test_quick_matrix_runs_and_reports(capsys):
    quick = matrix.ROOT / "runs" / "matrix-quick"
    (quick / "matrix.json").unlink(missing_ok=True)
    assert matrix.main(["--quick", "--columns", "digits", "photos32"]) == 0
    data = json.loads((quick / "matrix.json").read_text())
    for col in ("digits", "photos32"):
        cell = data["columns"][col]
        for row in ("reconstruction", "denoising", "inpainting", "anomaly"):
            assert row in cell, (col, row)
        assert cell["denoising"]["model"] == "unet"  # the task's default model
        assert 0 <= cell["anomaly"]["aekit"] <= 100
        assert "aekit" in cell["reconstruction"]["probe"]
        assert (quick / f"matrix_{col}.png").stat().st_size > 1000
        assert cell["environment"]["commit"]
        # The cells' run folders live in runs/<name> (here the default name, "matrix").
        assert (matrix.ROOT / "runs" / "matrix" / f"{col}-recon-quick" / "config.json").exists()
    capsys.readouterr()
    assert matrix.main(["--quick", "--report"]) == 0
    table = capsys.readouterr().out
    assert "| `digits` | reconstruction vs PCA |" in table and "`photos32`" in table

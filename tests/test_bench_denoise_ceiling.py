"""bench/denoise_ceiling.py: the linear MMSE and Gaussian-mixture references beat the noisy input
on digits, and a dataset that cannot be loaded is skipped with its reason instead of failing the
run."""

import json

from bench.denoise_ceiling import main


def test_linear_mmse_beats_the_noisy_input(tmp_path):
    out = tmp_path / "ceiling.json"
    assert main(["--datasets", "digits", "idx:/nonexistent/mnist", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    digits = rows["digits"]
    assert digits["linear_mmse"] > digits["noisy"] + 1.0
    assert all(v < digits["linear_mmse"] for v in digits["posterior_mean"].values())
    assert set(digits["mixture_mean"]) == {"5", "10", "20"}
    assert all(v > digits["noisy"] + 1.0 for v in digits["mixture_mean"].values())
    assert "nonexistent" in rows["idx:/nonexistent/mnist"]["skipped"]

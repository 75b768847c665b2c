"""bench/peers.py (aekit vs CompressAI, pythae, PyOD, deepinv): the helpers, and a tiny smoke run
of each row (slow suite) so the harness does not rot. A row whose peer is not installed skips
with the import error; install the peers with `pip install -e .[peers]` (docs/BENCHMARKS.md)."""

from __future__ import annotations

import json

import pytest
import torch

from bench import peers


def test_tiles_round_trip():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    tiles = peers.to_tiles(x, 16)
    assert tiles.shape == (12, 3, 16, 16)
    assert torch.equal(tiles[1], x[0, :, :16, 16:])  # row-major tiles of image 0
    assert torch.equal(peers.from_tiles(tiles, 3, 32, 32), x)


def test_pad_and_crop_to_compressai_multiples():
    x = torch.rand(2, 3, 28, 28)
    padded, pad = peers._pad(x, 64)
    assert padded.shape[-2:] == (64, 64)
    assert torch.equal(peers._crop(padded, pad), x)
    same, pad = peers._pad(torch.rand(1, 3, 32, 32), 16)
    assert same.shape[-1] == 32 and pad == (0, 0, 0, 0)


def test_plan_epochs_fits_the_budget():
    calls = []

    def probe(m):  # 0.01 s per image
        calls.append(m)
        return 0.01 * m

    plan = peers.plan_epochs(100.0, 2000, probe)  # one epoch = 20 s
    assert calls == [64, peers.PROBE_IMAGES] and plan["epochs"] == 5
    assert plan["train_images"] == 2000
    plan = peers.plan_epochs(5.0, 2000, probe)  # one epoch would be over the budget
    assert plan["epochs"] == 1 and plan["train_images"] == 500


@pytest.mark.slow
@pytest.mark.parametrize("row", peers.ROWS)
def test_smoke_row(row, tmp_path, needs_fashion):
    why = peers.peer_missing(row)
    if why:
        pytest.skip(f"peer for the {row} row not installed here ({why}); "
                    "pip install -e .[peers]")
    out = tmp_path / f"{row}.json"
    assert peers.main(["--row", row, "--smoke", "--threads", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["smoke"] and res["row"] == row and res["versions"][peers.PEERS[row]]
    key = "datasets" if row == "anomaly" else "sets"
    (only,) = res[key].values()
    if row == "anomaly":
        assert set(only["mean"]) == {"aekit Detector", "PyOD KNN"}
        assert all(0 <= v["auroc"] <= 100 for v in only["mean"].values())
    elif row == "compression":
        (peer,) = [k for k in only["curves"] if k != "aekit codec"]
        for pts in only["curves"].values():
            assert pts[0]["bpp"] > 0 and pts[0]["psnr"] > 5
        assert peer in only["bd_rate"]  # one rate point: recorded as n/a with the reason
    elif row == "vae":
        assert {"aekit vae", "pythae VAE"} <= set(only["sides"])
        params = {v["parameters"] for v in only["sides"].values()}
        assert len(params) == 1  # the same networks on both sides
        assert all(v["test_nll_iwae_nats"] > 0 for v in only["sides"].values())
    else:
        assert {"aekit unet", "deepinv DnCNN"} <= set(only["sides"])
        assert all(v["quality"]["psnr"] > 5 for v in only["sides"].values())

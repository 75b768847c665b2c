"""End-of-training evaluation streams the test set in pixel-budgeted batches and accumulates the
metric sums: the metrics of the whole set measured in memory, with one batch held at a time."""

from __future__ import annotations

import json

import pytest
import torch

from aekit.cli import main
from aekit.config import ModelConfig
from aekit.core.io import load_model
from aekit.data.corrupt import parse_corruption
from aekit.eval import evaluate
from aekit.eval.evaluate import (
    eval_batch_size,
    evaluate_set,
    measure,
    reconstruct_all,
)
from aekit.eval.metrics import quality
from aekit.models import build_model
from tests.conftest import make_blobs


def _model(channels: int = 1, size: int = 12) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(name="conv", in_channels=channels, height=size, width=size,
                                   latent_dim=6))


def _set(n: int = 53, channels: int = 1, size: int = 12) -> torch.Tensor:
    return torch.from_numpy(make_blobs(n, size=size, channels=channels, seed=3))


def test_measure_does_not_depend_on_the_chunking(monkeypatch):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(37, 2, 9, 11, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    whole = measure(y, x, chunk=1000)
    for chunk in (1, 3, 7, 36):
        assert measure(y, x, chunk=chunk) == whole  # exact sums: bit-identical
    # SSIM's intermediates are sliced (SSIM_VALUES): slices of 1 to 5 images change nothing.
    for values in (1, 2 * 9 * 11 * 5):
        monkeypatch.setattr(evaluate, "SSIM_VALUES", values)
        assert measure(y, x) == whole
    # ... and agrees with the one-shot definitions (pooled MSE, mean per-image SSIM).
    ref = quality(y, x)
    for key in ("mse", "psnr", "ssim"):
        assert whole[key] == pytest.approx(ref[key], rel=1e-12)


@pytest.mark.parametrize("corrupt", ["", "gaussian:0.5", "mask:random-pixels:0.3"])
def test_streamed_metrics_equal_the_in_memory_ones(corrupt):
    model, x8 = _model(), _set()
    fn = parse_corruption(corrupt) if corrupt else None
    budget = 7 * 144  # 7 images of 1x12x12 a batch: 8 batches, the last one partial
    assert eval_batch_size((1, 12, 12), pixel_budget=budget) == 7
    ev = evaluate_set(model, x8, corrupt=fn, seed=5, pixel_budget=budget)
    x_in, x_hat = reconstruct_all(model, x8, batch_size=7, corrupt=fn, seed=5)
    clean = x8.float() / 255.0
    assert ev.test == measure(x_hat, clean)
    if fn is None:
        assert ev.corrupted_input is None
    else:
        assert ev.corrupted_input == measure(x_in, clean)
        assert ev.corrupted_input["mse"] > 0
    for shown, full in zip(ev.preview, (x_in, x_hat, clean), strict=True):
        assert torch.equal(shown, full[:10])


def test_batches_stay_within_the_pixel_budget():
    model, x8 = _model(channels=3, size=16), _set(n=40, channels=3, size=16)
    seen: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].numel()))
    budget = 5 * 3 * 16 * 16 + 100
    evaluate_set(model, x8, pixel_budget=budget)
    assert sum(seen) == x8.numel() and max(seen) <= budget and len(seen) == 8
    # An image bigger than the budget still goes through, one at a time.
    seen.clear()
    evaluate_set(model, x8[:3], pixel_budget=10)
    assert seen == [3 * 16 * 16] * 3


def test_preview_of_a_set_smaller_than_the_preview():
    ev = evaluate_set(_model(), _set(n=4), preview=10, pixel_budget=144)
    assert [len(t) for t in ev.preview] == [4, 4, 4]


def test_train_and_eval_report_the_streamed_metrics(tmp_path, tiny_npz, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "conv", "--dataset", tiny_npz, "--latent-dim", "4",
                 "--epochs", "1", "--batch-size", "16", "--corrupt", "gaussian:0.3",
                 "--out", str(out), "--quiet"]) == 0
    stored = json.loads((out / "metrics.json").read_text())
    model, run = load_model(out)
    from aekit.data import load_dataset

    ds = load_dataset(tiny_npz)
    fn = parse_corruption("gaussian:0.3")
    x_in, x_hat = reconstruct_all(model, ds.test_x, corrupt=fn, seed=run.train_cfg.seed)
    clean = ds.test_x.float() / 255.0
    assert stored["test"] == measure(x_hat, clean)
    assert stored["corrupted_input"] == measure(x_in, clean)
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == stored["test"]


def test_restoration_pca_baseline_projects_the_corrupted_input():
    """A restoration run's PCA baseline restores the corrupted test images (not the clean ones):
    with every component kept it gives back the noisy input, drawn as evaluation draws it."""
    from aekit.eval.baselines import pca_baseline

    train = torch.from_numpy(make_blobs(300))
    test = torch.from_numpy(make_blobs(40, seed=5))
    noise = parse_corruption("gaussian:0.3")
    full = pca_baseline(train, test, k=144, corrupt=noise, batch_size=16)
    ev = evaluate_set(_model(), test, corrupt=noise, batch_size=16)
    assert full["input"] == "corrupted"
    assert full["psnr"] == pytest.approx(ev.corrupted_input["psnr"], abs=0.05)
    small = pca_baseline(train, test, k=4, corrupt=noise, batch_size=16)
    assert small["psnr"] > full["psnr"] + 1.0  # a few components average the noise away
    assert pca_baseline(train, test, k=144)["psnr"] > 40  # clean input: near-exact

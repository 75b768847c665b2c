"""Nested dropout with several prefix draws per example, and the per-image log-MSE loss."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from aekit.cli import main
from aekit.config import ModelConfig
from aekit.errors import ConfigError, RunError
from aekit.models import build_model
from aekit.models.base import nested_dropout
from aekit.train.losses import LOSSES, build_loss
from aekit.train.objective import tile_target
from tests.conftest import make_blobs


def test_nested_dropout_draws_repeat_the_batch_with_independent_prefixes() -> None:
    torch.manual_seed(0)
    z = torch.randn(64, 10)
    out = nested_dropout(z, p=0.3, draws=3)  # (3*64, 10)
    assert out.shape == (192, 10)
    kept = (out != 0).sum(1)  # prefix length of each row (z has no exact zeros)
    for row in range(192):
        k = int(kept[row])
        assert torch.equal(out[row, :k], z[row % 64, :k]) and not out[row, k:].any()
    per_copy = kept.view(3, 64)
    assert not torch.equal(per_copy[0], per_copy[1])  # the draws are independent


def test_forward_with_draws_and_tiled_target() -> None:
    model = build_model(ModelConfig("deep", latent_dim=6, widths=(16, 8),
                                    options={"nested": True, "nested_draws": 4}))
    x = torch.rand(5, 1, 28, 28)
    model.train()
    out = model(x)
    assert out["x_hat"].shape == (20, 1, 28, 28) and out["z"].shape == (5, 6)
    target = tile_target(out, x)
    assert target.shape == (20, 1, 28, 28) and torch.equal(target[15:], x)
    model.eval()  # evaluation decodes every example once, from the full code or `keep`
    assert model(x)["x_hat"].shape == (5, 1, 28, 28)
    assert model(x, keep=2)["x_hat"].shape == (5, 1, 28, 28)
    with pytest.raises(RunError, match="reconstructions for a batch of 3"):
        tile_target(out, x[:3])


def test_vae_elbo_weights_kl_per_code_not_per_draw() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig("vae", latent_dim=4, widths=(16, 8), options={"nested": True})
    one = build_model(cfg)
    many = build_model(ModelConfig("vae", latent_dim=4, widths=(16, 8),
                                   options={"nested": True, "nested_draws": 3}))
    many.load_state_dict(one.state_dict())
    x = torch.rand(6, 1, 28, 28)
    loss = build_loss("", many)
    out = many.train()(x)
    _, logs = loss(out, tile_target(out, x))
    mu, logvar = out["mu"], out["logvar"]
    kl = float(-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()).detach()) / 6
    assert math.isclose(logs["kl_nats"], kl, rel_tol=1e-5)


@pytest.mark.parametrize("options, needle", [
    ({"nested": True, "nested_draws": 0}, "nested_draws=0"),
    ({"nested": True, "nested_draws": 65}, "nested_draws=65"),
    ({"nested": True, "nested_p": 0.0}, "nested_p=0.0"),
])
def test_bad_nested_settings_fail_when_the_model_is_built(options, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_model(ModelConfig("deep", latent_dim=4, widths=(8, 8), options=options))


def test_logmse_is_the_mean_log_of_per_image_errors() -> None:
    loss = LOSSES["logmse"]()
    target = torch.zeros(2, 1, 2, 2)
    x_hat = torch.stack([torch.full((1, 2, 2), 0.1), torch.full((1, 2, 2), 0.3)])
    value, logs = loss({"x_hat": x_hat}, target)
    want = 0.01 * (math.log(0.01 + 1e-4) + math.log(0.09 + 1e-4)) / 2
    assert math.isclose(float(value), want, rel_tol=1e-6)
    assert math.isclose(logs["mse"], 0.05, rel_tol=1e-6)
    # A tenfold error on one image moves the loss by the same amount wherever it starts.
    a, _ = loss({"x_hat": x_hat * math.sqrt(10)}, target)
    assert math.isclose(float(a) - float(value), 0.01 * math.log(10), rel_tol=1e-2)


def test_cli_trains_nested_draws_with_logmse(tmp_path, capsys) -> None:
    x = make_blobs(96)
    np.savez(tmp_path / "d.npz", x_train=x[:64], x_test=x[64:])
    run = tmp_path / "run"
    argv = ["train", "--model", "deep", "--dataset", f"npz:{tmp_path / 'd.npz'}",
            "--latent-dim", "4", "--widths", "16,8", "--epochs", "2", "--batch-size", "16",
            "--nested", "--option", "nested_draws=3", "--loss", "logmse", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["options"]["nested_draws"] == 3 and cfg["train"]["loss"] == "logmse"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["history"][-1]["train_loss"] < 0  # ln of an MSE below 1
    assert main(["eval", str(run), "--keep", "2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--option", "nested_draws=-1", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nested_draws=-1" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()

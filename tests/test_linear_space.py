"""The conv's linear path in pixel or logit space, and the automatic choice between them."""

from __future__ import annotations

import pytest
import torch

from aekit.config import ModelConfig
from aekit.models import build_model
from aekit.models.build import resolve_options, saved_options
from aekit.models.pca_start import PIXEL_EPS, PIXEL_MARGIN_DB, pca_start
from tests.test_defaults import make_strokes


def _digits() -> torch.Tensor:
    from aekit.data import load_dataset

    return load_dataset("digits").train_x


def _conv(x: torch.Tensor, latent: int, **options) -> ModelConfig:
    c, h, w = x.shape[1:]
    return ModelConfig(name="conv", in_channels=c, height=h, width=w, latent_dim=latent,
                       options=options)


def test_pixel_space_start_is_pca_itself():
    """Before any step a pixel-space conv outputs PCA's reconstruction, clipped to
    [PIXEL_EPS, 1 - PIXEL_EPS], and its code is the PCA code."""
    x = _digits()
    model = build_model(_conv(x, 16, linear_space="pixel"))
    assert "pixel space" in model.init_from_data(x, seed=0)
    start = pca_start(x, 16, seed=0)
    target = x.float() / 255
    with torch.inference_mode():
        out = model(target)
    pca = (start.codes @ start.basis + start.mean).clamp(PIXEL_EPS, 1 - PIXEL_EPS)  # (N, 64)
    assert torch.allclose(out["x_hat"].flatten(1), pca, atol=1e-5)
    assert torch.allclose(out["z"], start.codes, atol=1e-4)


@pytest.mark.parametrize("name,latent,expected", [("digits", 32, "pixel"),
                                                  ("digits", 16, "logit"),
                                                  ("strokes", 16, "logit")])
def test_auto_takes_pixel_space_only_when_its_start_is_clearly_better(name, latent, expected):
    """8x8 digits at 32 codes: the pixel start 26.70 dB vs the logit fit's 25.18 on the
    training images (pixel); at 16 codes 20.03 vs 20.28 (logit); stroke images 18.33 vs 18.20,
    within the margin (logit). The choice is written into the config, so the run rebuilds the
    same model."""
    x = _digits() if name == "digits" else make_strokes(300)
    start = pca_start(x, latent)
    gain = start.psnr("pixel") - start.psnr("logit")
    assert (gain >= PIXEL_MARGIN_DB) == (expected == "pixel")
    resolved = resolve_options(_conv(x, latent), train_x=x)
    assert resolved.options["linear_space"] == expected
    assert build_model(resolved).pixel_path == (expected == "pixel")
    # an explicit value is kept; no linear path means nothing to choose (logit)
    kept = resolve_options(_conv(x, latent, linear_space="pixel"), train_x=x)
    assert kept.options["linear_space"] == "pixel"
    plain = resolve_options(_conv(x, latent, linear=False), train_x=x)
    assert plain.options["linear_space"] == "logit"
    # built without data, "auto" is the logit space
    assert not build_model(_conv(x, latent)).pixel_path


def test_runs_saved_before_the_option_rebuild_in_logit_space():
    cfg = ModelConfig(name="conv", in_channels=1, height=8, width=8, latent_dim=4,
                      options={"linear": True})
    assert saved_options(cfg).options["linear_space"] == "logit"
    assert not build_model(saved_options(cfg)).pixel_path


def _fit_with_validation(monkeypatch, prefer_start: bool, name: str = "conv"):
    """A short fit on 8x8 digits whose validation loss is scripted: the start scores best
    (prefer_start) or every trained epoch beats it."""
    from aekit.config import TrainConfig
    from aekit.train.loop import fit
    from aekit.train.objective import Reconstruction

    x = _digits()[:240]
    train_x, val_x = x[:200], x[200:]
    calls = []

    def scripted(self, model, images, device):
        calls.append(len(images))
        return (0.0 if len(calls) == 1 else 1.0) if prefer_start else 1.0 / len(calls)

    monkeypatch.setattr(Reconstruction, "validation_loss", scripted)
    torch.manual_seed(0)
    cfg = _conv(x, 8, linear_space="pixel") if name == "conv" else ModelConfig(
        name=name, in_channels=1, height=8, width=8, latent_dim=8)
    model = build_model(cfg)
    model.init_from_data(train_x, seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, train_x, TrainConfig(epochs=2, batch_size=50, seed=0), val_x=val_x)
    return model, result, start, train_x, val_x, cfg


@pytest.mark.parametrize("name", ["conv", "dense", "deep", "vae"])
def test_a_kept_start_is_fitted_again_with_the_validation_images(monkeypatch, name):
    """Validation kept the PCA start (best epoch 0): the saved model is that start fitted on
    the training and validation images together, exactly as if it had been built from them."""
    model, result, start, train_x, val_x, cfg = _fit_with_validation(monkeypatch, True, name)
    assert result.best_epoch == 0
    assert any("fitted again with the validation images" in note for note in result.notes)
    torch.manual_seed(0)
    expected = build_model(cfg)
    expected.init_from_data(torch.cat([train_x, val_x]), seed=0)
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in expected.state_dict().items())
    assert not all(torch.equal(got[k], v) for k, v in start.items())  # it did change


def test_a_trained_epoch_is_never_refitted(monkeypatch):
    model, result, start, *_ = _fit_with_validation(monkeypatch, False)
    assert result.best_epoch == 2
    assert not any("fitted again" in note for note in result.notes)

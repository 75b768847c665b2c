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

"""The `vae` model: shapes, loss, the IWAE bound against the ELBO, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import build_model
from aekit.models.variational import binarize, log_likelihood_bounds
from aekit.train.losses import build_loss


def make(backbone: str, shape=(1, 12, 12), latent: int = 4, **opts) -> torch.nn.Module:
    torch.manual_seed(0)
    c, h, w = shape
    widths = (16, 8) if backbone == "dense" else (8, 16)
    return build_model(ModelConfig("vae", c, h, w, latent, widths,
                                   {"backbone": backbone, **opts}))


@pytest.mark.parametrize("backbone", ["dense", "conv"])
@pytest.mark.parametrize("shape", [(1, 12, 12), (3, 9, 5)])
def test_forward_shapes_and_modes(backbone, shape):
    model = make(backbone, shape)
    x = torch.rand(3, *shape)
    out = model.train()(x)
    assert out["x_hat"].shape == out["logits"].shape == x.shape
    for key in ("z", "mu", "logvar"):
        assert out[key].shape == (3, 4)
    assert not torch.allclose(out["z"], out["mu"])  # training samples z
    out = model.eval()(x)
    assert torch.equal(out["z"], out["mu"])  # evaluation decodes the mean
    assert torch.equal(model.encode(x), out["mu"])
    assert model.default_loss == "vae"
    assert model(x, keep=2)["x_hat"].shape == x.shape


def test_loss_is_negative_elbo_per_pixel_and_beta_scales_kl():
    model = make("dense").eval()
    x = torch.rand(5, 1, 12, 12)
    out = model(x)
    loss, logs = build_loss("", model)(out, x)
    assert loss.item() == pytest.approx((logs["rec_nats"] + logs["kl_nats"]) / 144, rel=1e-5)
    heavy = make("dense", beta=4.0).eval()
    loss4, logs4 = build_loss("", heavy)(heavy(x), x)
    assert loss4.item() == pytest.approx((logs4["rec_nats"] + 4 * logs4["kl_nats"]) / 144,
                                         rel=1e-5)


@pytest.mark.parametrize("backbone", ["dense", "conv"])
def test_iwae_bound_is_tighter_than_elbo(backbone):
    model = make(backbone)
    x = (torch.rand(6, 1, 12, 12) * 255).to(torch.uint8)
    r = log_likelihood_bounds(model, x, k=20)
    assert r["images"] == 6 and r["k"] == 20
    assert math.isfinite(r["test_nll_iwae_nats"])
    assert r["test_nll_iwae_nats"] <= -r["test_elbo_nats"] + 1e-9
    # k = 1 makes the two bounds the same number
    r1 = log_likelihood_bounds(model, x, k=1)
    assert r1["test_nll_iwae_nats"] == pytest.approx(-r1["test_elbo_nats"], rel=1e-9)
    assert model.training  # the mode is restored


def test_extra_metrics_uses_the_options():
    model = make("dense", iwae_k=5, iwae_images=3)
    m = model.extra_metrics((torch.rand(10, 1, 12, 12) * 255).to(torch.uint8))
    assert m["vae"]["images"] == 3 and m["vae"]["k"] == 5


def test_binarize_is_fixed_and_keeps_binary_images():
    x = (torch.rand(4, 1, 6, 6) * 255).to(torch.uint8)
    assert torch.equal(binarize(x), binarize(x))
    assert set(binarize(x).unique().tolist()) <= {0.0, 1.0}
    b = (torch.rand(4, 1, 6, 6) > 0.5).to(torch.uint8) * 255
    assert torch.equal(binarize(b), b.float() / 255)


def test_sample_is_seeded():
    model = make("conv")
    a = model.sample(4, torch.Generator().manual_seed(1))
    b = model.sample(4, torch.Generator().manual_seed(1))
    assert a.shape == (4, 1, 12, 12) and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1


@pytest.mark.parametrize("opts, needle", [
    ({"backbone": "rnn"}, "backbone"),
    ({"beta": "big"}, "beta"),
    ({"beta": -1.0}, "beta"),
    ({"colour": 1}, "unknown options"),
    ({"backbone": "dense", "depth": 2}, "conv only"),
])
def test_bad_options_are_config_errors(opts, needle):
    with pytest.raises(ConfigError, match=needle):
        build_model(ModelConfig("vae", 1, 12, 12, 4, (), opts))


@pytest.mark.parametrize("backbone", ["dense", "conv"])
def test_vae_starts_at_pca(backbone):
    """Untrained, the VAE decodes its posterior mean as PCA behind the sigmoid, its codes are
    whitened (unit variance, as the prior), and its posterior is narrower than the prior on the
    PCA units. With pca_start=false nothing is started."""
    from aekit.data import load_dataset
    from aekit.models.pca_start import pca_start

    x = load_dataset("digits").train_x
    model = make(backbone, shape=(1, 8, 8), latent=8)
    assert "PCA-8 " in model.init_from_data(x, seed=0)
    start = pca_start(x, 8, seed=0)
    expected = torch.sigmoid(start.codes @ start.decode + start.logit_mean)  # (N, 64)
    with torch.inference_mode():
        out = model.eval()(x.float() / 255)
    assert torch.allclose(out["x_hat"].flatten(1), expected, atol=1e-5)
    assert torch.allclose(out["mu"].std(0), torch.ones(8), atol=1e-3)
    assert (out["logvar"] < 0).all()
    plain = make(backbone, shape=(1, 8, 8), latent=8, pca_start=False)
    assert plain.init_from_data(x, seed=0) is None


def _cfg(likelihood: str) -> ModelConfig:
    return ModelConfig(name="vae", latent_dim=4, options={"likelihood": likelihood})


def test_likelihood_auto_is_decided_from_the_images():
    from aekit.models.variational import VAE

    grey = (torch.rand(20, 1, 6, 6) * 255).to(torch.uint8)
    binary = (torch.rand(20, 1, 6, 6) > 0.7).to(torch.uint8) * 255
    assert VAE.options_from_data(_cfg("auto"), grey)["likelihood"] == "gaussian"
    assert VAE.options_from_data(_cfg("auto"), binary)["likelihood"] == "bernoulli"
    # float images in [0, 1] (what the Python API keeps): binary means 0.0 or 1.0
    assert VAE.options_from_data(_cfg("auto"), binary / 255.0)["likelihood"] \
        == "bernoulli"
    assert VAE.options_from_data(_cfg("auto"), grey / 255.0)["likelihood"] == "gaussian"
    assert VAE.options_from_data(_cfg("gaussian"), binary)["likelihood"] == "gaussian"
    # Built without data, "auto" means the general choice.
    assert make("dense").likelihood == "gaussian"
    assert make("dense", likelihood="bernoulli").likelihood == "bernoulli"


def test_gaussian_loss_fits_the_variance_and_its_bounds_are_ordered():
    model = make("dense").eval()
    x = torch.rand(5, 1, 12, 12)
    out = model(x)
    loss, logs = build_loss("", model)(out, x)
    mse = float((out["x_hat"] - x).detach().pow(2).mean())
    assert logs["rec_nats"] == pytest.approx(72 * (math.log(2 * math.pi * mse) + 1), rel=1e-5)
    assert logs["sigma"] == pytest.approx(math.sqrt(mse), rel=1e-5)
    assert loss.item() == pytest.approx((logs["rec_nats"] + logs["kl_nats"]) / 144, rel=1e-5)
    r = log_likelihood_bounds(model, (x * 255).to(torch.uint8), k=10)
    assert r["likelihood"] == "gaussian" and r["variance"] > 0
    assert r["test_nll_iwae_nats"] <= -r["test_elbo_nats"] + 1e-9


def _grey_textures(n: int, seed: int = 0) -> np.ndarray:
    """Smooth mid-grey random fields (16x16): what texture patches look like to a VAE."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 1, 4, 4, generator=gen)
    smooth = F.interpolate(noise, size=(16, 16), mode="bicubic", align_corners=False)
    return (0.5 + 0.3 * (smooth - 0.5)).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("options, trains", [({}, True),
                                             ({"likelihood": "bernoulli", "pca_start": False},
                                              False)])
def test_default_vae_trains_on_grey_textures(options, trains):
    """The former VAE (Bernoulli, random start) ends at the mean image on mid-grey patches; the
    default (likelihood decided from the data: gaussian; PCA start) ends well above it."""
    from aekit import Autoencoder

    x, test = _grey_textures(600), _grey_textures(200, seed=1)
    vae = Autoencoder(model="vae", latent_dim=16, epochs=40, val_fraction=0.0, random_state=0,
                      options=options, verbose=False).fit(x)
    assert vae.model_config_.options["likelihood"] == ("gaussian" if trains else "bernoulli")
    target = torch.from_numpy(test).float() / 255
    mean = torch.from_numpy(x).float().mean(0) / 255
    with torch.inference_mode():
        out = vae.module_.eval()(target)["x_hat"]
    gain = 10 * math.log10(float((mean - target).pow(2).mean())
                           / float((out - target).pow(2).mean()))
    assert (gain > 3.0) == trains

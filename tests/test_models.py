"""Shape, range and gradient checks for every registered model (registry-parametrized)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import build_model, default_config
from aekit.models.summary import summary
from aekit.registry import all_models
from aekit.train.losses import LOSSES

MODELS = all_models()

ALL = sorted(MODELS)
FREE = [n for n in ALL if MODELS[n].fixed_shape is None]  # models that take any C, H, W
SHAPES = [(3, 32, 32), (1, 20, 36), (1, 8, 8)]  # RGB, non-square, tiny
ODD = [(3, 9, 5), (1, 27, 13)]  # odd sizes: the dense/deep/conv models round-trip any size
OWN = ["dense", "deep", "conv", *(n for n in ALL if n.startswith("seed-"))]


def make(name: str, shape: tuple[int, int, int] | None = None, **kw) -> torch.nn.Module:
    cfg = default_config(name)
    c, h, w = shape if shape is not None else cfg.shape
    # A two-domain model (swap) takes an image of each domain stacked on the channel axis.
    c *= len(getattr(MODELS[name], "domains", ())) or 1
    cfg = dataclasses.replace(cfg, in_channels=c, height=h, width=w)
    torch.manual_seed(0)
    return build_model(dataclasses.replace(cfg, **kw))


def check_roundtrip(model: torch.nn.Module, shape: tuple[int, int, int]) -> None:
    x = torch.rand(2, *shape)
    out = model(x)
    assert {"x_hat", "logits", "z"} <= set(out)
    assert out["x_hat"].shape == x.shape
    assert out["logits"].shape == x.shape
    assert 0.0 <= out["x_hat"].min() and out["x_hat"].max() <= 1.0
    z = model.encode(x)
    assert z.shape[0] == 2
    if hasattr(model, "latent_shape"):
        assert tuple(z.shape[1:]) == tuple(model.latent_shape)
    assert model.decode(z).shape == x.shape
    if out["z"].shape == z.shape:  # forward's z is the code (maybe noisy or sampled) ...
        # ... so it decodes to forward's logits (unet's forward reports only its bottleneck)
        assert torch.allclose(model.decode(out["z"]), out["logits"], atol=1e-5)
    assert torch.allclose(torch.sigmoid(out["logits"]), out["x_hat"], atol=1e-6)


def test_registry_has_the_issue_models() -> None:
    expected = {"dense", "deep", "conv", "seed-dense", "seed-deep", "seed-keras-conv",
                "seed-torch-conv", "seed-tf-conv"}
    assert expected <= set(MODELS)
    for name in ALL:
        assert MODELS[name].registry_name == name


@pytest.mark.parametrize("name", ALL)
def test_default_shape_roundtrip(name: str) -> None:
    model = make(name)
    check_roundtrip(model, model.cfg.shape)
    assert model.default_loss in LOSSES


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", FREE)
def test_any_shape_roundtrip(name: str, shape: tuple[int, int, int]) -> None:
    model = make(name, shape, latent_dim=8)
    check_roundtrip(model, model.cfg.shape)


@pytest.mark.parametrize("shape", ODD)
@pytest.mark.parametrize("name", ["dense", "deep", "conv"])
def test_odd_shape_roundtrip(name: str, shape: tuple[int, int, int]) -> None:
    check_roundtrip(make(name, shape, latent_dim=8), shape)


@pytest.mark.parametrize("name", ALL)
def test_gradient_flows(name: str) -> None:
    model = make(name)
    x = torch.rand(2, *model.cfg.shape)
    torch.nn.functional.mse_loss(model(x)["x_hat"], x).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert any(g is not None and g.abs().sum() > 0 for g in grads.values())
    if name in OWN:  # plain autoencoders: the reconstruction loss reaches every parameter
        assert [n for n, g in grads.items() if g is None] == []


@pytest.mark.parametrize("name", ALL)
def test_summary_lists_layers_and_totals(name: str) -> None:
    model = make(name)
    text = summary(model)
    assert f"Total params: {model.num_parameters():,}" in text
    assert "Output Shape" in text and "(None, " in text


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_model(ModelConfig(name="nope"))


@pytest.mark.parametrize("spatial", [False, True])
def test_conv_latent_size_and_tiny_inputs(spatial: bool) -> None:
    model = make("conv", (1, 28, 28), latent_dim=16, options={"spatial": spatial})
    z = model.encode(torch.rand(3, 1, 28, 28))
    assert z.shape == ((3, 16, 7, 7) if spatial else (3, 16))
    tiny = make("conv", (1, 8, 8), latent_dim=4, options={"spatial": spatial})
    check_roundtrip(tiny, (1, 8, 8))
    check_roundtrip(make("conv", (2, 1, 3), latent_dim=4), (2, 1, 3))


def test_conv_widths_and_options() -> None:
    model = make("conv", widths=(8, 16, 24), options={"activation": "relu", "depth": 2})
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [8, 8, 16, 16, 24, 24]
    check_roundtrip(model, (1, 28, 28))
    check_roundtrip(make("conv", (3, 20, 36), options={"hidden": 16}), (3, 20, 36))
    with pytest.raises(ConfigError, match="unknown options"):
        make("conv", options={"bogus": 1})
    with pytest.raises(ConfigError, match="activation"):
        make("conv", options={"activation": "swish2"})


def test_deep_widths_override() -> None:
    model = make("deep", widths=(100, 50), latent_dim=5)
    sizes = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert sizes == [100, 50, 5]


@pytest.mark.parametrize("name", OWN)
def test_base_class_options_are_accepted(name: str) -> None:
    model = make(name, options={"nested": True, "nested_p": 0.2})
    model.train()
    out = model(torch.rand(2, *model.cfg.shape))
    assert out["x_hat"].shape == (2, *model.cfg.shape)
    if name in ("dense", "deep"):
        with pytest.raises(ConfigError, match="unknown options"):
            make(name, options={"spatial": True})

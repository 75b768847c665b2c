"""The seed presets reproduce the seed texts' architectures exactly."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import build_model, default_config
from aekit.registry import all_models

MODELS = all_models()

SEEDS = sorted(n for n in MODELS if n.startswith("seed-"))

# Counted by hand from the seed texts (weights + biases per layer).
PARAMS = {
    # 784*32+32 + 32*784+784
    "seed-dense": 50_992,
    # 784-512-256-128-64 and back: (784*512+512) + (512*256+256) + ... + (512*784+784)
    "seed-deep": 1_149_520,
    # convs 1->16, 16->8, 8->4 | 4->8, 8->8, 8->16, 16->1, 3x3 + bias each
    "seed-keras-conv": 160 + 1_160 + 292 + 296 + 584 + 1_168 + 145,
    # convs 160 + 4,640 + 18,496 + 36,928, Linear 16,010 | Linear 17,600, ConvT 36,928 +
    # 18,464 + 4,624 + 145
    "seed-torch-conv": 153_995,
    # convs 1->32, 32->32, 32->16 | 16->16, 16->32, 32->32, 32->1
    "seed-tf-conv": 320 + 9_248 + 4_624 + 2_320 + 4_640 + 9_248 + 289,
}
LATENT = {
    "seed-dense": (32,),
    "seed-deep": (64,),
    "seed-keras-conv": (4, 4, 4),
    "seed-torch-conv": (10,),
    "seed-tf-conv": (16, 4, 4),
}


def test_every_seed_preset_is_checked() -> None:
    assert set(SEEDS) == set(PARAMS)


@pytest.mark.parametrize("name", SEEDS)
def test_seed_param_count_and_latent(name: str) -> None:
    model = build_model(default_config(name))
    assert model.num_parameters() == PARAMS[name]
    assert tuple(model.encode(torch.rand(2, 1, 28, 28)).shape[1:]) == LATENT[name]
    assert model.seed_epochs > 0 and model.seed_source


@pytest.mark.parametrize("name", SEEDS)
def test_seed_rejects_other_shapes_and_latents(name: str) -> None:
    cfg = default_config(name)
    assert cfg.shape == (1, 28, 28)
    with pytest.raises(ConfigError) as err:
        build_model(dataclasses.replace(cfg, in_channels=3, height=32, width=32))
    msg = str(err.value)
    assert name in msg and "(1, 28, 28)" in msg and "(3, 32, 32)" in msg
    with pytest.raises(ConfigError, match="fixed latent"):
        build_model(dataclasses.replace(cfg, latent_dim=cfg.latent_dim + 1))
    with pytest.raises(ConfigError, match="no widths"):
        build_model(dataclasses.replace(cfg, widths=(8,)))


def test_seed_recipes() -> None:
    assert MODELS["seed-tf-conv"].default_loss == "bce"
    assert MODELS["seed-tf-conv"].seed_batch_size == 200
    assert MODELS["seed-tf-conv"].seed_epochs == 100
    assert MODELS["seed-keras-conv"].seed_batch_size == 128
    assert MODELS["seed-keras-conv"].seed_epochs == 25
    assert MODELS["seed-torch-conv"].seed_epochs == 20
    assert MODELS["seed-dense"].seed_epochs == MODELS["seed-deep"].seed_epochs == 50


def test_seed_torch_conv_is_the_listed_sequential() -> None:
    model = build_model(default_config("seed-torch-conv"))
    kinds = [type(m).__name__ for m in [*model.encoder, *model.decoder]]
    assert kinds == [
        "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten",
        "Linear", "Linear", "ReLU", "Unflatten", "ConvTranspose2d", "ReLU", "ConvTranspose2d",
        "ReLU", "ConvTranspose2d", "ReLU", "ConvTranspose2d",
    ]
    # The seed's nn.Sigmoid is applied by forward(): x_hat == sigmoid(last ConvTranspose output).
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out["x_hat"], torch.sigmoid(model.decoder(model.encoder(x))))


def test_seed_keras_conv_shapes_follow_the_seed() -> None:
    model = build_model(default_config("seed-keras-conv"))
    x = torch.rand(1, 1, 28, 28)
    sizes = []
    for layer in [*model.encoder, *model.decoder]:
        x = layer(x)
        sizes.append(tuple(x.shape[2:]))
    # pools 28 -> 14 -> 7 -> 4 ('same'), then 4 -> 8 -> 16, 'valid' conv 16 -> 14, up to 28
    assert sizes[8] == (4, 4) and sizes[14] == (16, 16) and sizes[15] == (14, 14)
    assert sizes[-1] == (28, 28)


def test_default_config_of_a_free_model_is_the_plain_default() -> None:
    assert default_config("conv") == ModelConfig(name="conv")

"""Typed model options: one dataclass per model, checked once, listed by `aekit models`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models import build_model, resolve_options
from aekit.models.cards import ConvOptions, NestedOptions
from aekit.registry import all_models, model_cards


@pytest.mark.parametrize("options, needle", [
    ({"depth": 0}, "depth=0 is out of range; allowed: 1..8"),
    ({"depth": 1.5}, "depth=1.5 must be an integer"),
    ({"depth": True}, "depth=True must be an integer"),
    ({"spatial": 1}, "spatial=1 must be true or false"),
    ({"activation": "swish"}, "activation='swish' is unknown; use one of relu, gelu"),
    ({"activation": 3}, "activation=3 must be a string"),
    ({"bogus": 1}, "unknown options ['bogus']; allowed: spatial, activation, depth, hidden"),
    ({"nested_p": 2.0}, "nested_p=2.0 is out of range"),
    ({"nested_p": float("nan")}, "nested_p=nan must be a finite number"),
])
def test_a_bad_option_names_the_model_option_value_and_what_is_allowed(options, needle):
    with pytest.raises(ConfigError, match="conv") as info:
        build_model(ModelConfig("conv", height=8, width=8, latent_dim=2, options=options))
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_models_read_typed_options_and_json_keys_survive():
    model = build_model(ModelConfig("conv", height=8, width=8, latent_dim=2,
                                    options={"depth": 2, "hidden": 4}))
    assert model.options == ConvOptions(depth=2, hidden=4)
    codec = build_model(ModelConfig("codec", height=4, width=4, latent_dim=3,
                                    options={"lambda": 0.01, "clusters": 2}))
    assert codec.options.rate_weight == 0.01 and codec.lmbda == 0.01
    # a new run's config spells out every default under its JSON name
    cfg = resolve_options(ModelConfig("codec", height=4, width=4, latent_dim=3))
    assert cfg.options["lambda"] == 0.002 and "rate_weight" not in cfg.options


def test_every_card_matches_its_class_and_every_default_builds():
    cards, classes = model_cards(), all_models()
    assert set(cards) <= set(classes)
    for name, card in cards.items():
        cls = classes[name]
        assert cls.card is card and cls.options_type is card.options
        assert cls.default_loss == card.loss and cls.fixed_shape == card.fixed_shape
        assert cls.registry_name == name
    assert set(NestedOptions.defaults()) == set(cls.common_options)


def test_listing_models_does_not_import_torch():
    code = ("import sys; from aekit.cli import main; rc = main(['models']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "conv" in proc.stdout and "nested_draws=1" in proc.stdout


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
                    | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3), max_leaves=4)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["spatial", "activation", "depth", "hidden", "nested", "nested_p",
                            "nested_draws", "other"]), value=JSON)
def test_any_json_value_is_accepted_or_a_config_error(key, value):
    options = {key: value}
    try:
        ConvOptions.parse({k: v for k, v in options.items() if k not in NestedOptions.defaults()},
                          "conv")
        NestedOptions.parse({k: v for k, v in options.items() if k in NestedOptions.defaults()},
                            "conv")
    except ConfigError as e:
        assert key in str(e)

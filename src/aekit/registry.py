"""Name -> constructor registries for models and datasets (no if/elif chains elsewhere).

Models are catalogued by *cards* (`ModelCard`): the name, the module that defines the class,
a summary, the options dataclass, the default loss and any fixed shape. The card modules
(`CARD_MODULES`) import no torch, so listing models is instant; a lookup by name imports only
the module its card names, and that module registers the class with `@register_model(name)`.
A model registered without a card (a plugin, a test) gets one made from its class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aekit.errors import ConfigError
from aekit.options import ModelOptions

MODELS: dict[str, type] = {}
CARDS: dict[str, ModelCard] = {}
DATASETS: dict[str, Callable[..., Any]] = {}

# The catalogues of models: the general families, and the codec next to its coder.
CARD_MODULES = ("aekit.models.cards", "aekit.codec.card")


@dataclass(frozen=True)
class ModelCard:
    """What is known about a model before its module is imported."""

    name: str
    module: str  # the module whose import registers the class
    summary: str
    options: type[ModelOptions] = ModelOptions
    loss: str = "mse"
    fixed_shape: tuple[int, int, int] | None = None  # (C, H, W) of the seed presets
    fixed_latent_dim: int | None = None


def register_card(card: ModelCard) -> None:
    if card.name in CARDS:
        raise ValueError(f"model card {card.name!r} registered twice")
    CARDS[card.name] = card


def model_cards() -> dict[str, ModelCard]:
    """Every model's card by name (imports the torch-free CARD_MODULES on first use)."""
    for module in CARD_MODULES:
        importlib.import_module(module)
    return CARDS


def register_model(name: str) -> Callable[[type], type]:
    """Register a model class under `name`; its card's facts become class attributes."""

    def wrap(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        card = model_cards().get(name)
        if card is None:
            summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
            card = ModelCard(name, cls.__module__, summary, cls.options_type, cls.default_loss,
                             cls.fixed_shape, cls.fixed_latent_dim)
        cls.registry_name = name
        cls.card = card
        cls.options_type = card.options
        cls.default_loss = card.loss
        cls.fixed_shape = card.fixed_shape
        cls.fixed_latent_dim = card.fixed_latent_dim
        MODELS[name] = cls
        return cls

    return wrap


def register_dataset(prefix: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a dataset loader; `prefix` is a full name ('digits') or a scheme ('folder:')."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if prefix in DATASETS:
            raise ValueError(f"dataset {prefix!r} registered twice")
        DATASETS[prefix] = fn
        return fn

    return wrap


def all_models() -> dict[str, type]:
    """Every registered model class by name (imports every card's module on first use)."""
    for card in list(model_cards().values()):
        importlib.import_module(card.module)
    return MODELS


def get_model_class(name: str) -> type:
    if name not in MODELS:
        card = model_cards().get(name)
        if card is None:
            known = ", ".join(sorted(CARDS))
            raise ConfigError(f"unknown model {name!r}; available: {known}")
        importlib.import_module(card.module)
    return MODELS[name]

"""Name -> constructor registries for models and datasets (no if/elif chains elsewhere).

Models register themselves with `@register_model(name)` when their module is imported. The
registry itself imports none of them: `MODEL_MODULES` names the modules that define models (the
way a plugin system lists entry points), and a lookup imports them on first use, so finding a
model never depends on what the caller happened to import before.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from aekit.errors import ConfigError

MODELS: dict[str, type] = {}
DATASETS: dict[str, Callable[..., Any]] = {}

# Every module that defines models: the general families, and the codec next to its coder.
MODEL_MODULES = ("aekit.models", "aekit.codec.model")


def register_model(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        cls.registry_name = name
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
    """Every registered model class by name (imports MODEL_MODULES on first use)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return MODELS


def get_model_class(name: str) -> type:
    models = all_models()
    try:
        return models[name]
    except KeyError:
        known = ", ".join(sorted(models))
        raise ConfigError(f"unknown model {name!r}; available: {known}") from None

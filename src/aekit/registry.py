"""Name -> constructor registries for models and datasets (no if/elif chains elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aekit.errors import ConfigError

MODELS: dict[str, type] = {}
DATASETS: dict[str, Callable[..., Any]] = {}


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


def get_model_class(name: str) -> type:
    import aekit.models  # noqa: F401  (populates MODELS)

    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ConfigError(f"unknown model {name!r}; available: {known}") from None

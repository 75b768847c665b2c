"""Typed model options: each model declares its options as a frozen dataclass of `option` fields.

A run's config.json keeps options as a plain JSON object (`ModelConfig.options`); a model parses
that object into its dataclass once, when it is built, so every option is checked in one place
(unknown name, wrong type, value outside its choices or range) and the model code reads typed
attributes. `aekit models` lists the same fields with their defaults and help, so the listing
can never disagree with what the model accepts. No torch here: the listing starts instantly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from aekit.errors import ConfigError

T = TypeVar("T", bound="ModelOptions")
_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


# `absent` of an option that every saved config has always had: nothing to fill in.
ALWAYS_SAVED = dataclasses.MISSING


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
           low: float | None = None, high: float | None = None, key: str | None = None,
           absent: Any = ALWAYS_SAVED) -> Any:
    """A dataclass field of a model's options. `key` is the JSON name where it cannot be the
    Python name (the codec's `lambda`); `choices` or `low`..`high` bound the value. `absent`:
    for an option added after runs were saved, the value a saved config without it means (the
    model those runs were); new runs write every option, so only older configs lack one."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "key": key,
            "absent": absent}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """Base of every model's options (a model without options uses it as is)."""

    @classmethod
    def specs(cls) -> list[tuple[str, dataclasses.Field, type]]:
        """(JSON key, field, Python type) per option, in declaration order."""
        hints = typing.get_type_hints(cls)
        return [(f.metadata.get("key") or f.name, f, _TYPES[hints[f.name].__name__])
                for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option's default by JSON key (what a new run writes into config.json)."""
        return {key: f.default for key, f, _ in cls.specs()}

    @classmethod
    def absent_values(cls) -> dict[str, Any]:
        """By JSON key, the value of each option a config saved before it existed means."""
        return {key: f.metadata["absent"] for key, f, _ in cls.specs()
                if f.metadata["absent"] is not ALWAYS_SAVED}

    @classmethod
    def parse(cls: type[T], given: Mapping[str, Any], model: str) -> T:
        """The options object from a config's JSON values; unknown keys and bad values raise a
        ConfigError naming the model, the option, the value and what is allowed."""
        specs = cls.specs()
        unknown = sorted(set(given) - {key for key, _, _ in specs})
        if unknown:
            allowed = ", ".join(key for key, _, _ in specs) or "none"
            raise ConfigError(f"{model}: unknown options {unknown}; allowed: {allowed}")
        values = {f.name: _checked(model, key, given[key], f, kind)
                  for key, f, kind in specs if key in given}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, f.name) for key, f, _ in self.specs()}

    @classmethod
    def describe(cls) -> list[str]:
        """One line per option: `key=default  help (allowed values)`."""
        lines = []
        for key, f, _ in cls.specs():
            m = f.metadata
            allowed = " | ".join(m["choices"]) if m["choices"] else _range_text(m)
            lines.append(f"{key}={json.dumps(f.default)}  {m['help']}"
                         + (f" ({allowed})" if allowed else ""))
        return lines


def _range_text(meta: Mapping[str, Any]) -> str:
    low, high = meta["low"], meta["high"]
    if low is None and high is None:
        return ""
    return f"{'' if low is None else low}..{'' if high is None else high}"


def _checked(model: str, key: str, value: Any, f: dataclasses.Field, kind: type) -> Any:
    """`value` as `kind`, or a ConfigError. JSON has no int/float distinction worth keeping for
    a float option (1 means 1.0); a bool is never a number, and a number is never a bool."""
    where = f"{model}: option {key}={value!r}"
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
    elif kind in (int, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number")
        if not ok or (kind is int and float(value) != int(value)):
            raise ConfigError(f"{where} must be {'an integer' if kind is int else 'a number'}")
        value = kind(value)
        low, high = f.metadata["low"], f.metadata["high"]
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{where} is out of range; allowed: {_range_text(f.metadata)}")
    elif not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise ConfigError(f"{where} is unknown; use one of {', '.join(choices)}")
    return value

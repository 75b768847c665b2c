"""The only exceptions a user of aekit sees, and the declarative checks of estimator parameters.

Every bad input (a corrupt file, a wrong shape, an unknown name, NaN data) is raised as one of these
with a message that names the input and says what to do; the CLI prints it on one line and exits 2.
Each class also derives from the built-in type a Python user expects, so generic code works:

    DataError, ConfigError, FormatError   ValueError   (bad values: shapes, ranges, bytes)
    AekitTypeError                        TypeError    (a string where a number belongs, ...)
    NotFittedError                        sklearn.exceptions.NotFittedError and ConfigError
                                          (so also ValueError and AttributeError)
    RunError, TrainingDiverged            AekitError only

`NotFittedError` is created on first use, so importing this module (the command line does) does
not import scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class AekitError(Exception):
    """Base class: a problem with the user's input or environment, never a bug in aekit."""


class DataError(AekitError, ValueError):
    """A dataset or image file is missing, corrupt, empty or of the wrong shape."""


class ConfigError(AekitError, ValueError):
    """A parameter value is out of range or names something that does not exist."""


class AekitTypeError(AekitError, TypeError):
    """A parameter or an input has the wrong type (e.g. latent_dim='2', a dict among pixels)."""


class RunError(AekitError):
    """A run folder or model file is missing, incomplete, tampered or of the wrong kind."""


class FormatError(AekitError, ValueError):
    """A compressed `.aez` file is truncated, corrupt or was made by another model."""


class TrainingDiverged(AekitError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _not_fitted_error() -> type:
    from sklearn.exceptions import NotFittedError as SklearnNotFitted

    class NotFittedError(ConfigError, SklearnNotFitted):
        """A method that needs a fitted estimator was called before `fit` (or `load`)."""

    NotFittedError.__module__, NotFittedError.__qualname__ = __name__, "NotFittedError"
    return NotFittedError


def __getattr__(name: str) -> Any:
    if name == "NotFittedError":
        cls = globals()["NotFittedError"] = _not_fitted_error()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_fitted(estimator: Any, how: str) -> None:
    """Raise NotFittedError (also scikit-learn's) unless `estimator` is fitted; `how` says how to
    get a fitted one, e.g. "call fit(X) or aekit.load(dir)"."""
    from sklearn.exceptions import NotFittedError as SklearnNotFitted
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except SklearnNotFitted:
        not_fitted = globals().get("NotFittedError") or __getattr__("NotFittedError")  # one class
        raise not_fitted(f"this {type(estimator).__name__} is not fitted yet; {how}") from None


def check_range(name: str, value, low=None, high=None) -> None:
    """Raise ConfigError naming the parameter, its value and the allowed range."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{name}={value!r} is out of range; allowed: [{lo}, {hi}]")


# --- declarative parameter checks ----------------------------------------------------------------
# An estimator lists its constructor parameters once, as {name: Param(...)}, and `check_params`
# validates them all at fit time: a wrong type is an AekitTypeError, a wrong value a ConfigError,
# and both messages name the estimator, the parameter, the value and what is allowed.

_KINDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "True or False",
    "ints": "a list of integers",
    "dict": "a dict",
    "shape": "an image shape (H, W) or (C, H, W)",
    "seed": "an integer, None or a numpy RandomState",
}


@dataclass(frozen=True)
class Param:
    """What one parameter may be: its kind (a key of _KINDS), a closed range [low, high] for
    numbers (`low_open` makes it (low, high]), the allowed strings, and whether None is allowed."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    none: bool = False

    def allowed(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = _KINDS[self.kind]
            if self.low is not None or self.high is not None:
                lo = "-inf" if self.low is None else _num(self.low)
                hi = "inf" if self.high is None else _num(self.high)
                text += f" in {'(' if self.low_open else '['}{lo}, {hi}]"
        return text + (" or None" if self.none else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def _is_int(v: Any) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _type_ok(kind: str, v: Any) -> bool:
    import numbers

    if kind == "int":
        return _is_int(v)
    if kind == "float":
        return isinstance(v, numbers.Real) and not isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool) or type(v).__name__ in ("bool_", "bool")  # numpy's too
    if kind in ("ints", "shape"):
        return isinstance(v, list | tuple) and all(_is_int(w) for w in v)
    if kind == "dict":
        return isinstance(v, dict)
    if kind == "seed":
        return _is_int(v) or type(v).__name__ == "RandomState"
    raise KeyError(kind)


def check_params(owner: str, values: dict[str, Any], table: dict[str, Param]) -> None:
    """Validate `values` (an estimator's get_params()) against `table`; raise on the first bad one.

    AekitTypeError for a wrong type, ConfigError for a value out of range or not allowed.
    """
    for name, spec in table.items():
        v = values[name]
        if v is None and spec.none:
            continue
        what = f"{owner}: {name}={v!r}"
        if not _type_ok(spec.kind, v):
            raise AekitTypeError(f"{what} has type {type(v).__name__}; expected {spec.allowed()}")
        if spec.choices and v not in spec.choices:
            raise ConfigError(f"{what} is not allowed; expected {spec.allowed()}")
        if spec.kind in ("int", "float"):
            bad = not math.isfinite(float(v))
            bad |= spec.low is not None and (v <= spec.low if spec.low_open else v < spec.low)
            bad |= spec.high is not None and v > spec.high
            if bad:
                raise ConfigError(f"{what} is out of range; expected {spec.allowed()}")
        if spec.kind == "shape" and (len(v) not in (2, 3) or min(v, default=0) < 1):
            raise ConfigError(f"{what} is not an image shape; expected {spec.allowed()} with "
                              "positive sides, e.g. (28, 28) or (3, 32, 32)")
        if spec.kind == "ints" and any(w < 1 for w in v):
            raise ConfigError(f"{what}: every entry must be a positive integer")
        if spec.kind == "seed" and _is_int(v) and not 0 <= v < 2**32:
            raise ConfigError(f"{what} is out of range; expected an integer in [0, 2**32 - 1]")


def seed_of(random_state: Any) -> int:
    """The integer seed a fit uses: an int as is; None draws one from numpy's global generator
    (a different model each fit, as in scikit-learn); a RandomState draws one from itself."""
    if _is_int(random_state):
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))

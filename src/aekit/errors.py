"""The only exceptions a user of aekit sees.

Every bad input (a corrupt file, a wrong shape, an unknown name, NaN data) is raised as one of these
with a message that names the input and says what to do; the CLI prints it on one line and exits 2.
"""

from __future__ import annotations


class AekitError(Exception):
    """Base class: a problem with the user's input or environment, never a bug in aekit."""


class DataError(AekitError):
    """A dataset or image file is missing, corrupt, empty or of the wrong shape."""


class ConfigError(AekitError):
    """A parameter value is out of range or names something that does not exist."""


class RunError(AekitError):
    """A run folder or model file is missing, incomplete, tampered or of the wrong kind."""


class FormatError(AekitError):
    """A compressed `.aez` file is truncated, corrupt or was made by another model."""


class TrainingDiverged(AekitError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def check_range(name: str, value, low=None, high=None) -> None:
    """Raise ConfigError naming the parameter, its value and the allowed range."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{name}={value!r} is out of range; allowed: [{lo}, {hi}]")

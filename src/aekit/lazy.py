"""Lazy package faces: a capability's `__init__.py` lists its public names and the module each
comes from, and imports that module only when the name is first used.

This keeps `import aekit.restore` (and so the command line's parser, which imports every
capability's `cli.py`) free of torch until a command actually runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` serving `name -> table[name].name`."""

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__

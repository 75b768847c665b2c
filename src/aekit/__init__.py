"""aekit: autoencoders as practical software for images.

The package's face: `aekit.Autoencoder` (a scikit-learn estimator), `aekit.load` and the error
type. They are imported on first use, so `import aekit` (and the command line's `--version`,
`--help`) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Autoencoder", "load", "AekitError", "__version__"]

_LAZY = {"Autoencoder": "aekit.api", "load": "aekit.api", "AekitError": "aekit.errors"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")

"""aekit: autoencoders as practical software for images.

The package's face: `aekit.Autoencoder` (a scikit-learn estimator), `aekit.load` and the error
type. Each capability has its own face (`aekit.core`, `aekit.restore`, `aekit.anomaly`,
`aekit.codec`, `aekit.represent`, `aekit.report`); see docs/LAYOUT.md. Names are imported on
first use, so `import aekit` (and the command line's `--version`, `--help`) does not pay for
importing torch.
"""

from __future__ import annotations

from aekit.lazy import exports

__version__ = "0.1.0"

__all__ = ["Autoencoder", "load", "AekitError", "__version__"]

__getattr__ = exports(__name__, {"Autoencoder": "aekit.api", "load": "aekit.api",
                                 "AekitError": "aekit.errors"})

"""aekit: autoencoders as practical software for images.

The package's face: `aekit.Autoencoder` (a scikit-learn estimator), `aekit.load` and the error
type. Each capability has its own face (`aekit.core`, `aekit.restore`, `aekit.anomaly`,
`aekit.codec`, `aekit.represent`, `aekit.report`, `aekit.swap`); see docs/LAYOUT.md. Names are
imported on first use, so `import aekit` (and the command line's `--version`, `--help`) does
not pay for importing torch.

Layout, in dependency order (a module imports only from its own package and the rows above):

    ground        errors, config, options, registry, io, device, lazy, args, console
    data, models  datasets, image files, corruptions; AutoencoderModule and the model families
    train, eval   the one training loop, losses, checkpoints; metrics, baselines, plots
    core          train a run folder, evaluate it, reconstruct images
    capabilities  restore, swap, anomaly, codec, represent, report; like core, each has __init__.py
                  (its Python API), algorithm module(s), io.py (its files), cli.py (its commands)
    top           api.py (aekit.Autoencoder), cli.py (the one command registry)

A new model has a card in models/cards.py and registers in the module the card names; a new
command goes into a capability's cli.py (`add_parsers`), whose module aekit/cli.py lists once.
"""

from __future__ import annotations

from aekit.lazy import exports

__version__ = "0.1.0"

__all__ = ["Autoencoder", "load", "AekitError", "__version__"]

__getattr__ = exports(__name__, {"Autoencoder": "aekit.api", "load": "aekit.api",
                                 "AekitError": "aekit.errors"})

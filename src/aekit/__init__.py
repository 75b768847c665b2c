"""aekit: autoencoders as practical software for images."""

__version__ = "0.1.0"

from aekit.api import Autoencoder, load  # noqa: E402
from aekit.errors import AekitError  # noqa: E402

__all__ = ["Autoencoder", "load", "AekitError", "__version__"]

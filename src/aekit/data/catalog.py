"""The catalogue of datasets: what `aekit datasets` lists and where each loader lives.

A card names a dataset (or a scheme such as `folder:`), the module whose import registers its
loader, a description and an availability probe. No torch and no loader is imported here, so
the listing is instant; `aekit.data.load_dataset` imports the one loader a name needs. Where
Fashion-MNIST and MNIST are found is decided here too, for the probe and the loader alike.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aekit.registry import DATASETS

SYSTEM_DIR = "/usr/share/datasets"  # where Debian's dataset-fashion-mnist installs
# Standard base names; Kaggle-style copies use '.' instead of the last '-'.
STANDARD_NAMES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def find_idx_file(folder: Path, base: str) -> Path | None:
    """`base`, its Kaggle-style spelling, or either gzipped, inside `folder`."""
    alt = base[: base.rfind("-")] + "." + base[base.rfind("-") + 1 :]  # t10k-images.idx3-ubyte
    for stem in (base, alt):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def has_idx_files(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return folder.is_dir() and all(find_idx_file(folder, b) for b in STANDARD_NAMES.values())


def data_root() -> Path | None:
    """$AEKIT_DATA, the folder of named datasets, or None."""
    root = os.environ.get("AEKIT_DATA")
    return Path(root).expanduser() if root else None


def fashion_mnist_dir() -> Path | None:
    """The first folder holding Fashion-MNIST: $AEKIT_DATA/fashion-mnist, then the system one."""
    root = data_root()
    for d in ([root / "fashion-mnist"] if root else []) + [Path(SYSTEM_DIR) / "fashion-mnist"]:
        if has_idx_files(d):
            return d
    return None


def mnist_dir() -> Path | None:
    root = data_root()
    return root / "mnist" if root is not None and has_idx_files(root / "mnist") else None


@dataclass(frozen=True)
class DatasetCard:
    prefix: str  # a full name ('digits') or a scheme ending in ':' ('folder:')
    module: str  # the module whose import registers the loader
    description: str
    available: Callable[[], bool] = lambda: True

    @property
    def display(self) -> str:
        if self.prefix.endswith(":"):
            return self.prefix + ("FILE" if self.prefix == "npz:" else "DIR")
        return self.prefix


CARDS = (  # in listing order
    DatasetCard("fashion-mnist", "aekit.data.idx",
                "Zalando Fashion-MNIST, 60k/10k 28x28 grey, 10 classes (apt-get install "
                "dataset-fashion-mnist)", lambda: fashion_mnist_dir() is not None),
    DatasetCard("mnist", "aekit.data.idx",
                "MNIST handwritten digits, 60k/10k 28x28 grey, from $AEKIT_DATA/mnist",
                lambda: mnist_dir() is not None),
    DatasetCard("digits", "aekit.data.digits",
                "scikit-learn's bundled 8x8 digits, 1500/297 grey, 10 classes (always available)",
                lambda: importlib.util.find_spec("sklearn") is not None),
    DatasetCard("idx:", "aekit.data.idx",
                "any folder holding the four standard IDX files (.gz or not)"),
    DatasetCard("folder:", "aekit.data.folder",
                "a folder of PNG/JPEG/BMP/WebP/TIFF images; class sub-folders give labels; "
                "train/ + test/ or a 90/10 split"),
    DatasetCard("npz:", "aekit.data.arrays",
                "NumPy .npz with x_train [, y_train, x_test, y_test] (uint8 0..255 or float "
                "0..1), or .npy"),
)
BY_PREFIX = {card.prefix: card for card in CARDS}


def list_datasets() -> list[tuple[str, str, bool]]:
    """[(name, description, available)] for every catalogued dataset, then any loader that was
    registered without a card (a plugin)."""
    rows = []
    for card in CARDS:
        try:
            ok = bool(card.available())
        except Exception:  # an availability probe must never break the listing
            ok = False
        rows.append((card.display, card.description, ok))
    rows += [(prefix, "", True) for prefix in sorted(DATASETS) if prefix not in BY_PREFIX]
    return rows


def loader(prefix: str) -> Callable | None:
    """The registered loader of `prefix`, importing its module first; None if unknown."""
    card = BY_PREFIX.get(prefix)
    if card is not None and prefix not in DATASETS:
        importlib.import_module(card.module)
    return DATASETS.get(prefix)


def known_prefixes() -> list[str]:
    return [card.prefix for card in CARDS] + [p for p in DATASETS if p not in BY_PREFIX]

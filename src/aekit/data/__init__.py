"""Datasets as uint8 tensors in memory, loaded by name.

Names: 'fashion-mnist', 'mnist', 'digits' and the schemes 'idx:DIR', 'folder:DIR', 'npz:FILE'
(catalog.py lists them without importing torch; load.py imports the one loader a name needs).
Images stay uint8 (N, C, H, W) so the training loop can batch by indexing; `to_unit` converts a
batch to float32 in [0, 1] only when it is used.
"""

from aekit.lazy import exports

__all__ = [
    "Dataset",
    "load_dataset",
    "load_pair",
    "list_datasets",
    "parse_image_size",
    "resize_images",
    "split_train_val",
    "to_unit",
]

__getattr__ = exports(__name__, {
    "Dataset": "aekit.data.dataset",
    "resize_images": "aekit.data.dataset",
    "split_train_val": "aekit.data.dataset",
    "list_datasets": "aekit.data.catalog",
    "load_dataset": "aekit.data.load",
    "load_pair": "aekit.data.pair",
    "parse_image_size": "aekit.data.units",
    "to_unit": "aekit.data.units",
})

"""Core: train an autoencoder on a dataset into a run folder, evaluate it, reconstruct images.

    algorithm  training.py   train_run (one run, resumable, data-parallel under torchrun)
    files      io.py         the run folder: config.json, model.safetensors, metrics.json, ...
    commands   cli.py        train, eval, reconstruct, models, datasets, summary
"""

from aekit.lazy import exports

__all__ = ["Run", "load_model", "read_config", "read_metrics", "train_run"]

__getattr__ = exports(__name__, {
    "Run": "aekit.core.io", "load_model": "aekit.core.io", "read_config": "aekit.core.io",
    "read_metrics": "aekit.core.io", "train_run": "aekit.core.training"})

"""Representations: embed images as codes, fine-tune an encoder from few labels (optionally with
propagated pseudo-labels), and sample / interpolate / traverse with a VAE.

    algorithm  embedding.py  embed (codes of images or a dataset split)
               fewlabel.py   Classifier, FinetuneConfig, finetune
               semisup.py    label propagation over an embedding graph
               generate.py   sample_images, interpolate, traverse
    files      io.py         the classifier folder
    commands   cli.py        embed, finetune, classify, sample, interpolate, traverse
"""

from aekit.lazy import exports

__all__ = ["Classifier", "FinetuneConfig", "embed", "finetune", "interpolate",
           "load_classifier", "sample_images", "save_classifier", "traverse"]

__getattr__ = exports(__name__, {
    "Classifier": "aekit.represent.fewlabel", "FinetuneConfig": "aekit.represent.fewlabel",
    "finetune": "aekit.represent.fewlabel", "embed": "aekit.represent.embedding",
    "interpolate": "aekit.represent.generate", "sample_images": "aekit.represent.generate",
    "traverse": "aekit.represent.generate", "load_classifier": "aekit.represent.io",
    "save_classifier": "aekit.represent.io"})

"""Representations: embed images as codes, fine-tune an encoder from few labels (optionally with
propagated pseudo-labels), and sample / interpolate / traverse with a VAE.

    face       api.py        embed, sample_images, interpolate, traverse: numpy or torch in,
                             the same out (they take a fitted aekit.Autoencoder or a run)
               classifier.py FewLabelClassifier, the fine-tuned classifier as a scikit-learn
                             estimator
    algorithm  embedding.py  codes of a torch batch or a dataset split
               fewlabel.py   Classifier (the network), FinetuneConfig, finetune
               semisup.py    label propagation over an embedding graph
               generate.py   sampling, interpolation and traversal on torch tensors
    files      io.py         the classifier folder
    commands   cli.py        embed, finetune, classify, sample, interpolate, traverse
"""

from aekit.lazy import exports

__all__ = ["Classifier", "FewLabelClassifier", "FinetuneConfig", "embed", "finetune",
           "interpolate", "load_classifier", "sample_images", "save_classifier", "traverse"]

__getattr__ = exports(__name__, {
    "Classifier": "aekit.represent.fewlabel", "FinetuneConfig": "aekit.represent.fewlabel",
    "finetune": "aekit.represent.fewlabel", "FewLabelClassifier": "aekit.represent.classifier",
    "embed": "aekit.represent.api", "interpolate": "aekit.represent.api",
    "sample_images": "aekit.represent.api", "traverse": "aekit.represent.api",
    "load_classifier": "aekit.represent.io", "save_classifier": "aekit.represent.io"})

"""FewLabelClassifier: few-label fine-tuning (fewlabel.py) as a scikit-learn classifier.

    clf = FewLabelClassifier(autoencoder="runs/ae", steps=100).fit(X_few, y_few)
    clf.predict(X); clf.predict_proba(X); clf.score(X, y); clf.classes_; clf.save("runs/clf")

`fit` takes the autoencoder's encoder, adds a classification head and fine-tunes both on the
labelled images with the recipe of `finetune` (a logistic-regression probe first, then AdamW with
augmentation and a smaller learning rate for the encoder). The folders `save` writes are the
ones `aekit finetune` writes (`aekit classify` reads both), never pickles.

Like its sibling api.py, this module builds on `aekit.Autoencoder` and so sits with
aekit/api.py at the top layer.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from aekit.data.units import as_images, check_feature_names, like_input
from aekit.errors import (
    AekitTypeError,
    DataError,
    Param,
    check_fitted,
    check_params,
    seed_of,
)
from aekit.estimator import ImageEstimatorMixin
from aekit.represent.config import AUGMENTS, HEADS


class FewLabelClassifier(ImageEstimatorMixin, ClassifierMixin, BaseEstimator):
    """An autoencoder's encoder plus a classification head, fine-tuned on a few labels.

    Parameters: `autoencoder`: where the encoder comes from: a fitted `aekit.Autoencoder` (its
    weights are copied, never changed), a run folder, an unfitted `aekit.Autoencoder` (fitted
    first, on `X_unlabeled` when given, else on X) or None (`aekit.Autoencoder()` with
    `random_state`, fitted the same way). `clone` and `GridSearchCV` clone an Autoencoder given
    here, so they refit it: pass a run folder (or `sklearn.frozen.FrozenEstimator(ae)`) to keep a
    pretrained one. `head` ("linear" or "mlp", `hidden` units), `steps`, `batch_size`, `lr` (the
    head's), `encoder_lr_scale`, `augment` ("none", "shift", "shift+flip"), `probe` (start the
    head from a logistic regression), `freeze_encoder`, `random_state`, `device`.

    Learned: `classes_`, `module_` (the `represent.Classifier` network), `history_`,
    `n_features_in_`, `pixel_max_` (the value of white of float images, from the autoencoder).
    """

    fitted_attribute = "module_"
    _param_table = {
        "head": Param("str", choices=HEADS),
        "hidden": Param("int", 1, 1 << 16),
        "steps": Param("int", 0, 1_000_000),
        "batch_size": Param("int", 1, 1 << 16),
        "lr": Param("float", 0.0, 10.0, low_open=True),
        "encoder_lr_scale": Param("float", 0.0, 100.0),
        "augment": Param("str", choices=AUGMENTS),
        "probe": Param("bool"),
        "freeze_encoder": Param("bool"),
        "random_state": Param("seed", none=True),
        "device": Param("str"),
    }

    def __init__(self, autoencoder: Any = None, head: str = "linear", hidden: int = 256,
                 steps: int = 300, batch_size: int = 64, lr: float = 1e-3,
                 encoder_lr_scale: float = 0.1, augment: str = "shift", probe: bool = True,
                 freeze_encoder: bool = False, random_state: int | None = 0,
                 device: str = "auto") -> None:
        self.autoencoder = autoencoder
        self.head = head
        self.hidden = hidden
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.encoder_lr_scale = encoder_lr_scale
        self.augment = augment
        self.probe = probe
        self.freeze_encoder = freeze_encoder
        self.random_state = random_state
        self.device = device

    # --- fitting ------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, X_unlabeled: Any = None) -> FewLabelClassifier:
        """Fine-tune on labelled images X with labels y; `X_unlabeled` (images without labels)
        also sets the feature standardisation and pretrains an unfitted autoencoder."""
        from aekit.device import resolve_device
        from aekit.represent.config import FinetuneConfig
        from aekit.represent.fewlabel import Classifier, finetune

        check_params(type(self).__name__, self.get_params(deep=False), self._param_table)
        labels = self._labels(y)
        seed = seed_of(self.random_state)
        ae = self._autoencoder(X if X_unlabeled is None else X_unlabeled, seed)
        self.pixel_max_, self.int_max_ = float(ae.pixel_max_), float(ae._int_white())
        shape = tuple(ae.model_config_.shape)
        x = self._images(X, shape)
        check_feature_names(self, X, reset=True)
        if len(x) != len(labels):
            raise DataError(f"X has {len(x)} images but y has {len(labels)} labels; give one "
                            "label per image")
        if len(x) < 2:
            raise DataError("X: 1 sample is too few to fine-tune on; give at least 2 labelled "
                            "images")
        unlabeled = None if X_unlabeled is None else self._images(X_unlabeled, shape,
                                                                  "X_unlabeled")
        self.classes_, y_idx = np.unique(labels, return_inverse=True)
        cfg = FinetuneConfig(head=self.head, hidden=self.hidden, steps=self.steps,
                             batch_size=self.batch_size, lr=self.lr,
                             encoder_lr_scale=self.encoder_lr_scale, augment=self.augment,
                             probe=self.probe, freeze_encoder=self.freeze_encoder, seed=seed)
        torch.manual_seed(seed)
        device = resolve_device(self.device)
        net = Classifier(copy.deepcopy(ae.module_), len(self.classes_), self.head,
                         self.hidden).to(device)
        self.history_ = finetune(net, x, torch.from_numpy(y_idx.astype(np.int64)), cfg,
                                 unlabeled=unlabeled)
        self.module_ = net.to("cpu").eval()
        self.finetune_config_ = cfg
        self.n_features_in_ = int(np.prod(shape))
        return self

    def _labels(self, y: Any) -> np.ndarray:
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d

        if y is None:
            raise DataError(f"y: {type(self).__name__} requires y to be passed, but the target "
                            "y is None")
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        try:
            y = column_or_1d(y, warn=True)
            # checked before the target type: telling classes from a regression target casts
            # y to int, which NaN and infinity cannot survive without a RuntimeWarning
            if y.dtype.kind in "fc" and not np.isfinite(y).all():
                raise ValueError("contains NaN or infinity; give one finite class label per image")
            check_classification_targets(y)
        except ValueError as e:
            raise DataError(f"y: {' '.join(str(e).split())}") from None
        return y

    def _autoencoder(self, X: Any, seed: int):
        """The fitted aekit.Autoencoder whose encoder starts the fine-tuning."""
        from aekit.api import Autoencoder, from_module, load

        ae = self.autoencoder
        if ae is None:
            return Autoencoder(random_state=seed, device=self.device).fit(X)
        if isinstance(ae, str | Path):
            return load(ae)
        if isinstance(ae, torch.nn.Module):
            return from_module(ae)
        if isinstance(getattr(ae, "estimator", ae), Autoencoder):  # or a FrozenEstimator of one
            if hasattr(ae, "module_"):  # fitted
                return ae
            return clone(ae).fit(X)
        raise AekitTypeError(f"{type(self).__name__}: autoencoder={type(ae).__name__} has the "
                             "wrong type; expected an aekit.Autoencoder, a run folder or None")

    def _images(self, X: Any, shape: tuple, name: str = "X") -> torch.Tensor:
        return as_images(X, name, shape, owner=type(self).__name__, int_white=self.int_max_,
                         float_white=self.pixel_max_)[0]

    # --- predicting ---------------------------------------------------------------------------

    def _proba(self, X: Any) -> torch.Tensor:
        from aekit.represent.fewlabel import predict_proba

        check_fitted(self, f"call fit(X, y) or {type(self).__name__}.load(dir)")
        x = self._images(X, tuple(self.module_.autoencoder.cfg.shape))
        check_feature_names(self, X, reset=False)
        return predict_proba(self.module_, x)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (N, n_classes), columns in the order of `classes_`: float64
        numpy for numpy input, a float32 tensor for torch input."""
        p = self._proba(X)
        return p if isinstance(X, torch.Tensor) else p.double().numpy()

    def predict_log_proba(self, X: Any) -> Any:
        p = self.predict_proba(X)
        return torch.log(p) if isinstance(p, torch.Tensor) else np.log(p)

    def predict(self, X: Any) -> Any:
        """The most probable class of each image, from `classes_`; a tensor for torch input
        when the classes are numbers."""
        best = self._proba(X).argmax(1).numpy()
        labels = self.classes_[best]
        if isinstance(X, torch.Tensor) and labels.dtype.kind in "biuf":
            return like_input(torch.from_numpy(labels), X)
        return labels

    # --- files --------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write a classifier folder (classifier.json + classifier.safetensors; no pickle), the
        format `aekit finetune` writes and `aekit classify` reads."""
        from aekit.represent.io import save_classifier

        check_fitted(self, "call fit(X, y) first")
        classes = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "autoencoder"}
        params["random_state"] = self.finetune_config_.seed
        save_classifier(path, self.module_, {
            "classes": classes, "image_shape": list(self.module_.autoencoder.cfg.shape),
            "finetune": self.finetune_config_.to_dict(),
            "api": {**params, "pixel_max_": self.pixel_max_, "int_max_": self.int_max_}})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FewLabelClassifier:
        """A fitted FewLabelClassifier from a folder written by `save` or `aekit finetune`."""
        from aekit.represent.config import FinetuneConfig
        from aekit.represent.io import load_classifier

        net, info = load_classifier(path)
        saved = info.get("api") if isinstance(info.get("api"), dict) else {}
        names = cls().get_params(deep=False)
        est = cls(**{k: v for k, v in saved.items() if k in names and k != "autoencoder"})
        n = net.head[-1].out_features
        classes = info.get("classes")
        est.classes_ = np.asarray(classes) if isinstance(classes, list) and len(classes) == n \
            else np.arange(n)
        ft = info.get("finetune") if isinstance(info.get("finetune"), dict) else {}
        fields = FinetuneConfig.__dataclass_fields__
        est.finetune_config_ = FinetuneConfig(**{k: v for k, v in ft.items() if k in fields})
        est.module_, est.history_ = net, []
        est.n_features_in_ = int(np.prod(net.autoencoder.cfg.shape))
        est.pixel_max_ = float(saved.get("pixel_max_", 1.0))
        est.int_max_ = float(saved.get("int_max_", 255.0))
        return est

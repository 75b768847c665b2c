"""The scikit-learn estimator facade.

    ae = aekit.Autoencoder(model="conv", latent_dim=32, epochs=10).fit(X)
    Z = ae.transform(X); X_hat = ae.inverse_transform(Z); ae.save("my-ae"); aekit.load("my-ae")

`Autoencoder` is a scikit-learn transformer (`BaseEstimator` + `TransformerMixin`): `__init__`
only stores settings, `get_params`/`set_params`/`clone`/`repr` come from scikit-learn, `fit`
validates every parameter (`_param_table`) and the data, trains and sets the learned attributes
(ending in `_`). It works in `Pipeline`, `GridSearchCV` and `cross_val_score`.

Inputs (numpy, torch or array-likes such as nested lists) are images (N, H, W), (N, C, H, W) or
channels-last (N, H, W, C), or rows (N, C*H*W) that `image_shape` unflattens (without it a row
of D values is a 1 x D image, which suits the `dense` model and tabular data). Pixel units:
integer images are 0..255 (white = 255); float images are 0..1, or, when the training images are
floats above 1 (e.g. `load_digits().images`, 0..16), 0..their maximum (`pixel_max_`);
`pixel_max` sets white for every input instead. Values outside the range are an error, never
clipped. Outputs follow the input: numpy in, numpy out (float64 in, float64 out); torch in, torch
out; `reconstruct` and `inverse_transform` return images in the layout the input had (for
`inverse_transform`: the layout of the training images) and in float units with white =
`pixel_max_` (1.0 unless the training images were floats above 1 or `pixel_max` was set).

Pickling (and so joblib, `cross_val_score(n_jobs=2)`, ...) serialises the estimator object, torch
networks included, as any scikit-learn estimator; only load pickles you trust. The folders that
`save()` writes are never pickles: JSON and safetensors, safe to load from anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from aekit.config import TRAIN_AUGMENTS, ModelConfig, TrainConfig
from aekit.data.units import (
    as_images,
    check_feature_names,
    float_white_of,
    like_input,
    read_array,
    to_layout,
)
from aekit.errors import DataError, Param, check_fitted, check_params, seed_of
from aekit.estimator import ImageEstimatorMixin


class Autoencoder(ImageEstimatorMixin, TransformerMixin, BaseEstimator):
    """An autoencoder you can fit like a scikit-learn transformer.

    Parameters: `model` (a registered model name, `aekit models`), `latent_dim`, `epochs`,
    `batch_size`, `lr`, `loss` (empty: the model's), `widths`, `options` (model options),
    `corrupt` (train to undo a corruption, e.g. "gaussian:0.5"), `augment` (training-time
    augmentation, as `aekit train --augment`; "auto" decides from X), `val_fraction`, `image_shape`
    ((H, W) or (C, H, W) for 2-D input rows), `pixel_max` (the value of white; None: 255 for
    integer images, 1.0 or the training maximum for float images), `random_state` (int; None
    draws a new seed each fit), `device`, `verbose`.

    Learned attributes: `module_` (the torch network), `model_config_`, `train_config_`,
    `history_`, `n_features_in_` (C*H*W), `pixel_max_`, `input_layout_`.

    Pickling serialises the whole estimator object (as for every scikit-learn estimator); the
    folders written by `save()` are JSON + safetensors and never pickles.
    """

    fitted_attribute = "module_"
    _param_table = {
        "model": Param("str"),
        "latent_dim": Param("int", 1, 1 << 20),
        "epochs": Param("int", 1, 100_000),
        "batch_size": Param("int", 1, 1 << 16),
        "lr": Param("float", 0.0, 10.0, low_open=True),
        "loss": Param("str"),
        "widths": Param("ints"),
        "options": Param("dict", none=True),
        "corrupt": Param("str"),
        "augment": Param("str", choices=TRAIN_AUGMENTS),
        "val_fraction": Param("float", 0.0, 0.5),
        "image_shape": Param("shape", none=True),
        "pixel_max": Param("float", 0.0, None, low_open=True, none=True),
        "random_state": Param("seed", none=True),
        "device": Param("str"),
        "verbose": Param("bool"),
    }

    def __init__(self, model: str = "conv", latent_dim: int = 32, epochs: int = 10,
                 batch_size: int = 128, lr: float = 2e-3, loss: str = "", widths: tuple = (),
                 options: dict | None = None, corrupt: str = "", augment: str = "auto",
                 val_fraction: float = 0.0,
                 image_shape: tuple | None = None, pixel_max: float | None = None,
                 random_state: int | None = 0, device: str = "auto",
                 verbose: bool = False) -> None:
        self.model = model
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.loss = loss
        self.widths = widths
        self.options = options
        self.corrupt = corrupt
        self.augment = augment
        self.val_fraction = val_fraction
        self.image_shape = image_shape
        self.pixel_max = pixel_max
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X: Any, y: Any = None) -> Autoencoder:
        """Train on images X (y is ignored); returns self."""
        from aekit.core.training import build_corruption
        from aekit.models import build_model, resolve_options
        from aekit.train.loop import fit
        from aekit.train.symmetry import resolve as resolve_augment

        check_params(type(self).__name__, self.get_params(deep=False), self._param_table)
        raw = read_array(X)
        pixel_max = float_white_of(raw, self.pixel_max)
        x, layout = as_images(raw, shape=self.image_shape, owner=type(self).__name__,
                              int_white=self._int_white(), float_white=pixel_max)
        check_feature_names(self, X, reset=True)
        seed = seed_of(self.random_state)
        n_val = int(round(len(x) * self.val_fraction))
        if n_val >= len(x):
            raise DataError(f"X: {len(x)} image(s) leave none to train on with val_fraction="
                            f"{self.val_fraction}")
        c, h, w = x.shape[1:]
        self.model_config_ = resolve_options(ModelConfig(
            name=self.model, in_channels=c, height=h, width=w, latent_dim=self.latent_dim,
            widths=tuple(self.widths), options=dict(self.options or {})), x)
        self.train_config_ = TrainConfig(
            dataset="array", epochs=self.epochs, batch_size=min(self.batch_size, len(x)),
            lr=self.lr, loss=self.loss, seed=seed, val_fraction=self.val_fraction,
            corrupt=self.corrupt, augment=self.augment, device=self.device)
        torch.manual_seed(seed)
        module = build_model(self.model_config_)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        train_x, val_x = x[order[n_val:]], (x[order[:n_val]] if n_val else None)
        # "auto" decided on the training images (train_config_ records the choice)
        self.train_config_ = resolve_augment(self.train_config_, train_x, module)[0]
        module.init_from_data(train_x, seed=seed)  # e.g. the codec's closed-form start
        result = fit(module, train_x, self.train_config_, val_x=val_x,
                     corrupt=build_corruption(self.corrupt), progress=self.verbose)
        self.module_ = module.to("cpu").eval()
        self.history_ = result.history
        self.n_features_in_ = int(c * h * w)
        self.pixel_max_ = pixel_max
        self.input_layout_ = layout
        return self

    # --- helpers ----------------------------------------------------------------------------

    def _int_white(self) -> float:
        return 255.0 if self.pixel_max is None else float(self.pixel_max)

    def _check_fitted(self) -> None:
        check_fitted(self, "call fit(X) or aekit.load(dir)")

    def _input(self, X: Any) -> tuple[torch.Tensor, str]:
        """Validate X against the fitted model: ((N, C, H, W) uint8 or [0, 1] float, layout)."""
        self._check_fitted()
        x, layout = as_images(X, shape=self.model_config_.shape, owner=type(self).__name__,
                              int_white=self._int_white(), float_white=self.pixel_max_)
        check_feature_names(self, X, reset=False)
        return x, layout

    def _batches(self, t: torch.Tensor, part: str, images: bool = True,
                 batch_size: int = 1024) -> torch.Tensor:
        """`part` of the model ("encode", "decode", "reconstruct") batch by batch, on the fastest
        exact implementation (aekit.infer); images go through to_unit first."""
        from aekit import infer
        from aekit.data.units import to_unit

        device = next(self.module_.parameters()).device

        def prepare(b: torch.Tensor) -> torch.Tensor:
            return to_unit(b, device) if images else b.to(device).float()

        return torch.cat(infer.batched(self.module_, part, t, batch_size, prepare)).cpu()

    def _images_out(self, out: torch.Tensor, layout: str, reference: Any) -> Any:
        """[0, 1] images (N, C, H, W) -> the caller's layout, units (white = pixel_max_), type."""
        if self.pixel_max_ != 1.0:
            out = out * self.pixel_max_
        return like_input(to_layout(out, layout), reference)

    # --- the transformer --------------------------------------------------------------------

    def transform(self, X: Any) -> Any:
        """Encode images to latent codes (N, latent...): (N, latent_dim) for most models."""
        x, _ = self._input(X)
        return like_input(self._batches(x, "encode"), X)

    def inverse_transform(self, Z: Any) -> Any:
        """Decode latent codes to images, in the training images' layout; white = pixel_max_."""
        self._check_fitted()
        z = read_array(Z, "Z")
        if not z.is_floating_point():
            z = z.double()
        if z.ndim < 2 or len(z) == 0:
            raise DataError(f"Z: expected a non-empty batch of codes (N, ...), got shape "
                            f"{tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise DataError("Z: contains NaN or infinite values")
        latent = tuple(getattr(self.module_, "latent_shape", ()) or ())
        if latent and tuple(z.shape[1:]) != latent:
            if math.prod(z.shape[1:]) != math.prod(latent):
                raise DataError(f"Z: codes are {tuple(z.shape[1:])} but the model's are "
                                f"{latent}")
            z = z.reshape(len(z), *latent)
        try:
            out = self._batches(z, "decode", images=False)
        except RuntimeError as e:  # a model without latent_shape given codes of another shape
            raise DataError(f"Z: the model cannot decode codes of shape {tuple(z.shape[1:])} "
                            f"({str(e)[:120]})") from None
        return self._images_out(out, self.input_layout_, Z)

    def reconstruct(self, X: Any) -> Any:
        """Encode and decode: images in X's layout, white = pixel_max_."""
        x, layout = self._input(X)
        out = self._batches(x, "reconstruct")
        return self._images_out(out, layout, X)

    def score(self, X: Any, y: Any = None) -> float:
        """PSNR (dB) of the reconstructions: higher is better, as scikit-learn expects."""
        from aekit.data.units import to_unit
        from aekit.eval.metrics import mse, psnr

        x, _ = self._input(X)
        rec = self._batches(x, "reconstruct")
        return float(psnr(mse(rec, to_unit(x, torch.device("cpu")))))

    # --- files ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write a run-folder-compatible directory (config.json + model.safetensors); no
        pickle. config.json's "api" holds the parameters and the learned input conventions."""
        from aekit.core.io import save_weights, write_config

        self._check_fitted()
        path = Path(path)
        params = self.get_params(deep=False)
        params["random_state"] = self.train_config_.seed  # the seed used, JSON-friendly
        params.update(pixel_max_=self.pixel_max_, input_layout_=self.input_layout_)
        write_config(path, self.model_config_, self.train_config_,
                     {"api": {k: (list(v) if isinstance(v, tuple) else v)
                              for k, v in params.items()}})
        save_weights(path, self.module_)
        return path


# Parameter names of earlier aekit versions, as saved in their config.json "api" dicts.
LEGACY_NAMES = {"seed": "random_state"}


def load(path: str | Path) -> Autoencoder:
    """Load a saved Autoencoder or any run folder made by `aekit train`."""
    from aekit.core.io import load_model

    module, run = load_model(path)
    saved = run.extra.get("api") or {}
    saved = {LEGACY_NAMES.get(k, k): v for k, v in saved.items()} if isinstance(saved, dict) \
        else {}
    return from_module(module, run.train_cfg, saved)


def from_module(module: torch.nn.Module, train_config: TrainConfig | None = None,
                saved: dict | None = None) -> Autoencoder:
    """A fitted Autoencoder around a trained network (an `AutoencoderModule`, e.g. from
    `aekit.core.load_model`): images are uint8 0..255 or floats 0..1 unless `saved` (the "api"
    dict that `save()` writes) says otherwise."""
    from aekit.errors import AekitTypeError
    from aekit.models.base import AutoencoderModule

    if not isinstance(module, AutoencoderModule):
        raise AekitTypeError(f"model: expected a fitted aekit.Autoencoder, a run folder or an "
                             f"aekit autoencoder module, got {type(module).__name__}")
    saved = saved or {}
    names = Autoencoder().get_params(deep=False)
    ae = Autoencoder(**{k: v for k, v in saved.items() if k in names})
    cfg = module.cfg
    ae.model, ae.latent_dim = cfg.name, cfg.latent_dim
    ae.module_, ae.model_config_ = module, cfg
    ae.train_config_ = train_config or TrainConfig()
    ae.history_ = []
    ae.n_features_in_ = int(np.prod(cfg.shape))
    pixel_max = saved.get("pixel_max_", 1.0)
    ae.pixel_max_ = float(pixel_max) if isinstance(pixel_max, int | float) and pixel_max > 0 \
        else 1.0
    layout = saved.get("input_layout_")
    ae.input_layout_ = layout if layout in ("flat", "nhw", "nchw", "nhwc") else "nchw"
    return ae

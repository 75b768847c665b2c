"""The scikit-learn-style facade.

    ae = aekit.Autoencoder(model="conv", latent_dim=32, epochs=10).fit(X)
    Z = ae.transform(X); X_hat = ae.inverse_transform(Z); ae.save("my-ae"); aekit.load("my-ae")

`__init__` only stores settings; `fit` validates, trains and sets the learned attributes (ending in
`_`). Inputs may be numpy or torch, uint8 in [0, 255] or float in [0, 1], shaped (N, H, W),
(N, C, H, W) or channels-last (N, H, W, C); outputs follow the input's library
(numpy in, numpy out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.data.units import as_image_tensor, like_input
from aekit.errors import ConfigError, DataError


class Autoencoder:
    """An autoencoder you can fit like a scikit-learn transformer."""

    def __init__(self, model: str = "conv", latent_dim: int = 32, epochs: int = 10,
                 batch_size: int = 128, lr: float = 2e-3, loss: str = "", widths: tuple = (),
                 options: dict | None = None, corrupt: str = "", val_fraction: float = 0.0,
                 seed: int = 0, device: str = "auto", verbose: bool = False) -> None:
        self.model = model
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.loss = loss
        self.widths = widths
        self.options = options
        self.corrupt = corrupt
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> Autoencoder:
        from aekit.core.training import build_corruption
        from aekit.models import build_model, resolve_options
        from aekit.train.loop import fit

        x = as_image_tensor(X)
        c, h, w = x.shape[1:]
        self.model_config_ = resolve_options(ModelConfig(
            name=self.model, in_channels=c, height=h, width=w, latent_dim=self.latent_dim,
            widths=tuple(self.widths), options=dict(self.options or {})))
        self.train_config_ = TrainConfig(
            dataset="array", epochs=self.epochs, batch_size=min(self.batch_size, len(x)),
            lr=self.lr, loss=self.loss, seed=self.seed, val_fraction=self.val_fraction,
            corrupt=self.corrupt, device=self.device)
        torch.manual_seed(self.seed)
        self.module_ = build_model(self.model_config_)
        n_val = int(round(len(x) * self.val_fraction))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        val_x = x[order[:n_val]] if n_val else None
        result = fit(self.module_, x[order[n_val:]], self.train_config_, val_x=val_x,
                     corrupt=build_corruption(self.corrupt), progress=self.verbose)
        self.history_ = result.history
        self.module_.to("cpu").eval()
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise ConfigError("this Autoencoder is not fitted yet; call fit(X) or aekit.load(dir)")

    def _batches(self, t: torch.Tensor, fn, images: bool = True, batch_size: int = 1024
                 ) -> torch.Tensor:
        """Apply fn batch by batch under inference_mode; images go through to_unit first."""
        from aekit.data.units import to_unit

        device = next(self.module_.parameters()).device
        with torch.inference_mode():
            outs = [fn(to_unit(b, device) if images else b.to(device).float())
                    for b in t.split(batch_size)]
        return torch.cat(outs).cpu()

    def transform(self, X: Any) -> Any:
        """Encode images to latent codes (N, latent...)."""
        self._check_fitted()
        x = as_image_tensor(X, shape=self.model_config_.shape)
        return like_input(self._batches(x, self.module_.encode), X)

    def inverse_transform(self, Z: Any) -> Any:
        """Decode latent codes back to images (N, C, H, W) in [0, 1]."""
        self._check_fitted()
        z = torch.from_numpy(np.asarray(Z, dtype=np.float32)) if not isinstance(Z, torch.Tensor) \
            else Z.float()
        if not torch.isfinite(z).all():
            raise DataError("Z: contains NaN or infinite values")
        decode = self.module_.decode
        return like_input(self._batches(z, lambda b: torch.sigmoid(decode(b)), images=False), Z)

    def reconstruct(self, X: Any) -> Any:
        """Encode and decode: images (N, C, H, W) in [0, 1]."""
        self._check_fitted()
        x = as_image_tensor(X, shape=self.model_config_.shape)
        return like_input(self._batches(x, lambda b: self.module_(b)["x_hat"]), X)

    def score(self, X: Any, y: Any = None) -> float:
        """PSNR (dB) of the reconstructions: higher is better, as scikit-learn expects."""
        from aekit.data.units import to_unit
        from aekit.eval.metrics import mse, psnr

        x = to_unit(as_image_tensor(X, shape=self.model_config_.shape), torch.device("cpu"))
        return psnr(mse(torch.as_tensor(self.reconstruct(x)), x))

    def save(self, path: str | Path) -> Path:
        """Write a run-folder-compatible directory (config.json + model.safetensors)."""
        from aekit.core.io import save_weights, write_config

        self._check_fitted()
        path = Path(path)
        write_config(path, self.model_config_, self.train_config_,
                     {"api": self.get_params()})
        save_weights(path, self.module_)
        return path

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        keys = ("model", "latent_dim", "epochs", "batch_size", "lr", "loss", "widths", "options",
                "corrupt", "val_fraction", "seed", "device", "verbose")
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k in keys for v in [getattr(self, k)]}


def load(path: str | Path) -> Autoencoder:
    """Load a saved Autoencoder or any run folder made by `aekit train`."""
    from aekit.core.io import load_model

    module, run = load_model(path)
    params = run.extra.get("api") or {}
    ae = Autoencoder(**{k: v for k, v in params.items() if k in Autoencoder().get_params()})
    ae.model, ae.latent_dim = run.model_cfg.name, run.model_cfg.latent_dim
    ae.module_, ae.model_config_, ae.train_config_ = module, run.model_cfg, run.train_cfg
    ae.history_ = []
    return ae

"""One-class anomaly detection with autoencoders trained on normal images only.

    det = Detector().fit(X_normal)            # trains, then calibrates a threshold
    s = det.score_samples(X)                  # anomaly score: higher = more anomalous
    flags = det.predict(X)                    # 1 = anomaly, 0 = normal

The autoencoder is trained as a *restoration* network (ARNet, Fei et al. 2020): its input is the
normal image rotated by a random multiple of 90 degrees, its target the upright image. Undoing the
rotation forces it to learn what normal images look like (orientation, shape), not just to copy
pixels, so anomalies are restored badly. The score (`score=`, parts joined by '+') combines parts
listed in aekit.anomaly.scores: mse, ssim, knn, gauss (from the networks) and pca, pixknn
(from the normal pixels). The latent parts (knn, gauss) come from networks trained with
`latent_restore` (default: a plain autoencoder): on a train-split validation the restoration
network's pixel errors and the plain network's codes were each the better of the two.

A combination adds each part's z-score (relative to held-out normal images); model parts are
averaged over the ensemble members first; a single part is reported raw (e.g. the MSE itself).
The threshold is the (1 - fpr) quantile of held-out normal scores, so about `fpr` of normal
images are flagged. Sign convention: unlike scikit-learn's outlier detectors (where a low
`score_samples` means abnormal), higher is more anomalous here, as for a reconstruction error,
and `predict` returns 1 for an anomaly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.anomaly.io import FORMAT_TAG, read_detector, save_detector
from aekit.anomaly.scores import (
    COMPONENTS,
    LATENT_PARTS,
    RECON_PARTS,
    gauss_fit,
    model_parts,
    parse_score,
    pixel_parts,
    pixel_state,
)
from aekit.config import ModelConfig, TrainConfig
from aekit.data.units import as_image_tensor, to_unit
from aekit.errors import ConfigError, DataError, check_range

DEFAULT_SCORE = "ssim+knn+gauss"  # best on the train-split validation (docs/bench/anomaly.md)
# Automatic training length (epochs=None): at least MIN_STEPS steps and MIN_EPOCHS epochs;
# the latent-part networks (latent_epochs=None) train shorter: their codes were as good.
MIN_STEPS, MIN_EPOCHS, MAX_EPOCHS = 1800, 30, 400
LATENT_MIN_STEPS, LATENT_MIN_EPOCHS = 800, 10


class RestoreCorruption:
    """Model input for restoration training: a random multiple of 90 degrees per image (180 only
    for non-square images), then an optional aekit corruption spec (e.g. mask:blocks)."""

    def __init__(self, spec: str) -> None:
        from aekit.data.corrupt import parse_corruption

        ops = [p.strip() for p in str(spec).split("+") if p.strip() and p.strip() != "none"]
        self.rotate = "rot" in ops
        rest = "+".join(p for p in ops if p != "rot")
        self.extra = parse_corruption(rest) if rest else None
        self.spec = "+".join(ops) or "none"

    @property
    def active(self) -> bool:
        return self.rotate or self.extra is not None

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        out = x
        if self.rotate:
            square = x.shape[-1] == x.shape[-2]
            ks = torch.randint(0, 4 if square else 2, (len(x),), generator=gen)
            if not square:
                ks = ks * 2  # 0 or 180 degrees keep the shape
            out = x.clone()
            for k in (1, 2, 3):
                sel = ks == k
                if sel.any():
                    out[sel] = torch.rot90(x[sel], k, (2, 3))
        if self.extra is not None:
            out = self.extra(out, gen)
        return out


class Detector:
    """Autoencoder anomaly detector with a calibrated threshold (scikit-learn style).

    `__init__` stores settings only; `fit(X)` trains on normal images and sets the learned
    attributes (ending in `_`). X: numpy or torch, uint8 [0, 255] or float [0, 1], shaped
    (N, H, W), (N, C, H, W) or (N, H, W, C).
    """

    def __init__(self, score: str = DEFAULT_SCORE, model: str = "conv", latent_dim: int = 32,
                 widths: tuple = (32, 64), epochs: int | None = None, batch_size: int = 64,
                 lr: float = 2e-3, restore: str = "rot", latent_restore: str | None = "none",
                 latent_epochs: int | None = None,
                 n_models: int = 1, k: int = 5, pca_k: int = 32,
                 fpr: float = 0.05, contamination: float | None = None, holdout: float = 0.1,
                 seed: int = 0, device: str = "auto", precision: str = "auto",
                 verbose: bool = False) -> None:
        self.score = score
        self.model = model
        self.latent_dim = latent_dim
        self.widths = widths
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.restore = restore
        self.latent_restore = latent_restore
        self.latent_epochs = latent_epochs
        self.n_models = n_models
        self.k = k
        self.pca_k = pca_k
        self.fpr = fpr
        self.contamination = contamination
        self.holdout = holdout
        self.seed = seed
        self.device = device
        self.precision = precision
        self.verbose = verbose

    # --- fitting ------------------------------------------------------------------------------

    def _check_params(self) -> float:
        parse_score(self.score)
        check_range("n_models", self.n_models, 1, 64)
        check_range("k", self.k, 1, 10_000)
        check_range("pca_k", self.pca_k, 1, 10_000)
        check_range("holdout", self.holdout, 0.01, 0.9)
        if self.contamination is not None:
            check_range("contamination", self.contamination, 0.0, 0.5)
            return float(self.contamination)
        check_range("fpr", self.fpr, 0.0, 1.0)
        return float(self.fpr)

    def _separate_latent(self) -> bool:
        """True when the latent parts (knn, gauss) get their own networks (another restore)."""
        if self.latent_restore is None:
            return False
        return RestoreCorruption(self.latent_restore).spec != RestoreCorruption(self.restore).spec

    def _epochs(self, n: int, latent: bool = False) -> int:
        """`epochs` (for latent networks `latent_epochs`, else `epochs`), or when None enough
        epochs for MIN_STEPS optimizer steps (at least MIN_EPOCHS): 30 epochs for 5,400 images
        (latent networks: 10-13), more for small normal sets."""
        fixed = self.epochs
        if latent and self.latent_epochs is not None:
            fixed = self.latent_epochs
        if fixed is not None:
            return int(fixed)
        min_steps, min_epochs = (LATENT_MIN_STEPS, LATENT_MIN_EPOCHS) if latent else \
            (MIN_STEPS, MIN_EPOCHS)
        steps = max(1, n // max(1, min(self.batch_size, n)))
        return min(MAX_EPOCHS, max(min_epochs, math.ceil(min_steps / steps)))

    def fit(self, X: Any, y: Any = None) -> Detector:
        """Train on normal images X, then calibrate the threshold on a held-out part of X."""
        from aekit.models import build_model
        from aekit.train.loop import fit

        rate = self._check_params()
        x = _as_normal_set(X)
        n_hold = min(len(x) - 1, max(1, int(round(len(x) * self.holdout))))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        train_x, held_x = x[order[n_hold:]], x[order[:n_hold]]
        c, h, w = x.shape[1:]
        self.model_config_ = ModelConfig(name=self.model, in_channels=c, height=h, width=w,
                                         latent_dim=self.latent_dim, widths=tuple(self.widths))
        self.train_config_ = TrainConfig(
            dataset="array", epochs=self._epochs(len(train_x)),
            batch_size=min(self.batch_size, len(train_x)),
            lr=self.lr, loss="mse", seed=self.seed, val_fraction=0.0, device=self.device,
            precision=self.precision)
        parts = parse_score(self.score)
        self.history_ = []
        t0 = time.perf_counter()

        def train(spec: str, epochs: int) -> list:
            corrupt = RestoreCorruption(spec)
            out = []
            for m in range(self.n_models):
                cfg = dataclasses.replace(self.train_config_, seed=self.seed + m, epochs=epochs)
                torch.manual_seed(cfg.seed)
                module = build_model(self.model_config_)
                result = fit(module, train_x, cfg, corrupt=corrupt if corrupt.active else None,
                             progress=self.verbose)
                out.append(module.to("cpu").eval())
                self.history_.append(result.history)
            return out

        latent = bool({"knn", "gauss"} & set(parts))
        recon = bool({"mse", "ssim"} & set(parts)) or not latent or not self._separate_latent()
        self.members_ = train(self.restore, self.train_config_.epochs) if recon else []
        self.latent_members_ = (train(str(self.latent_restore),
                                      self._epochs(len(train_x), latent=True))
                                if latent and self._separate_latent() else self.members_)
        if not self.members_:  # heat maps and reconstructions need a network
            self.members_ = self.latent_members_
        self.train_seconds_ = time.perf_counter() - t0
        self.codes_ = [self._codes(m, train_x) for m in self.latent_members_] if latent else []
        self.gauss_ = [gauss_fit(z) for z in self.codes_] if "gauss" in parts else []
        self.pixel_state_ = pixel_state(train_x, parts, self.pca_k)
        raw = self._raw_scores(held_x)
        self.stats_ = {key: (float(v.mean()), float(v.std()) or 1.0) for key, v in raw.items()}
        self.heldout_parts_ = raw
        self.heldout_scores_ = self._combine(raw)
        # At most `rate` of the held-out scores lie strictly above this (flagged means `>`).
        self.threshold_ = float(np.quantile(self.heldout_scores_, 1.0 - rate, method="higher"))
        self.pixel_scale_ = float(torch.quantile(self._pixel_errors(held_x).flatten()[:2_000_000],
                                                 0.999)) or 1.0
        self.n_train_, self.heldout_indices_ = len(train_x), order[:n_hold].numpy()
        return self

    # --- scoring ------------------------------------------------------------------------------

    def score_samples(self, X: Any) -> np.ndarray:
        """Anomaly score per image (N,): higher = more anomalous."""
        self._check_fitted()
        return self._combine(self._raw_scores(self._input(X)))

    def score_parts(self, X: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(score_samples(X), each part of the score raw and averaged over members) in one pass:
        the parts are what the score combines, e.g. {'mse': (N,), 'ssim': (N,)}; `stats_[part]`
        holds each part's (mean, std) on held-out normal images."""
        self._check_fitted()
        raw = self._raw_scores(self._input(X))
        return self._combine(raw), raw

    def decision_function(self, X: Any) -> np.ndarray:
        """score - threshold: positive for images flagged as anomalies."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X: Any) -> np.ndarray:
        """1 for an anomaly (score above the calibrated threshold), 0 for normal."""
        return (self.decision_function(X) > 0).astype(np.int64)

    def reconstruct(self, X: Any) -> np.ndarray:
        """The first member's reconstructions (N, C, H, W) in [0, 1]."""
        self._check_fitted()
        x = self._input(X)
        with torch.inference_mode():
            return torch.cat([self.members_[0](to_unit(b))["x_hat"] for b in x.split(512)]).numpy()

    def error_maps(self, X: Any) -> np.ndarray:
        """Per-pixel squared error (N, H, W), mean over channels and members; divide by
        `pixel_scale_` (the held-out 99.9th percentile) for a comparable 0..1 heat map."""
        self._check_fitted()
        return self._pixel_errors(self._input(X)).numpy()

    def heatmaps(self, X: Any) -> torch.Tensor:
        """Per-pixel error as 'inferno' colour images (N, 3, H, W) in [0, 1], on one fixed scale
        (the held-out 99.9th percentile pixel error) so colours compare across images."""
        from matplotlib import colormaps

        lut = torch.from_numpy(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3]).float()
        maps = torch.from_numpy(self.error_maps(X)) / self.pixel_scale_
        idx = (maps.clamp(0, 1) * 255).round().long()  # (N, H, W)
        return lut[idx].permute(0, 3, 1, 2)  # (N, 3, H, W)

    # --- internals ----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise ConfigError("this Detector is not fitted yet; call fit(X) or load_detector(dir)")

    def _input(self, X: Any) -> torch.Tensor:
        return as_image_tensor(X, shape=self.model_config_.shape)

    @torch.inference_mode()
    def _codes(self, module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([module.encode(to_unit(b)).flatten(1) for b in x.split(512)])

    def _raw_scores(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """{part: raw scores (N,)}, model parts averaged over the members."""
        parts = parse_score(self.score)
        sums: dict[str, torch.Tensor] = {}
        recon = tuple(p for p in parts if p in RECON_PARTS)
        latent = tuple(p for p in parts if p in LATENT_PARTS)
        if latent and self.latent_members_ is self.members_:
            recon, latent = recon + latent, ()
        for wanted, members in ((recon, self.members_), (latent, self.latent_members_)):
            for m, module in enumerate(members if wanted else []):
                # codes_/gauss_ belong to latent_members_ (the same list when shared)
                vals = model_parts(module, x, wanted, self.codes_[m] if self.codes_ else None,
                                   self.gauss_[m] if self.gauss_ else None, self.k)
                for name, v in vals.items():
                    sums[name] = sums.get(name, 0) + v / len(members)
        sums.update(pixel_parts(x, parts, self.pixel_state_, self.k))
        return {name: sums[name].numpy() for name in parts}

    def _combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        if len(raw) == 1:
            return next(iter(raw.values()))
        return sum((v - self.stats_[key][0]) / self.stats_[key][1] for key, v in raw.items())

    @torch.inference_mode()
    def _pixel_errors(self, x: torch.Tensor) -> torch.Tensor:
        maps = []
        for b in x.split(512):
            xb = to_unit(b)
            err = sum((mod(xb)["x_hat"] - xb).pow(2).mean(1) for mod in self.members_)
            maps.append(err / len(self.members_))  # (B, H, W)
        return torch.cat(maps)

    # --- persistence --------------------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        keys = ("score", "model", "latent_dim", "widths", "epochs", "batch_size", "lr",
                "restore", "latent_restore", "latent_epochs", "n_models", "k", "pca_k", "fpr",
                "contamination", "holdout", "seed", "device", "precision", "verbose")
        return {k: (list(v) if isinstance(v, tuple) else v) for k in keys
                for v in [getattr(self, k)]}

    def detector_state(self) -> dict[str, Any]:
        """What detector.json holds: settings, threshold and held-out score statistics."""
        self._check_fitted()
        held = self.heldout_scores_
        return {
            "format": FORMAT_TAG,
            "params": self.get_params(),
            "score": self.score,
            "threshold": self.threshold_,
            "fpr_target": self.contamination if self.contamination is not None else self.fpr,
            "heldout_fpr": float((held > self.threshold_).mean()),
            "components": {k: {"mean": m, "std": s} for k, (m, s) in self.stats_.items()},
            "heldout": {"n": int(len(held)), "mean": float(held.mean()), "std": float(held.std()),
                        "quantiles": {str(q): float(np.quantile(held, q))
                                      for q in (0.5, 0.9, 0.95, 0.99, 1.0)}},
            "pixel_scale": self.pixel_scale_,
            "n_train": self.n_train_,
            "members": len(self.members_),
            "latent_members": 0 if self.latent_members_ is self.members_
            else len(self.latent_members_),
            "train_seconds": round(self.train_seconds_, 2),
        }

    def save(self, path: str | Path, metrics: dict[str, Any] | None = None,
             extra: dict[str, Any] | None = None) -> Path:
        """Write a run folder: config.json, model.safetensors (+ model-<i>.safetensors for more
        members), detector.json, detector.safetensors (latent codes), metrics.json, history.csv."""
        return save_detector(self, path, metrics, extra)

    def basic_metrics(self) -> dict[str, Any]:
        hist = self.history_[0]
        n_img = sum(len(h) for h in self.history_) * self.n_train_
        return {"model": self.model_config_.name, "dataset": self.train_config_.dataset,
                "latent_dim": self.model_config_.latent_dim, "epochs": len(hist),
                "train_seconds": round(self.train_seconds_, 2),
                "train_images_per_second": round(n_img / max(self.train_seconds_, 1e-9), 1),
                "history": hist}


def load_detector(path: str | Path) -> Detector:
    """A fitted Detector from a run folder written by Detector.save / `aekit anomaly fit`."""
    return read_detector(path, Detector)


def _as_normal_set(X: Any) -> torch.Tensor:
    try:
        n = len(X)
    except TypeError:
        n = None
    if n == 0:
        raise DataError("the normal set is empty: fit needs at least 2 normal images")
    x = as_image_tensor(X, name="normal set")
    if len(x) < 2:
        raise DataError(f"the normal set has {len(x)} image; fit needs at least 2 (one is held "
                        "out to calibrate the threshold)")
    return x


__all__ = ["COMPONENTS", "DEFAULT_SCORE", "Detector", "load_detector", "parse_score"]

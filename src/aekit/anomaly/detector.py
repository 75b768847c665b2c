"""One-class anomaly detection with autoencoders trained on normal images only.

    det = Detector().fit(X_normal)            # trains, then calibrates a threshold
    s = det.score_samples(X)                  # anomaly score: higher = more anomalous
    flags = det.predict(X)                    # 1 = anomaly, 0 = normal

The autoencoder is trained as a *restoration* network (ARNet, Fei et al. 2020): its input is the
normal image rotated by a random multiple of 90 degrees, its target the upright image. Undoing the
rotation forces it to learn what normal images look like (orientation, shape), not just to copy
pixels, so anomalies are restored badly. The score (`scores=`, parts joined by '+') combines parts
listed in aekit.anomaly.scores: mse, ssim, knn, gauss (from the networks) and pca, pixknn,
local (from the normal pixels; local's per-pixel map is the heat map when it is in the
score). The latent parts (knn, gauss) come from networks trained with `latent_restore`
(default: a plain autoencoder): on a train-split validation the restoration network's pixel
errors and the plain network's codes were each the better of the two.

A combination adds each part's z-score (relative to held-out normal images; `local` adds only
its excess over a quantile of the held-out images', see `_combine`); model parts are averaged
over the ensemble members first; a single part is reported raw (e.g. the MSE itself). Images
larger than the training size are scored in overlapping tiles of that size (aekit.data.tiles):
the highest tile score is the image's, heat maps and reconstructions are blended back at full
size.
The threshold is the (1 - fpr) quantile of held-out normal scores, so about `fpr` of normal
images are flagged (`contamination`, as in PyOD, the expected share of anomalies in X, takes the
same rule); a hold-out too small for that quantile uses a Gaussian fit instead (calibrate.py).
Conventions are PyOD's (pyod.models.base.BaseDetector): `decision_function` and `score_samples`
are raw scores, higher = more anomalous (unlike scikit-learn's outlier detectors), `predict`
returns 1 for an anomaly and 0 for normal, and `decision_scores_`, `labels_`, `threshold_`,
`fit_predict`, `predict_proba` and `predict_confidence` behave as there.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin

from aekit import infer
from aekit.anomaly.calibrate import Decisions, calibrate_threshold
from aekit.anomaly.defaults import DEFAULT_SCORE, LOCAL_GATE, MODEL_OPTIONS
from aekit.anomaly.io import FORMAT_TAG, read_detector, save_detector
from aekit.anomaly.scores import (
    COMPONENTS,
    LATENT_PARTS,
    RECON_PARTS,
    gauss_fit,
    local_maps,
    model_parts,
    parse_score,
    pixel_parts,
    pixel_state,
)
from aekit.config import ModelConfig, TrainConfig
from aekit.console import info
from aekit.data.tiles import TileGrid, map_tiles
from aekit.data.units import (
    as_images,
    check_feature_names,
    float_white_of,
    read_array,
    to_layout,
    to_unit,
)
from aekit.errors import DataError, Param, check_fitted, check_params, seed_of
from aekit.estimator import ImageEstimatorMixin

# Longer than ~400 lines because the Detector's parameter table, fit (networks, score state,
# calibration) and scoring internals share its state; PyOD's decision methods and the threshold
# rule live in calibrate.py, the files in io.py.

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


class Detector(ImageEstimatorMixin, Decisions, OutlierMixin, BaseEstimator):
    """Autoencoder anomaly detector with a calibrated threshold (scikit-learn and PyOD style).

    `__init__` stores settings only; `fit(X)` trains on normal images and sets the learned
    attributes (ending in `_`). X: numpy, torch or array-likes; uint8/integer [0, 255] or float
    [0, 1] (or floats above 1: their training maximum is white, see aekit.api), shaped (N, H, W),
    (N, C, H, W), (N, H, W, C) or rows (N, C*H*W) with `image_shape`.

    Parameters: `scores` (the score parts joined by '+', see aekit.anomaly.scores), the networks
    (`model`, `latent_dim`, `widths`, `epochs`, `batch_size`, `lr`, `restore`,
    `latent_restore`, `latent_epochs`, `n_models`), the parts' `k` and `pca_k`, `local_gate`
    (the quantile of the held-out normal images' local z-scores that `local` must exceed to
    add to the score; default 0.95, 1: their highest; see `_combine`), the flag rate
    (`fpr`, or `contamination`, the expected share of anomalies in X as in PyOD, which wins when
    set), `holdout` (share of X kept out of training to calibrate the threshold), `image_shape`,
    `pixel_max`, `random_state`, `device`, `precision`, `verbose`.

    PyOD attributes: `decision_scores_` (scores of the fit images, in X's order; images that
    were trained on score lower than new ones, which is why the threshold comes from the
    held-out part), `threshold_` (`predict(X) == decision_function(X) > threshold_`),
    `labels_` (`decision_scores_ > threshold_`), `threshold_method_` (see calibrate.py).

    Pickling serialises the whole estimator object; `save()` folders are never pickles.
    """

    fitted_attribute = "threshold_"
    _param_table = {
        "scores": Param("str"),
        "model": Param("str"),
        "latent_dim": Param("int", 1, 1 << 20),
        "widths": Param("ints"),
        "epochs": Param("int", 1, 100_000, none=True),
        "batch_size": Param("int", 1, 1 << 16),
        "lr": Param("float", 0.0, 10.0, low_open=True),
        "restore": Param("str"),
        "latent_restore": Param("str", none=True),
        "latent_epochs": Param("int", 1, 100_000, none=True),
        "n_models": Param("int", 1, 64),
        "k": Param("int", 1, 10_000),
        "pca_k": Param("int", 1, 10_000),
        "local_gate": Param("float", 0.0, 1.0),
        "fpr": Param("float", 0.0, 1.0),
        "contamination": Param("float", 0.0, 0.5, low_open=True, none=True),
        "holdout": Param("float", 0.01, 0.9),
        "image_shape": Param("shape", none=True),
        "pixel_max": Param("float", 0.0, None, low_open=True, none=True),
        "random_state": Param("seed", none=True),
        "device": Param("str"),
        "precision": Param("str", choices=("auto", "fp32", "bf16")),
        "verbose": Param("bool"),
    }

    def __init__(self, scores: str = DEFAULT_SCORE, model: str = "conv", latent_dim: int = 32,
                 widths: tuple = (32, 64), epochs: int | None = None, batch_size: int = 64,
                 lr: float = 2e-3, restore: str = "rot", latent_restore: str | None = "none",
                 latent_epochs: int | None = None,
                 n_models: int = 1, k: int = 5, pca_k: int = 32, local_gate: float = LOCAL_GATE,
                 fpr: float = 0.05, contamination: float | None = None, holdout: float = 0.1,
                 image_shape: tuple | None = None, pixel_max: float | None = None,
                 random_state: int | None = 0, device: str = "auto", precision: str = "auto",
                 verbose: bool = False) -> None:
        self.scores = scores
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
        self.local_gate = local_gate
        self.fpr = fpr
        self.contamination = contamination
        self.holdout = holdout
        self.image_shape = image_shape
        self.pixel_max = pixel_max
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.verbose = verbose

    # --- fitting ------------------------------------------------------------------------------

    def _rate(self) -> float:
        """The share of normal images to flag: `contamination` when set, else `fpr`."""
        return float(self.contamination if self.contamination is not None else self.fpr)

    def _check_params(self) -> None:
        check_params(type(self).__name__, self.get_params(deep=False), self._param_table)
        parse_score(self.scores)
        RestoreCorruption(self.restore)
        if self.latent_restore is not None:
            RestoreCorruption(self.latent_restore)

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
        """Train on normal images X (y is ignored), then calibrate the threshold on a held-out
        part of X and score X (`decision_scores_`, `labels_`)."""
        from aekit.models import build_model
        from aekit.train.loop import fit

        self._check_params()
        x, pixel_max = self._normal_set(X)
        check_feature_names(self, X, reset=True)
        seed = seed_of(self.random_state)
        n_hold = min(len(x) - 1, max(1, int(round(len(x) * self.holdout))))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        train_x, held_x = x[order[n_hold:]], x[order[:n_hold]]
        c, h, w = x.shape[1:]
        self.model_config_ = ModelConfig(
            name=self.model, in_channels=c, height=h, width=w, latent_dim=self.latent_dim,
            widths=tuple(self.widths), options=dict(MODEL_OPTIONS.get(self.model, {})))
        # augment "none": its networks learn the normal images as they are (the scores were
        # measured so; "auto" would turn orientation-free images during training)
        self.train_config_ = TrainConfig(
            dataset="array", epochs=self._epochs(len(train_x)),
            batch_size=min(self.batch_size, len(train_x)),
            lr=self.lr, loss="mse", seed=seed, val_fraction=0.0, device=self.device,
            precision=self.precision, augment="none")
        parts = parse_score(self.scores)
        self.history_ = []
        self.restarts_ = 0  # networks trained again after collapsing from the plain start
        t0 = time.perf_counter()

        def train(spec: str, epochs: int) -> list:
            corrupt = RestoreCorruption(spec)
            out = []
            for m in range(self.n_models):
                cfg = dataclasses.replace(self.train_config_, seed=seed + m, epochs=epochs)
                label = f"network {m + 1}/{self.n_models} (input {spec})"
                # First from the plain start (output at sigmoid(0)), which its scores were
                # measured with: the data-dependent start costs one-class garments 0.3-0.7 AUROC.
                # A network that collapses from it (sparse images) trains again from the start
                # that cures that (the training images' mean output, aekit.train.health), as
                # soon as the collapse check sees it (a quarter of the way in, when near-constant).
                for plain in (True, False):
                    torch.manual_seed(cfg.seed)
                    module = build_model(self.model_config_)
                    module.output_init_pending = not plain
                    result = fit(module, train_x, cfg,
                                 corrupt=corrupt if corrupt.active else None,
                                 progress=self.verbose,
                                 on_epoch=self._epoch_lines(label, epochs, len(train_x)),
                                 stop_on_collapse=plain)
                    if not (plain and result.warnings):
                        break
                    info(f"{label} collapsed from the plain start; training it again from "
                         "the training images' mean output")
                self.restarts_ += 0 if plain else 1
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
        if self.verbose:
            info(f"scoring {len(x):,} images to calibrate the threshold ...")
        self.codes_ = [self._codes(m, train_x) for m in self.latent_members_] if latent else []
        self.gauss_ = [gauss_fit(z) for z in self.codes_] if "gauss" in parts else []
        self.pixel_state_ = pixel_state(train_x, parts, self.pca_k, seed)
        raw = self._raw_scores(held_x)
        self.stats_ = {key: (float(v.mean()), float(v.std()) or 1.0) for key, v in raw.items()}
        self.local_gate_ = self._gate(raw, tuple(raw), self.local_gate)
        self.heldout_parts_ = raw
        self.heldout_scores_ = self._combine(raw)
        # At most `rate_` of the held-out scores lie strictly above this (flagged means `>`),
        # or a Gaussian fit when the hold-out is too small for that (calibrate.py).
        self.threshold_, self.threshold_method_ = calibrate_threshold(self.heldout_scores_,
                                                                      self._rate())
        self.pixel_scale_ = float(torch.quantile(self._maps(held_x).flatten()[:2_000_000],
                                                 0.999)) or 1.0
        self.n_train_, self.heldout_indices_ = len(train_x), order[:n_hold].numpy()
        scores = np.empty(len(x), dtype=np.float64)  # PyOD: the scores of the fit images
        scores[order[:n_hold].numpy()] = self.heldout_scores_
        scores[order[n_hold:].numpy()] = self._combine(self._raw_scores(train_x))
        self.decision_scores_ = scores
        self.labels_ = (scores > self.threshold_).astype(np.int64)
        self.n_features_in_, self.pixel_max_ = int(math.prod(x.shape[1:])), pixel_max
        return self

    def _epoch_lines(self, label: str, epochs: int, n: int):
        """With `verbose`: a line before a network trains and one per epoch (aekit.console)."""
        if not self.verbose:
            return None
        from aekit.train.budget import reported

        info(f"training {label}: {epochs} epochs on {n:,} images")

        def line(row: dict) -> None:
            if reported(row["epoch"], epochs):
                info(f"  epoch {row['epoch']:>3}/{epochs}  train {row['train_loss']:.5f}  "
                     f"({row['seconds']:.1f}s)")
        return line

    def _normal_set(self, X: Any) -> tuple[torch.Tensor, float]:
        """(normal images (N, C, H, W) uint8 or [0, 1] float, white of float input)."""
        raw = read_array(X, "normal set")
        if raw.ndim >= 1 and len(raw) == 0:
            raise DataError("the normal set is empty: fit needs at least 2 normal images")
        pixel_max = float_white_of(raw, self.pixel_max)
        x, _ = as_images(raw, "normal set", shape=self.image_shape, owner=type(self).__name__,
                         int_white=self._int_white(), float_white=pixel_max)
        if len(x) < 2:
            raise DataError(f"the normal set has {len(x)} sample (image); fit needs at least 2 "
                            "(one is held out to calibrate the threshold)")
        return x, pixel_max

    def _int_white(self) -> float:
        return 255.0 if self.pixel_max is None else float(self.pixel_max)

    # --- scoring ------------------------------------------------------------------------------

    def score_samples(self, X: Any) -> np.ndarray:
        """Anomaly score per image (N,): higher = more anomalous (the same as
        decision_function; scikit-learn's own detectors use the opposite sign here). Images
        larger than the training size are scored in overlapping tiles of that size: their score
        is the highest of their tiles' scores (aekit.data.tiles)."""
        return self._scores_any(self._input(X))[0]

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw anomaly scores (N,), higher = more anomalous, as in PyOD: an image is flagged
        when its score is above `threshold_`."""
        return self.score_samples(X)

    def score_parts(self, X: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(score_samples(X), each part of the score raw and averaged over members) in one pass:
        the parts are what the score combines, e.g. {'mse': (N,), 'ssim': (N,)}; `stats_[part]`
        holds each part's (mean, std) on held-out normal images. For an image larger than the
        training size the parts are those of its highest-scoring tile."""
        return self._scores_any(self._input(X))

    def combine_parts(self, parts: dict[str, np.ndarray], names: Any = None,
                      gate_quantile: float | None = None) -> np.ndarray:
        """The score that the parts `names` (a '+' string or a sequence; default: the fitted
        score) give, from raw parts as `score_parts` returns them: how a score made of fewer
        parts would rank the same images, without refitting (a detector from `fit`, not one
        loaded from a folder, when `names` is not the fitted score or `gate_quantile` is given:
        the `local_gate` to combine with instead of the detector's own)."""
        names = parse_score(names) if isinstance(names, str) else \
            tuple(names) if names is not None else parse_score(self.scores)
        if set(names) == set(parse_score(self.scores)) and gate_quantile is None:
            return self._combine(parts, names)
        if not hasattr(self, "heldout_parts_"):
            raise DataError("combine_parts with other parts than the fitted score needs the "
                            "held-out parts of a fitted detector (fit, not load_detector)")
        q = self.local_gate if gate_quantile is None else gate_quantile
        return self._combine(parts, names, self._gate(self.heldout_parts_, names, q))

    def reconstruct(self, X: Any) -> Any:
        """The first member's reconstructions, in X's layout and white = pixel_max_ (numpy);
        larger images in overlapping tiles, stitched back at their own size."""
        x, layout = self._input(X, with_layout=True)
        module = self.members_[0]
        out = map_tiles(lambda b: torch.cat(infer.batched(module, "reconstruct", b, 512,
                                                           to_unit)),
                        x, self._tile(), 4096)
        if self.pixel_max_ != 1.0:
            out = out * self.pixel_max_
        return to_layout(out, layout).numpy()

    def error_maps(self, X: Any) -> np.ndarray:
        """Per-pixel squared error (N, H, W), mean over channels and members; divide by
        `pixel_scale_` (the held-out 99.9th percentile) for a comparable 0..1 heat map. Images
        larger than the training size: the tiles' maps blended at the image's own size."""
        return self._pixel_errors(self._input(X)).numpy()

    def anomaly_maps(self, X: Any) -> np.ndarray:
        """The heat maps' values (N, H, W), higher = more anomalous: with the `local` part in
        the score its per-pixel map (each pixel's neighbourhood distance to the nearest normal
        one, aekit.anomaly.scores.local_maps), else `error_maps`. Images larger than the
        training size: the tiles' maps blended at the image's own size."""
        return self._maps(self._input(X)).numpy()

    def heatmaps(self, X: Any) -> torch.Tensor:
        """`anomaly_maps` as 'inferno' colour images (N, 3, H, W) in [0, 1], on one fixed scale
        (the held-out 99.9th percentile) so colours compare across images."""
        from matplotlib import colormaps

        lut = torch.from_numpy(colormaps["inferno"](np.linspace(0, 1, 256))[:, :3]).float()
        maps = torch.from_numpy(self.anomaly_maps(X)) / self.pixel_scale_
        idx = (maps.clamp(0, 1) * 255).round().long()  # (N, H, W)
        return lut[idx].permute(0, 3, 1, 2)  # (N, 3, H, W)

    # --- internals ----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        check_fitted(self, "call fit(X) or load_detector(dir)")

    def _input(self, X: Any, with_layout: bool = False) -> Any:
        """X validated against the fitted detector: (N, C, H, W) uint8 or [0, 1] float, of the
        training size or larger (scored in tiles)."""
        self._check_fitted()
        x, layout = as_images(X, shape=self.model_config_.shape, owner=type(self).__name__,
                              int_white=self._int_white(), float_white=self.pixel_max_,
                              larger=True)
        check_feature_names(self, X, reset=False)
        return (x, layout) if with_layout else x

    def _tile(self) -> tuple[int, int]:
        return self.model_config_.height, self.model_config_.width

    def _scores_any(self, x: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(scores (N,), raw parts) of images of the training size, or larger ones through
        their tiles: an image's score is its highest tile score, its parts that tile's."""
        if tuple(x.shape[2:]) == self._tile():
            raw = self._raw_scores(x)
            return self._combine(raw), raw
        grid = TileGrid(x.shape[2:], self._tile())
        raw = self._raw_scores(grid.split(x))
        per_tile = self._combine(raw).reshape(len(x), len(grid))
        best = per_tile.argmax(1) + np.arange(len(x)) * len(grid)
        return per_tile.max(1), {k: v[best] for k, v in raw.items()}

    def _codes(self, module, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([z.flatten(1) for z in infer.batched(module, "encode", x, 512,
                                                               to_unit)])

    def _raw_scores(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """{part: raw scores (N,)}, model parts averaged over the members."""
        parts = parse_score(self.scores)
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

    def _combine(self, raw: dict[str, np.ndarray], names: tuple[str, ...] | None = None,
                 gate: tuple[float, float] | None = None) -> np.ndarray:
        """The score from raw parts: one part raw; else the sum of the parts' z-scores (held-out
        normal mean and std), except `local`, which only adds its excess over the `local_gate`
        quantile of the held-out normal images' local z-scores, in units of the other parts'
        held-out spread (`_gate`): a region more unusual than that raises the score on its own,
        while images below the bar score as without it. `names` picks a
        subset of the parts (with its own `gate`, as `_gate` gives it; default: the fitted
        score and `local_gate_`)."""
        names = tuple(raw) if names is None else tuple(names)
        if len(names) == 1:
            return raw[names[0]]
        z = {key: (raw[key] - self.stats_[key][0]) / self.stats_[key][1] for key in names}
        total = sum(z[key] for key in names if key != "local")
        if "local" in names:
            top, scale = gate or self.local_gate_
            total = total + scale * np.maximum(z["local"] - top, 0.0)
        return total

    def _gate(self, held: dict[str, np.ndarray], names: tuple[str, ...],
              quantile: float = LOCAL_GATE) -> tuple[float, float] | None:
        """(the `quantile` of the held-out images' local z-scores (1: the highest), the
        held-out standard deviation of the sum of the other parts' z-scores) for a score of
        `names` with `local` and other parts; None otherwise. `held`: the held-out images' raw
        parts."""
        if "local" not in names or len(names) == 1:
            return None
        z = {key: (held[key] - self.stats_[key][0]) / self.stats_[key][1] for key in names}
        rest = sum(z[key] for key in names if key != "local")
        return float(np.quantile(z["local"], quantile)), float(np.std(rest)) or 1.0

    def _maps(self, x: torch.Tensor) -> torch.Tensor:
        """anomaly_maps of validated images (N, H, W)."""
        if "local" not in parse_score(self.scores):
            return self._pixel_errors(x)
        if tuple(x.shape[2:]) != self._tile():
            return map_tiles(lambda b: self._maps(b)[:, None], x, self._tile(), 4096)[:, 0]
        return local_maps(x, self.pixel_state_["local_bank"])

    @torch.inference_mode()
    def _pixel_errors(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel squared error (N, H, W); larger images through blended tiles."""
        if tuple(x.shape[2:]) != self._tile():
            return map_tiles(lambda b: self._pixel_errors(b)[:, None], x, self._tile(),
                             4096)[:, 0]
        maps = []
        for b in x.split(512):
            xb = to_unit(b)
            err = sum((infer.run(mod, "reconstruct", xb, total=len(x)) - xb).pow(2).mean(1)
                      for mod in self.members_)
            maps.append(err / len(self.members_))  # (B, H, W)
        return torch.cat(maps)

    # --- persistence --------------------------------------------------------------------------

    def detector_state(self) -> dict[str, Any]:
        """What detector.json holds: settings, threshold and held-out score statistics."""
        self._check_fitted()
        held = self.heldout_scores_
        return {
            "format": FORMAT_TAG,
            "params": self.saved_params(),
            "score": self.scores,
            "threshold": self.threshold_,
            "threshold_method": self.threshold_method_,
            "fpr_target": self._rate(),
            "heldout_fpr": float((held > self.threshold_).mean()),
            "pixel_max": self.pixel_max_,
            "components": {k: {"mean": m, "std": s} for k, (m, s) in self.stats_.items()},
            **({"local_gate": {"threshold": self.local_gate_[0], "scale": self.local_gate_[1]}}
               if self.local_gate_ is not None else {}),
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

    def saved_params(self) -> dict[str, Any]:
        """get_params() as JSON: lists for tuples, the seed used for random_state."""
        params = self.get_params(deep=False)
        params["random_state"] = self.train_config_.seed
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}

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
                "restarts": self.restarts_, "history": hist}


def load_detector(path: str | Path) -> Detector:
    """A fitted Detector from a run folder written by Detector.save / `aekit anomaly fit`."""
    return read_detector(path, Detector)


__all__ = ["COMPONENTS", "DEFAULT_SCORE", "Detector", "load_detector", "parse_score"]

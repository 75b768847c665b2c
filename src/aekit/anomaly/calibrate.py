"""From anomaly scores to decisions: the threshold rule, and PyOD's probability and confidence.

Threshold (`calibrate_threshold`): the (1 - rate) quantile of the held-out normal scores
(method "higher", so at most `rate` of them lie strictly above it) when the hold-out is large
enough for that quantile to lie below its maximum, i.e. n_held >= 1 + 1/rate (21 images for
rate 0.05). With fewer held-out images the empirical quantile would be their maximum, which
flags nothing of what was held out whatever the rate; then the threshold is the (1 - rate)
quantile of a normal distribution fitted to the held-out scores (mean + z * std), and the
detector records `threshold_method_ = "gaussian"` instead of "quantile".

`Decisions` gives a detector PyOD's decision methods (pyod.models.base.BaseDetector: predict,
fit_predict, predict_proba, predict_confidence) from its `decision_function`, `threshold_` and
training-set scores `decision_scores_`, so a Detector answers like a PyOD detector.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from aekit.errors import ConfigError


def calibrate_threshold(held: np.ndarray, rate: float) -> tuple[float, str]:
    """(threshold, "quantile" | "gaussian") flagging about `rate` of normal images (see above)."""
    held = np.asarray(held, dtype=np.float64)
    n = len(held)
    if rate <= 0 or rate >= 1 or rate * (n - 1) >= 1 - 1e-9:
        return float(np.quantile(held, 1.0 - rate, method="higher")), "quantile"
    std = float(held.std(ddof=1)) if n > 1 else 0.0
    return float(held.mean() + std * NormalDist().inv_cdf(1.0 - rate)), "gaussian"


def proba(train_scores: np.ndarray, scores: np.ndarray, method: str = "linear") -> np.ndarray:
    """(N, 2) [P(normal), P(anomaly)]: 'linear' min-max scales the scores by the training
    scores' range (clipped to [0, 1]); 'unify' is erf((s - mean) / (std * sqrt 2)) clipped to
    [0, 1] (Kriegel et al. 2011), as PyOD computes them."""
    train_scores = np.asarray(train_scores, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if method == "linear":
        lo, hi = float(train_scores.min()), float(train_scores.max())
        p = (scores - lo) / (hi - lo) if hi > lo else (scores > hi).astype(np.float64)
    elif method == "unify":
        std = float(train_scores.std()) or 1.0
        z = (scores - float(train_scores.mean())) / (std * math.sqrt(2.0))
        p = np.array([math.erf(v) for v in z], dtype=np.float64)
    else:
        raise ConfigError(f"method={method!r} is not a probability conversion; use 'linear' or "
                          "'unify'")
    p = p.clip(0.0, 1.0)
    return np.stack([1.0 - p, p], axis=1)


def confidence(train_scores: np.ndarray, scores: np.ndarray, flags: np.ndarray,
               rate: float) -> np.ndarray:
    """How consistently (0..1) the detector would make the same decision under a perturbed
    training set (ExCeeD, Perini et al. 2020), as PyOD's predict_confidence."""
    from scipy.stats import binom

    train_sorted = np.sort(np.asarray(train_scores, dtype=np.float64))
    n = len(train_sorted)
    below = np.searchsorted(train_sorted, np.asarray(scores, dtype=np.float64), side="right")
    posterior = (1.0 + below) / (2.0 + n)
    conf = 1.0 - binom.cdf(n - int(n * rate), n, posterior)
    return np.where(np.asarray(flags) == 1, conf, 1.0 - conf).astype(np.float64)


class Decisions:
    """PyOD's decision methods for a fitted detector with `decision_function(X)` (higher = more
    anomalous), `threshold_`, `decision_scores_`, `labels_` and `_rate()` (the flag rate)."""

    def predict(self, X: Any, return_confidence: bool = False) -> Any:
        """1 for an anomaly (score above `threshold_`), 0 for normal; with
        `return_confidence`, also `predict_confidence(X)` (as PyOD)."""
        scores = self.decision_function(X)
        flags = (scores > self.threshold_).astype(np.int64)
        if return_confidence:
            return flags, confidence(self.decision_scores_, scores, flags, self._rate())
        return flags

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on X and return its labels (`labels_`: 1 = anomaly, 0 = normal)."""
        return self.fit(X, y, **kwargs).labels_.copy()

    def predict_proba(self, X: Any, method: str = "linear", return_confidence: bool = False
                      ) -> Any:
        """(N, 2) [P(normal), P(anomaly)] from the scores, as PyOD: 'linear' scales them by the
        range of `decision_scores_`, 'unify' by their mean and std through erf."""
        if method not in ("linear", "unify"):
            proba(np.zeros(1), np.zeros(1), method)  # the one error message for this
        scores = self.decision_function(X)
        p = proba(self.decision_scores_, scores, method)
        if return_confidence:
            flags = (scores > self.threshold_).astype(np.int64)
            return p, confidence(self.decision_scores_, scores, flags, self._rate())
        return p

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence (N,) in [0, 1] of each prediction under a perturbed training set
        (ExCeeD, as PyOD's predict_confidence)."""
        scores = self.decision_function(X)
        flags = (scores > self.threshold_).astype(np.int64)
        return confidence(self.decision_scores_, scores, flags, self._rate())

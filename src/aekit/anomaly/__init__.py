"""Anomaly detection: fit on normal images, score new ones, flag them and draw heat maps.

    algorithm  detector.py   Detector (scikit-learn outlier-detector style)
               scores.py     the score components (reconstruction, SSIM, kNN, Gaussian, pixels)
               evaluate.py   the normal set and what `anomaly fit` measures (AUROC, PCA)
    files      io.py         the detector run folder
    commands   cli.py        anomaly fit, anomaly score
"""

from aekit.lazy import exports

__all__ = ["Detector", "load_detector"]

__getattr__ = exports(__name__, {"Detector": "aekit.anomaly.detector",
                                 "load_detector": "aekit.anomaly.detector"})

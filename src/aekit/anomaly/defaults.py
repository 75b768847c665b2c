"""The Detector's default settings and the score parts' names, importable without torch or
scikit-learn: the command line's parser reads them (`aekit --help` must start fast), and
tests/test_anomaly.py checks that they equal `Detector()`'s constructor defaults."""

RECON_PARTS = ("mse", "ssim")
LATENT_PARTS = ("knn", "gauss")
MODEL_PARTS = RECON_PARTS + LATENT_PARTS
PIXEL_PARTS = ("pca", "pixknn", "local")
COMPONENTS = MODEL_PARTS + PIXEL_PARTS

DEFAULT_SCORE = "ssim+knn+gauss+local"  # docs/ANOMALY.md: "The default, and why"
# `local` adds to the other parts only its excess over this quantile of the held-out normal
# images' local z-scores. 0.95 is the one bar that put the detector above a PCA residual on
# every kind of image measured (photo and texture patches with small defects need a bar below
# the held-out maximum; one-class digits and garments lose ~0.1 AUROC to it): docs/ANOMALY.md.
LOCAL_GATE = 0.95

# The options of the detector's networks: the ones its scores were measured with. The linear
# paths of the conv and the VAE (a PCA start, their reconstruction default) are left out: they
# have not been measured for these scores, whose members are also trained without the
# data-dependent start.
MODEL_OPTIONS = {"conv": {"linear": False}, "vae": {"pca_start": False}}

# Fewer held-out normal images than this calibrate a threshold whose false-alarm rate on new
# normal images can be far from the one asked for: `aekit anomaly fit` says so (a folder of 60
# images keeps 6, and the threshold rests on the spread of their 6 scores).
FEW_HELDOUT = 50

DEFAULTS = {
    "scores": DEFAULT_SCORE, "model": "conv", "latent_dim": 32, "widths": (32, 64),
    "epochs": None, "batch_size": 64, "lr": 2e-3, "restore": "rot", "latent_restore": "none",
    "latent_epochs": None, "n_models": 1, "k": 5, "pca_k": 32, "local_gate": LOCAL_GATE,
    "fpr": 0.05, "contamination": None, "holdout": 0.1, "random_state": 0, "device": "auto",
    "precision": "auto",
}

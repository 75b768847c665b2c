"""Choosing the normal set and measuring a fitted detector: what `aekit anomaly fit` records in
metrics.json (reconstruction quality against PCA, held-out false-positive rate, and test AUROC
when the dataset's labels say which test images are anomalies)."""

from __future__ import annotations

from pathlib import Path

import torch

from aekit.core.training import write_reconstructions
from aekit.data import load_dataset
from aekit.data.folder import load_image_folder
from aekit.data.units import to_unit
from aekit.errors import ConfigError, DataError
from aekit.eval.baselines import pca_baseline
from aekit.eval.evaluate import measure
from aekit.eval.metrics import auroc
from aekit.eval.plots import plot_loss


def normal_set(dataset: str | None, normal_class: str | None, normal_dir: str | None,
               image_size: tuple[int, int] | None = None, patch: int = 0):
    """(normal train images uint8, dataset or None, normal class index or None, description,
    [(unreadable file, reason)] left out of a folder): a folder of normal images, a whole
    dataset, or one class of a labelled dataset; with `patch`, the patches cut from them
    (aekit.data.patches)."""
    if normal_dir:
        if normal_class is not None:
            raise ConfigError("normal_class applies to a dataset, not to a folder of normal "
                              "images")
        if not Path(normal_dir).is_dir():
            raise ConfigError(f"{normal_dir}: no such folder")
        ds = load_image_folder(Path(normal_dir), image_size, patch)
        return (torch.cat([ds.train_x, ds.test_x]), None, None, f"folder {normal_dir}",
                list(ds.skipped))
    ds = load_dataset(dataset or "fashion-mnist", image_size=image_size, patch=patch)
    if normal_class is None:
        return (ds.train_x, ds, None, f"{ds.name} (all {len(ds.train_x):,} training images)",
                list(ds.skipped))
    k = resolve_class(ds, normal_class)
    x = ds.train_x[ds.train_y == k]
    if len(x) == 0:
        raise DataError(f"dataset {ds.name}: class {normal_class!r} has no training images; "
                        "the normal set is empty")
    return x, ds, k, f"{ds.name} class {k} ({ds.classes[k]})", list(ds.skipped)


def resolve_class(ds, text: str) -> int:
    if ds.train_y is None or not ds.classes:
        raise ConfigError(f"dataset {ds.name} has no labels, so --normal-class cannot pick a "
                          "class; leave the class out to use every image as normal")
    names = list(ds.classes)
    if str(text).strip().lstrip("-").isdigit():
        k = int(text)
        if 0 <= k < len(names):
            return k
    elif text in names:
        return names.index(text)
    shown = ", ".join(f"{i}={n}" for i, n in enumerate(names[:12]))
    more = ", ..." if len(names) > 12 else ""
    raise ConfigError(f"normal class {text!r} does not exist in {ds.name}; use an index "
                      f"0..{len(names) - 1} or a name ({shown}{more})")


def fit_metrics(det, x: torch.Tensor, ds, k: int | None) -> dict:
    """metrics.json: the run contract's keys (quality on normal test images, PCA at the same
    latent size) plus detection results on the labelled test split when there is one."""
    metrics = det.basic_metrics()
    if ds is not None and k is not None:
        normal_test = ds.test_x[ds.test_y == k]
    elif ds is not None:
        normal_test = ds.test_x
    else:
        normal_test = x[torch.as_tensor(det.heldout_indices_)]
    if len(normal_test):
        x_hat = torch.as_tensor(det.reconstruct(normal_test))
        metrics["test"] = measure(x_hat, to_unit(normal_test))
        seed = det.train_config_.seed
        metrics["baselines"] = {"pca": pca_baseline(x, normal_test, det.latent_dim, seed)}
    state = det.detector_state()
    anomaly = {"score": det.scores, "threshold": det.threshold_,
               "fpr_target": state["fpr_target"], "heldout_fpr": state["heldout_fpr"],
               "heldout_images": len(det.heldout_scores_)}
    if ds is not None and k is not None and ds.test_y is not None:
        s = det.score_samples(ds.test_x)
        is_anomaly = (ds.test_y != k).numpy()
        flagged = s > det.threshold_
        if 0 < is_anomaly.sum() < len(is_anomaly):
            anomaly["test_auroc"] = auroc(s, is_anomaly)
        anomaly["test_normal_flagged"] = float(flagged[~is_anomaly].mean())
        if is_anomaly.any():
            anomaly["test_anomalies_flagged"] = float(flagged[is_anomaly].mean())
    metrics["anomaly"] = anomaly
    return metrics


def write_pictures(out: Path, det, x: torch.Tensor, metrics: dict) -> None:
    """reconstructions.png and loss.png, as in a training run folder."""
    sample = to_unit(x[:10])
    write_reconstructions(out / "reconstructions.png", sample,
                          torch.as_tensor(det.reconstruct(sample)), sample, False)
    if metrics.get("history"):
        plot_loss(metrics["history"], out / "loss.png", f"anomaly detector ({det.scores})")

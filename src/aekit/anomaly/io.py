"""Detector run folders: what `Detector.save` / `aekit anomaly fit` write and `load_detector` reads.

    RUN/config.json, model.safetensors, history.csv, metrics.json   as a training run folder
    RUN/model-<i>.safetensors, latent-<i>.safetensors   further ensemble members (same format)
    RUN/detector.json          the detector's parameters, calibration and threshold
    RUN/detector.safetensors   codes bank, Gaussian fits, pixel statistics, held-out scores and
                               the scores of the fit images (decision_scores)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.anomaly.scores import parse_score
from aekit.errors import RunError

DETECTOR_FILE = "detector.json"
CODES_FILE = "detector.safetensors"
FORMAT_TAG = "aekit-anomaly/2"
# Detector parameters renamed since files were first written: old name -> new name.
LEGACY_NAMES = {"score": "scores", "seed": "random_state"}


def save_detector(det, path: str | Path, metrics: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write det's run folder (what Detector.save documents); returns the folder."""
    from aekit.core.io import save_weights, write_config, write_history_csv, write_weights
    from aekit.core.io import write_metrics as write_metrics_json
    from aekit.io import atomic_write_text, write_safetensors

    det._check_fitted()
    path = Path(path)
    info = {"detector": DETECTOR_FILE, **(extra or {})}
    write_config(path, det.model_config_, det.train_config_, {"anomaly": info})
    save_weights(path, det.members_[0])
    extra_nets = [(f"model-{i}", m) for i, m in enumerate(det.members_[1:], start=1)]
    if det.latent_members_ is not det.members_:
        extra_nets += [(f"latent-{i}", m) for i, m in enumerate(det.latent_members_)]
    for name, module in extra_nets:
        write_weights(path / f"{name}.safetensors", module)
    tensors = {f"codes/{i}": z.contiguous() for i, z in enumerate(det.codes_)}
    for i, (mu, prec) in enumerate(det.gauss_):
        tensors[f"gauss_mean/{i}"], tensors[f"gauss_precision/{i}"] = mu, prec.contiguous()
    for name, t in det.pixel_state_.items():
        tensors[f"pixel/{name}"] = t
    tensors["heldout_scores"] = torch.from_numpy(det.heldout_scores_.astype(np.float64))
    tensors["decision_scores"] = torch.from_numpy(det.decision_scores_.astype(np.float64))
    write_safetensors(path / CODES_FILE, tensors, {"format": FORMAT_TAG})
    atomic_write_text(path / DETECTOR_FILE, json.dumps(det.detector_state(), indent=2) + "\n")
    write_history_csv(path, det.history_[0])
    write_metrics_json(path, metrics or det.basic_metrics())
    return path


def read_detector(path: str | Path, detector_cls: type):
    """A fitted `detector_cls` (the Detector class, passed in so this module sits below it) from
    a run folder written by Detector.save / `aekit anomaly fit`."""
    from aekit.core.io import load_model, load_weights, read_config
    from aekit.io import read_json, read_safetensors
    from aekit.models import build_model

    path = Path(path)
    run = read_config(path)
    if not (path / DETECTOR_FILE).is_file():
        raise RunError(f"{path}: not an anomaly detector (no {DETECTOR_FILE}); make one with "
                       "`aekit anomaly fit`")
    state = read_json(path / DETECTOR_FILE, "detector file")
    if not isinstance(state, dict) or state.get("format") != FORMAT_TAG:
        raise RunError(f"{path}/{DETECTOR_FILE}: not an aekit detector file")
    try:
        params = {LEGACY_NAMES.get(k, k): v for k, v in dict(state["params"]).items()}
        names = detector_cls().get_params(deep=False)
        det = detector_cls(**{k: v for k, v in params.items() if k in names})
        det.threshold_ = float(state["threshold"])
        det.threshold_method_ = str(state.get("threshold_method", "quantile"))
        det.pixel_max_ = float(state.get("pixel_max", 1.0))
        if not det.pixel_max_ > 0:
            raise ValueError(f"pixel_max {det.pixel_max_} is not positive")
        det.stats_ = {k: (float(v["mean"]), float(v["std"]))
                      for k, v in state["components"].items()}
        det.pixel_scale_ = float(state["pixel_scale"])
        gate = state.get("local_gate")
        det.local_gate_ = None if gate is None else (float(gate["threshold"]),
                                                      float(gate["scale"]))
        det.n_train_, n_members = int(state["n_train"]), int(state["members"])
        n_latent = int(state.get("latent_members", 0))
        det.train_seconds_ = float(state.get("train_seconds", 0.0))
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path}/{DETECTOR_FILE}: incomplete or corrupt ({e})") from None
    det.model_config_, det.train_config_ = run.model_cfg, run.train_cfg
    first, _ = load_model(path)

    def net(name: str):
        module = build_model(run.model_cfg)
        module.load_state_dict(load_weights(path / f"{name}.safetensors", run.model_cfg))
        return module.eval()

    det.members_ = [first] + [net(f"model-{i}") for i in range(1, n_members)]
    det.latent_members_ = [net(f"latent-{i}") for i in range(n_latent)] if n_latent \
        else det.members_
    n_members = len(det.latent_members_)
    t, _ = read_safetensors(path / CODES_FILE, "detector state",
                            missing=f"{path}/{CODES_FILE}: missing or corrupt detector state")
    parts = parse_score(det.scores)
    try:
        det.codes_ = [t[f"codes/{i}"] for i in range(n_members)] \
            if {"knn", "gauss"} & set(parts) else []
        det.gauss_ = [(t[f"gauss_mean/{i}"], t[f"gauss_precision/{i}"])
                      for i in range(n_members)] if "gauss" in parts else []
        det.pixel_state_ = {key.split("/", 1)[1]: v for key, v in t.items()
                            if key.startswith("pixel/")}
        det.heldout_scores_ = t["heldout_scores"].numpy()
    except KeyError as e:
        raise RunError(f"{path}/{CODES_FILE}: missing tensor {e}") from None
    # Detectors saved before decision_scores existed: the held-out scores stand in for them.
    scores = t.get("decision_scores", t["heldout_scores"])
    if scores.ndim != 1 or len(scores) == 0 or not torch.isfinite(scores).all():
        raise RunError(f"{path}/{CODES_FILE}: decision scores are not a finite 1-D tensor")
    det.decision_scores_ = scores.double().numpy()
    det.labels_ = (det.decision_scores_ > det.threshold_).astype(np.int64)
    det.n_features_in_ = int(np.prod(run.model_cfg.shape))
    det.history_ = [[]]
    return det

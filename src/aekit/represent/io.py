"""Classifier folders: what `aekit finetune` writes and `aekit classify` reads.

    OUT/classifier.json          {"kind": "classifier", "model": ModelConfig, "num_classes", ...}
    OUT/classifier.safetensors   encoder + head weights; the model config repeated in the
                                 metadata, so weights swapped in from another folder are refused
    OUT/metrics.json             accuracies measured by `aekit finetune`
"""

from __future__ import annotations

import json
from pathlib import Path

from aekit.config import ModelConfig
from aekit.errors import AekitError, RunError
from aekit.io import atomic_write_text, read_json, read_safetensors, write_safetensors
from aekit.models import build_model
from aekit.represent.fewlabel import Classifier

CLF_CONFIG, CLF_WEIGHTS, CLF_FORMAT = "classifier.json", "classifier.safetensors", "aekit-clf/1"


def save_classifier(out, clf: Classifier, info: dict) -> None:
    """Write the classifier (encoder + head weights) and `info` (model config, classes, ...)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"kind": "classifier", **info, "model": clf.autoencoder.cfg.to_dict(),
           "num_classes": clf.head[-1].out_features}
    meta = {"format": CLF_FORMAT, "model": json.dumps(doc["model"], sort_keys=True)}
    write_safetensors(out / CLF_WEIGHTS, clf.state_dict(), meta)
    atomic_write_text(out / CLF_CONFIG, json.dumps(doc, indent=2) + "\n")


def load_classifier(path) -> tuple[Classifier, dict]:
    """(classifier in eval mode, its info) from a folder written by `aekit finetune`."""
    path = Path(path)
    if not (path / CLF_CONFIG).is_file():
        hint = " (that is an autoencoder run; make a classifier with `aekit finetune`)" \
            if (path / "config.json").is_file() else ""
        raise RunError(f"{path}: not a classifier folder (no {CLF_CONFIG}){hint}")
    info = read_json(path / CLF_CONFIG, "classifier config")
    try:
        cfg = ModelConfig.from_dict(info["model"])
        ft = info.get("finetune", {})
        clf = Classifier(build_model(cfg), int(info["num_classes"]), ft.get("head", "linear"),
                         int(ft.get("hidden", 256)))
    except (AekitError, KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path / CLF_CONFIG}: not a valid classifier config ({e})") from None
    state, meta = read_safetensors(path / CLF_WEIGHTS, "classifier weights",
                                   missing=f"{path / CLF_WEIGHTS}: weights not found")
    if meta.get("format") != CLF_FORMAT or json.loads(meta.get("model", "null")) != \
            json.loads(json.dumps(info["model"], sort_keys=True)):
        raise RunError(f"{path / CLF_WEIGHTS}: not the weights of this classifier config")
    try:
        clf.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(f"{path / CLF_WEIGHTS}: tensors do not match ({first})") from None
    return clf.eval(), info

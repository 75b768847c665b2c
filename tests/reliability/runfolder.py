"""Validate every file of a run folder: each one present under its final name must be complete.

`check_file` parses a file by its kind (JSON, safetensors, PNG, CSV); `FolderWatcher` polls a run
folder from a thread while `aekit train` writes it and records every file it ever saw incomplete.
Hidden `.NAME.*.tmp` files are atomic writes in flight: they are counted, never parsed.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from safetensors.torch import load as st_load

HISTORY_HEADER = ["epoch", "train_loss", "val_loss", "seconds", "lr"]
LOG_HEADER = ["epoch", "step", "train_loss", "val_loss", "lr", "seconds", "images_per_second"]


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _safetensors_meta(raw: bytes) -> dict:
    st_load(raw)  # raises on a truncated / corrupt file
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]).get("__metadata__") or {}


def check_bytes(rel: str, raw: bytes) -> tuple[str | None, dict]:
    """(None or the reason `raw` is not a complete `rel`, facts such as the checkpoint epoch)."""
    try:
        if rel == ".lock":  # the writer's lock; a killed writer leaves it for the next to take
            doc = json.loads(raw.decode("utf-8"))
            return (None if {"pid", "host"} <= set(doc) else "lock without pid/host"), {}
        if rel.endswith(".json"):
            doc = json.loads(raw.decode("utf-8"))
            need = {"config.json": ("model", "train"), "metrics.json": ("test", "history")}
            missing = [k for k in need.get(rel, ()) if k not in doc]
            return (f"keys missing: {missing}" if missing else None), {}
        if rel == "model.safetensors":
            meta = _safetensors_meta(raw)
            return (None if meta.get("format") == "aekit-model/1" else "no format tag"), {}
        if rel == "checkpoint/state.safetensors":
            meta = json.loads(_safetensors_meta(raw)["meta"])
            return None, {"epoch": int(meta["epoch"])}
        if rel.endswith(".png"):
            with Image.open(io.BytesIO(raw)) as im:
                im.load()
            return None, {}
        if rel in ("history.csv", "log.csv"):
            text = raw.decode("utf-8")
            rows = list(csv.reader(io.StringIO(text)))
            header = HISTORY_HEADER if rel == "history.csv" else LOG_HEADER
            if not text.endswith("\n") or rows[0][: len(header)] != header:
                return "bad header or no final newline", {}
            if any(len(r) != len(rows[0]) for r in rows[1:]):
                return "ragged row", {}
            epochs = [int(r[0]) for r in rows[1:]]
            if epochs != list(range(1, len(rows))):
                return f"epochs {epochs} are not 1..N", {}
            return None, {"rows": len(epochs)}
    except Exception as e:  # any parse failure means the file is incomplete or corrupt
        return f"{type(e).__name__}: {str(e)[:120]}", {}
    return "unexpected file in a run folder", {}


def check_file(run: Path, path: Path) -> tuple[str | None, dict] | None:
    """Validate one file; None when it vanished between listing and reading (absent is fine)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return check_bytes(path.relative_to(run).as_posix(), raw)


@dataclass
class Snapshot:
    problems: list[str] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)
    files: int = 0
    checkpoint_epoch: int = 0


def check_folder(run: Path) -> Snapshot:
    """Validate every file in `run` once (used after a kill and at the end)."""
    snap = Snapshot()
    if not run.is_dir():
        return snap
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        if is_temp(path):
            snap.temps.append(path.relative_to(run).as_posix())
            continue
        result = check_file(run, path)
        if result is None:
            continue
        snap.files += 1
        reason, facts = result
        if reason:
            snap.problems.append(f"{path.relative_to(run)}: {reason}")
        snap.checkpoint_epoch = max(snap.checkpoint_epoch, facts.get("epoch", 0))
    return snap


class FolderWatcher(threading.Thread):
    """Polls a run folder, re-validating each file whenever its (inode, size, mtime) changes."""

    def __init__(self, run: Path, interval: float = 0.004) -> None:
        super().__init__(daemon=True)
        self.folder, self.interval = run, interval
        self.problems: list[str] = []
        self.checks = 0  # file versions parsed
        self.temps_seen: set[str] = set()
        self.checkpoint_epochs: list[int] = []  # every checkpoint version seen, in order
        self.published: set[str] = set()
        self._seen: dict[str, tuple] = {}
        self._halt = threading.Event()

    def run_once(self) -> None:
        if not self.folder.is_dir():
            return
        for path in list(self.folder.rglob("*")):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if not path.is_file():
                continue
            rel = path.relative_to(self.folder).as_posix()
            if is_temp(path):
                self.temps_seen.add(rel)
                continue
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if self._seen.get(rel) == key:
                continue
            result = check_file(self.folder, path)
            if result is None:
                continue
            self._seen[rel] = key
            self.checks += 1
            self.published.add(rel)
            reason, facts = result
            if reason:
                self.problems.append(f"{rel}: {reason}")
            if "epoch" in facts:
                epochs = self.checkpoint_epochs
                if epochs and facts["epoch"] < epochs[-1]:
                    self.problems.append(f"{rel}: epoch went back {epochs[-1]} -> {facts['epoch']}")
                if not epochs or epochs[-1] != facts["epoch"]:
                    epochs.append(facts["epoch"])

    @property
    def checkpoint_epoch(self) -> int:
        return self.checkpoint_epochs[-1] if self.checkpoint_epochs else 0

    def run(self) -> None:  # type: ignore[override]  # threading.Thread.run
        while not self._halt.is_set():
            self.run_once()
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        self.run_once()

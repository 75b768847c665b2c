"""Training logs while a run trains: RUN/log.csv always, TensorBoard when asked for and installed.

`aekit train --log tensorboard` adds event files under RUN/tensorboard/ (view them with
`tensorboard --logdir RUN/tensorboard`): the loss of every step, the loss terms a loss reports
(e.g. bpp, KL), and per epoch train/validation loss, learning rate and images/s, then the test
metrics and the reconstruction grid. log.csv has one row per epoch with the same epoch scalars
and is rewritten atomically after every epoch, so it always matches the last checkpoint; on
resume the rows after the checkpoint's epoch are dropped and TensorBoard purges its later steps.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aekit.errors import ConfigError
from aekit.io import atomic_write_text

LOG_KINDS = ("csv", "tensorboard")
CSV_NAME = "log.csv"
TB_DIR = "tensorboard"
_BASE_FIELDS = ["epoch", "step", "train_loss", "val_loss", "lr", "seconds", "images_per_second"]


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class RunLogger:
    """Receives `step(step, loss, logs)` after each optimizer step and `epoch(row)` after each
    epoch (the callbacks of `aekit.train.loop.fit`)."""

    def __init__(self, run_dir: str | Path, kinds: Sequence[str] = ("csv",), batch_size: int = 0,
                 note: Callable[[str], None] | None = None) -> None:
        unknown = sorted(set(kinds) - set(LOG_KINDS))
        if unknown:
            raise ConfigError(f"--log {unknown[0]!r}: use {' or '.join(LOG_KINDS)}")
        self.run_dir = Path(run_dir)
        self.batch_size = batch_size
        self.rows = self._read_rows()
        self._pending = False  # rows added but not yet written (`epoch(..., write=False)`)
        self.step_no = 0
        self._sums: dict[str, float] = {}
        self._count = 0
        self.writer = None
        self.tensorboard = "tensorboard" in kinds and tensorboard_available()
        if "tensorboard" in kinds and not self.tensorboard and note is not None:
            note("--log tensorboard: the tensorboard package is not installed "
                 "(pip install tensorboard); logging to log.csv only")

    def _writer(self, first_step: int):
        """The SummaryWriter, opened at the first step this process trains: purge_step drops the
        events an interrupted run wrote after its last checkpoint."""
        if self.writer is None and self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / TB_DIR), purge_step=first_step)
        return self.writer

    def _read_rows(self) -> list[dict[str, Any]]:
        path = self.run_dir / CSV_NAME
        if not path.is_file():
            return []
        try:
            return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))
        except (OSError, UnicodeDecodeError, csv.Error):
            return []  # a damaged log is rebuilt from this run's epochs on

    def step(self, step: int, loss: float, logs: dict[str, Any]) -> None:
        self.step_no = step
        self._count += 1
        for key, value in {"loss": loss, **logs}.items():
            if isinstance(value, (int, float)):
                self._sums[key] = self._sums.get(key, 0.0) + float(value)
        writer = self._writer(step)
        if writer is not None:
            writer.add_scalar("train/step_loss", loss, step)
            for key, value in logs.items():
                if isinstance(value, (int, float)):
                    writer.add_scalar(f"train/{key}", float(value), step)

    def state_dict(self) -> dict[str, Any]:
        """The sums of the epoch in progress (JSON), kept by a mid-epoch checkpoint so that a
        resumed epoch's row averages over all of its steps."""
        return {"sums": dict(self._sums), "count": self._count, "step": self.step_no}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sums = state.get("sums")
        if isinstance(sums, dict):
            self._sums = {str(k): float(v) for k, v in sums.items()
                          if isinstance(v, int | float) and not isinstance(v, bool)}
        count, step = state.get("count"), state.get("step")
        self._count = count if isinstance(count, int) and count >= 0 else 0
        self.step_no = step if isinstance(step, int) and step >= 0 else self.step_no

    def epoch(self, row: dict[str, Any], write: bool = True) -> None:
        """Add the epoch's row; `write`: rewrite log.csv now (a run of many short epochs writes
        it with its checkpoints, every few epochs: `close` writes the rows still pending)."""
        seconds = float(row.get("seconds") or 0.0)
        images = self._count * self.batch_size
        out = {"epoch": row["epoch"], "step": self.step_no, "train_loss": row["train_loss"],
               "val_loss": row.get("val_loss"), "lr": row.get("lr"), "seconds": seconds,
               "images_per_second": round(images / seconds, 1) if seconds > 0 else None}
        # Mean over the epoch of each extra term the loss reported (bpp, kl_nats, ...).
        out.update({k: v / self._count for k, v in self._sums.items()
                    if k != "loss" and self._count})
        self._sums, self._count = {}, 0
        self.rows = [r for r in self.rows if int(r.get("epoch") or 0) < int(row["epoch"])]
        self.rows.append(out)
        self._pending = not write
        if write:
            self._write_csv()
        if self.writer is not None:
            for key in ("train_loss", "val_loss", "lr", "images_per_second"):
                if out.get(key) is not None:
                    tag = {"train_loss": "loss/train", "val_loss": "loss/validation"}.get(key, key)
                    self.writer.add_scalar(tag, float(out[key]), self.step_no)
            self.writer.flush()

    def _write_csv(self) -> None:
        fields = list(_BASE_FIELDS)
        for r in self.rows:
            fields += [k for k in r if k not in fields]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
        atomic_write_text(self.run_dir / CSV_NAME, buf.getvalue())

    def finish(self, metrics: dict[str, Any]) -> None:
        """Test metrics (and the reconstruction grid) at the end of training."""
        if self.writer is None:
            return
        for key, value in (metrics.get("test") or {}).items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"test/{key}", float(value), self.step_no)
        grid = self.run_dir / "reconstructions.png"
        if grid.is_file():
            import numpy as np
            from PIL import Image

            with Image.open(grid) as im:
                self.writer.add_image("reconstructions", np.asarray(im.convert("RGB")),
                                      self.step_no, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self._pending:  # e.g. a stop between two strided checkpoints, which saved its epoch
            self._write_csv()
            self._pending = False
        if self.writer is not None:
            self.writer.close()
            self.writer = None

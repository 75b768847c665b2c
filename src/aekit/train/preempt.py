"""Stopping a training run cleanly on SIGTERM or SIGINT (preemption, Ctrl-C).

A cluster scheduler that preempts a job sends SIGTERM and, after a grace period, SIGKILL; Ctrl-C
sends SIGINT. While `StopSignals` is installed (by `aekit train`, around the training loop) either
signal only sets a flag. The loop (`aekit.train.loop.fit`) looks at the flag at every step
boundary: it then writes a checkpoint of the exact position (mid-epoch when need be) and raises
`Preempted`; the command line prints one line saying how to resume and exits with
`EXIT_PREEMPTED` (75, EX_TEMPFAIL of sysexits.h: "temporary failure, try again", which schedulers
can treat as "requeue"). The time from the signal to the exit is at most one optimizer step plus
one checkpoint write.

A second signal while the first is handled changes nothing: the checkpoint being written is
finished (writes are atomic anyway, see aekit.io). SIGKILL still stops at once and keeps the last
checkpoint. Under torchrun every rank takes the maximum of all ranks' flags at each step boundary
(one all-reduce of one integer), so all ranks stop after the same step even when the signal
reaches them at different moments.

Handlers are only installed from the main thread, never replace a signal the parent process
ignores (`nohup`, a background job's SIGINT), and the previous handlers come back when training
ends. Python code calling `fit` without a `StopSignals` (the `aekit.Autoencoder` API) keeps the
default behaviour: Ctrl-C raises KeyboardInterrupt.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

# sysexits.h EX_TEMPFAIL: distinct from 0 (done), 1 (some inputs skipped) and 2 (bad input).
EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """A stop flag that SIGTERM and SIGINT set while installed (a context manager)."""

    def __init__(self) -> None:
        self.signum = 0  # the first signal received; 0 = none
        self.received = 0  # how many arrived (a second one changes nothing)
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        """Catch SIGTERM and SIGINT from now on (a no-op outside the main thread, and for a
        signal the process inherited as ignored)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in SIGNALS:
            if sig in self._previous:
                continue
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue
            self._previous[sig] = previous
            signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before `install`."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if not self.signum:
            self.signum = signum

    def poll(self, all_ranks: bool = False) -> int:
        """The signal to stop for, or 0. With `all_ranks` (under a process group; every rank
        must call it at the same step) the largest of all ranks' flags, so they agree."""
        if not all_ranks:
            return self.signum
        from aekit.train import distributed

        return distributed.max_over_ranks(self.signum)

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()


class Preempted(KeyboardInterrupt):
    """Training stopped on a signal after writing a checkpoint to resume from.

    A KeyboardInterrupt, so code that handles Ctrl-C handles it too; `aekit train` turns it into
    one line on stderr and exit code EXIT_PREEMPTED. `report` is False on the torchrun ranks other
    than 0 (rank 0 speaks for all of them)."""

    def __init__(self, signum: int, epoch: int, epochs: int, step: int, run_dir,
                 saved: bool, at_epoch_end: bool, report: bool = True,
                 distributed: bool = False) -> None:
        self.signum, self.epoch, self.epochs, self.step = signum, epoch, epochs, step
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.saved, self.at_epoch_end, self.report = saved, at_epoch_end, report
        self.distributed = distributed
        super().__init__(self.message())

    def message(self) -> str:
        where = (f"after epoch {self.epoch}/{self.epochs}" if self.at_epoch_end
                 else f"in epoch {self.epoch}/{self.epochs}") + f", step {self.step}"
        text = f"stopped by {signal_name(self.signum)} {where}"
        if not self.saved or self.run_dir is None:
            return text + "; no run folder, nothing saved"
        resume = f"aekit train --resume {self.run_dir}"
        if self.distributed:
            resume += " (under the same torchrun launch)"
        return f"{text}; checkpoint saved in {self.run_dir}; resume with: {resume}"

    def __str__(self) -> str:
        return self.message()

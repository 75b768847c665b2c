"""Run a parser on hostile input and check the only way it may fail: only AekitError may escape,
never another exception, a hang (> 5 s) or a huge allocation from a small input.

Bounds are enforced, not just measured: each case runs under an alarm (a hang becomes a failure)
and the whole fuzz run under an address-space limit (RLIMIT_AS) a little above the memory already
in use, so an allocation sized by a lying header fails as MemoryError (a failure here) instead of
succeeding lazily. Peak resident growth per case is measured through /proc/self/clear_refs.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aekit.errors import AekitError

CASE_SECONDS = 5.0
HEADROOM = 384 << 20  # address space a case may add; legitimate work on <= 64 KiB inputs needs less


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that parsers' `except Exception` cannot eat it."""


@dataclass
class Tally:
    """What a fuzz run saw, for the assertion message and docs/RELIABILITY.md."""

    target: str
    cases: int = 0
    rejected: int = 0  # cases that raised AekitError (the rest parsed)
    slowest_s: float = 0.0
    peak_rss_growth: int = 0  # bytes, the largest over all cases
    largest_input: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # AekitError subclass -> count

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def _status(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


@contextlib.contextmanager
def memory_cap(headroom: int = HEADROOM) -> Iterator[None]:
    """Cap this process's address space at its current size + headroom while fuzzing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = _status("VmSize")
    if not vm:  # no /proc (not Linux): run without the cap
        yield
        return
    cap = vm + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _on_alarm(signum, frame):
    raise Hang


def call(tally: Tally, fn: Callable[[], object], size: int) -> object | None:
    """Run one case; returns fn's result, or None when it raised AekitError. Anything else
    (another exception, a hang, MemoryError from the cap) propagates to fail the test."""
    tally.cases += 1
    tally.largest_input = max(tally.largest_input, size)
    peak_ok = _reset_peak()
    rss0 = _status("VmRSS")
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS * 2)
    t0 = time.process_time()  # CPU time: the machine is shared, wall time is noisy
    try:
        return fn()
    except AekitError as e:
        tally.rejected += 1
        tally.errors[type(e).__name__] = tally.errors.get(type(e).__name__, 0) + 1
        assert str(e).strip(), "an AekitError with no message"
        return None
    except Hang:
        raise AssertionError(f"{tally.target}: a {size}-byte input ran over "
                             f"{CASE_SECONDS * 2:.0f} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        dt = time.process_time() - t0
        tally.slowest_s = max(tally.slowest_s, dt)
        if peak_ok:
            tally.peak_rss_growth = max(tally.peak_rss_growth, _status("VmHWM") - rss0)
        assert dt < CASE_SECONDS, f"{tally.target}: a {size}-byte input took {dt:.1f} s of CPU"


def n_cases(default_fast: int, default_slow: int, slow: bool) -> int:
    """Cases per target: AEKIT_FUZZ_CASES overrides the slow count (CI counts stay small)."""
    if slow:
        return int(os.environ.get("AEKIT_FUZZ_CASES", default_slow))
    return default_fast

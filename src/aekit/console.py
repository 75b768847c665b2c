"""What the command line writes to stderr, decided in one place.

Three levels, set once per command from `-q/--quiet` and `-v/--verbose` (`args.add_verbosity`):

    quiet     warnings, errors and the result only (results go to stdout, not through here)
    normal    also one line per phase of long work and one per training epoch (the default)
    verbose   also per-phase timings and other details

A progress bar is drawn only when stderr is a terminal (or a Jupyter kernel, where tqdm draws a
widget): a log file or a pipe gets the plain lines, never carriage returns. Warnings are always
written. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

QUIET, NORMAL, VERBOSE = 0, 1, 2

_level = NORMAL


def set_level(level: int) -> int:
    """Set the level for what follows; returns the previous one (to restore it)."""
    global _level
    previous, _level = _level, max(QUIET, min(VERBOSE, int(level)))
    return previous


def level_from(quiet: bool = False, verbose: int = 0) -> int:
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def level() -> int:
    return _level


def is_terminal(stream=None) -> bool:
    """Whether `stream` (default: the current stderr) shows a live display: a terminal, or a
    Jupyter kernel's output stream."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
    return type(stream).__module__.startswith("ipykernel")


def progress_bars() -> bool:
    """Draw progress bars? Only at the normal level or above, and only on a terminal."""
    return _level >= NORMAL and is_terminal()


def _write(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def info(message: str) -> None:
    """A progress line (a phase starting, an epoch done); silenced by --quiet."""
    if _level >= NORMAL:
        _write(message)


def detail(message: str) -> None:
    """A line shown with -v/--verbose only (timings, settings)."""
    if _level >= VERBOSE:
        _write(message)


def warn(message: str) -> None:
    """A warning: shown at every level, --quiet included."""
    _write(f"warning: {message}")


@contextlib.contextmanager
def phase(what: str, log=None, after: float = 0.0) -> Iterator[None]:
    """Announce a long step of non-training work (`what ...`, through `log` when given, else
    `info`), and with -v how long it took.

    `after` > 0 (a step that checks the user's input, such as loading data): the line appears
    only once the step has run that many seconds, so a bad input that fails at once still ends
    with one line, the error."""
    say = info if log is None else log
    timer = None
    if after > 0:
        timer = threading.Timer(after, say, (f"{what} ...",))
        timer.daemon = True
        timer.start()
    else:
        say(f"{what} ...")
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
    detail(f"  {what}: {time.perf_counter() - t0:.2f}s")

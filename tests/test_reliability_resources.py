"""Resource bounds: a batch of 10,000 image files goes through `aekit reconstruct` / `denoise` /
`anomaly score` in bounded memory (read, processed and written chunk by chunk). Peak RSS of a
10,000-image run is compared with a 1,000-image run of the same command: holding all images would
add ~110 MB (9,000 x 3x32x32 float32 inputs, as much again for outputs); streaming adds only the
per-file bookkeeping (paths, output names, CSV rows).

Both of those runs have the fast inference path off (AEKIT_FAST_PATH=0): it chooses its
implementation only once a job has spent about a second eagerly, so the 10,000-image job would
make a one-time choice that the 1,000-image job does not, and the comparison would measure that
choice instead of the streaming. Its one-time cost is bounded separately: the 10,000-image run
with the fast path on against the same run with it off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main
from tests.reliability.killresume import child_env
from tests.reliability.record import record
from tests.reliability.seeds import cli_commands as _commands
from tests.reliability.seeds import untrained_run as _run

SIZE = 32
GROWTH_LIMIT_MB = 40
FAST_PATH_LIMIT_MB = 100  # the fast path's one-time cost (measured: ~20-40 MB; ~160 when it
# also exported every model part to ONNX Runtime at large batches)

# The child's own peak: VmHWM belongs to the process's address space, which exec starts afresh.
# ru_maxrss is NOT usable here: Linux carries it over from the forking parent through exec, so a
# child of a pytest process holding 485 MB reported 485 MB for 1,000 and 10,000 images alike.
_MEASURE = ("import re, resource, sys\n"
            "from aekit.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "try:\n"
            "    status = open('/proc/self/status').read()\n"
            "    kb = int(re.search(r'^VmHWM:\\s+(\\d+) kB', status, re.M).group(1))\n"
            "except (OSError, AttributeError):\n"
            "    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print('PEAK_RSS_KB', kb, file=sys.stderr)\n"
            "sys.exit(code)\n")


def _images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    tiles = rng.integers(0, 256, (64, SIZE, SIZE, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(tiles[i % 64]).save(folder / f"{i:05d}.png", compress_level=1)
    return folder


def _peak_rss_mb(argv: list[str], fast_path: bool) -> float:
    env = {**child_env(), "AEKIT_FAST_PATH": "1" if fast_path else "0"}
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True,
                          text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_RSS_KB"))
    return int(line.split()[1]) / 1024


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("images")
    return {n: _images(root / f"in{n}", n) for n in (1_000, 10_000)}


def _detector(folder: Path) -> Path:
    """A tiny anomaly detector (one model, one epoch) for 3x32x32 images."""
    normal = _images(folder / "normal", 64)
    run = folder / "detector"
    code = main(["anomaly", "fit", "--normal-dir", str(normal), "--epochs", "1", "--models", "1",
                 "--latent-dim", "4", "--batch-size", "32", "--threads", "1", "--quiet",
                 "--out", str(run)])
    assert code == 0
    return run


def _argv(command: str, run: Path, src: Path, out: Path) -> list[str]:
    if command == "anomaly":
        return ["anomaly", "score", str(run), str(src), "-o", str(out / "scores.csv"),
                "--threads", "1"]
    return [command, str(run), str(src), "-o", str(out), "--threads", "1"]


def _outputs(command: str, out: Path) -> int:
    if command == "anomaly":
        return len((out / "scores.csv").read_text().splitlines()) - 1
    return len(list(out.glob("*.png")))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["reconstruct", "denoise", "anomaly"])
def test_ten_thousand_images_in_bounded_memory(tmp_path, folders, command):
    if command not in _commands():
        pytest.skip(f"`aekit {command}` is not in this build")
    if command == "anomaly":
        run = _detector(tmp_path)
    else:
        run = _run(tmp_path / "run", "dense", size=SIZE, in_channels=3,
                   corrupt="gaussian:0.5" if command == "denoise" else "")
    peaks = {}
    for n, fast_path in ((1_000, False), (10_000, False), (10_000, True)):
        out = tmp_path / f"out{n}-{int(fast_path)}"
        out.mkdir()
        peaks[f"{n}{' fast path' if fast_path else ''}"] = _peak_rss_mb(
            _argv(command, run, folders[n], out), fast_path)
        assert _outputs(command, out) == n
    growth = peaks["10000"] - peaks["1000"]
    fast_cost = peaks["10000 fast path"] - peaks["10000"]
    record(f"resources:{command}", images=[1_000, 10_000], peak_rss_mb=peaks,
           growth_mb=round(growth, 1), limit_mb=GROWTH_LIMIT_MB,
           fast_path_mb=round(fast_cost, 1), fast_path_limit_mb=FAST_PATH_LIMIT_MB)
    assert growth < GROWTH_LIMIT_MB, f"peak RSS grew {growth:.0f} MB from 1,000 to 10,000 images"
    assert fast_cost < FAST_PATH_LIMIT_MB, f"the fast path added {fast_cost:.0f} MB"

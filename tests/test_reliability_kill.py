"""Kill and resume: `aekit train` SIGKILLed at random moments, then resumed, ends bit-identical to
an uninterrupted run, and the run folder never shows a partial file (see docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from random import Random

import pytest

from aekit.cli import main
from tests.reliability.killresume import (
    TRIGGERS,
    TrainSpec,
    child_env,
    freeze_source,
    make_npz,
    run_trial,
    weights_differ,
)
from tests.reliability.record import record

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")
SEED = int(os.environ.get("AEKIT_RELIABILITY_SEED", "0"))


def _history(run):
    rows = json.loads((run / "metrics.json").read_text())["history"]
    return [(r["epoch"], r["train_loss"], r["val_loss"]) for r in rows]


def _log_epochs(run):
    path = run / "log.csv"
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:]] \
        if path.exists() else None


def _check(trial, ref, run) -> None:
    assert not trial.problems, trial.problems
    assert not weights_differ(ref, run), "final weights differ from the uninterrupted run"
    assert _history(run) == _history(ref)
    assert _log_epochs(run) == _log_epochs(ref), "log.csv lost or repeated an epoch"
    assert not trial.leftover_temps, f"temp files left behind: {trial.leftover_temps}"


def test_kill_and_resume_two_trials(tmp_path):
    """CI subset: one kill right after a random epoch's checkpoint, one while finishing."""
    freeze_source(tmp_path)
    spec = TrainSpec(make_npz(tmp_path / "d.npz"), epochs=4)
    ref = tmp_path / "ref"
    assert main(spec.argv(ref)) == 0
    rng = Random(SEED)
    for i, trigger in enumerate(["epoch", "finish"]):
        trial = run_trial(spec, tmp_path / f"t{i}", rng, [trigger], inprocess_resume=True,
                          expected_s=10.0)
        assert trial.kills[0].killed, f"{trigger}: the run finished before the kill"
        _check(trial, ref, tmp_path / f"t{i}" / "run")
    # Killed inside epoch 1: config.json is there, no checkpoint yet. Resume must still work.
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(ref / "config.json", early / "config.json")
    # ... and a kill inside atomic writes left their temp files: the resume removes them.
    (early / "checkpoint").mkdir()
    for stale in (early / ".config.json.k1ll3d.tmp", early / "checkpoint/.state.safetensors.x.tmp"):
        stale.write_bytes(b"half a file")
    assert main(["train", "--resume", str(early), "--quiet"]) == 0
    assert not weights_differ(ref, early)
    assert not list(early.rglob("*.tmp"))


@pytest.mark.slow
def test_kill_and_resume_many_trials(tmp_path):
    """>= 10 trials of 1-3 SIGKILLs each at random moments, every resume in a fresh process."""
    freeze_source(tmp_path)
    spec = TrainSpec(make_npz(tmp_path / "d.npz"), epochs=8)
    ref = tmp_path / "ref"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aekit", *spec.argv(ref)], check=True,
                   env=child_env(), capture_output=True, timeout=600)
    expected_s = time.perf_counter() - t0
    rng = Random(SEED)
    n_trials = int(os.environ.get("AEKIT_KILL_TRIALS", "12"))
    summary = []
    for i in range(n_trials):
        triggers = [TRIGGERS[i % len(TRIGGERS)]]
        triggers += [rng.choice(TRIGGERS) for _ in range(rng.randint(0, 2))]
        trial = run_trial(spec, tmp_path / f"t{i}", rng, triggers, inprocess_resume=False,
                          expected_s=expected_s)
        summary.append({"kills": [asdict(k) for k in trial.kills], "checks": trial.file_checks,
                        "temps_seen": sorted(trial.temps_seen), "problems": trial.problems})
        _check(trial, ref, tmp_path / f"t{i}" / "run")
    kills = [k for s in summary for k in s["kills"] if k["killed"]]
    record("kill_and_resume", trials=n_trials, kills=len(kills),
           file_versions_checked=sum(s["checks"] for s in summary), reference_s=expected_s,
           by_trigger={t: sum(k["trigger"] == t for k in kills) for t in TRIGGERS},
           detail=summary)
    assert len(kills) >= n_trials

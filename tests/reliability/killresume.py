"""Kill-and-resume harness: run `python -m aekit train` as a subprocess, SIGKILL it at a random
moment, resume with `--resume`, and compare the final weights with an uninterrupted run.

A trigger picks the moment: `time` (uniform over the whole run, startup included), `config`
(just after config.json appears, i.e. inside the first epoch), `epoch` (just after a random
epoch's checkpoint), `finish` (while the final weights, metrics and pictures are written).
A FolderWatcher validates every file version the run folder ever shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import numpy as np
import torch
from safetensors.torch import load_file

from tests.conftest import make_blobs
from tests.reliability.runfolder import FolderWatcher, check_folder

TRIGGERS = ("time", "config", "epoch", "finish")


def make_npz(path: Path, n: int = 288, seed: int = 0) -> str:
    """A tiny learnable dataset (12x12 blobs); 32 test images."""
    x = make_blobs(n, seed=seed)
    np.savez(path, x_train=x[:-32], x_test=x[-32:])
    return f"npz:{path}"


@dataclass
class TrainSpec:
    dataset: str
    model: str = "conv"
    latent_dim: int = 8
    epochs: int = 6
    batch_size: int = 32
    seed: int = 0

    def argv(self, out: Path) -> list[str]:
        # fp32 and one thread: the only settings under which CPU results are bit-reproducible.
        return ["train", "--model", self.model, "--dataset", self.dataset, "--latent-dim",
                str(self.latent_dim), "--epochs", str(self.epochs), "--batch-size",
                str(self.batch_size), "--seed", str(self.seed), "--precision", "fp32",
                "--threads", "1", "--quiet", "--out", str(out)]


def resume_argv(out: Path) -> list[str]:
    return ["train", "--resume", str(out), "--threads", "1", "--quiet"]


def next_argv(spec: TrainSpec, run: Path) -> list[str]:
    """What a user does after a crash: resume if the run exists, else start it again."""
    return resume_argv(run) if (run / "config.json").exists() else spec.argv(run)


_frozen_src: Path | None = None


def freeze_source(tmp: Path) -> Path:
    """Copy the aekit package and run every child process from the copy: the working tree is
    shared with other contributors, and a model file edited between the reference run and a
    resume would make the weights differ for a reason that has nothing to do with the kill."""
    import shutil

    import aekit

    global _frozen_src
    _frozen_src = tmp / "frozen-src"
    shutil.copytree(Path(aekit.__file__).parent, _frozen_src / "aekit",
                    ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return _frozen_src


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AEKIT_THREADS"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    if _frozen_src is not None:  # ahead of the editable install's path entry
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_frozen_src),
                                                          env.get("PYTHONPATH", "")]))
    return env


def start(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "aekit", *argv], stdout=f,
                                stderr=subprocess.STDOUT, env=child_env())


def run_cli(argv: list[str], log: Path, inprocess: bool, timeout: float = 300) -> int:
    if inprocess:
        from aekit.cli import main

        return main(argv)
    proc = start(argv, log)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stat_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@dataclass
class Kill:
    trigger: str
    after_s: float  # seconds after the process started
    killed: bool  # False when the process finished before the chosen moment
    checkpoint_epoch: int  # the newest checkpoint on disk after the kill
    files_after: int  # complete files on disk after the kill
    temps_after: list[str]


def kill_at_trigger(proc: subprocess.Popen, watcher: FolderWatcher, run: Path, trigger: str,
                    rng: Random, spec: TrainSpec, expected_s: float) -> Kill:
    """Wait for the trigger's moment, then SIGKILL; returns what happened."""
    t0 = time.perf_counter()
    deadline = t0 + 600
    # Triggers count from this process's own progress: a resumed run starts past some of them.
    done = watcher.checkpoint_epoch
    weights0 = _stat_key(run / "model.safetensors")
    if trigger == "config" and (run / "config.json").exists():
        trigger = "time"
    if trigger == "epoch" and done >= spec.epochs:
        trigger = "finish"
    target_epoch = rng.randint(done + 1, max(done + 1, spec.epochs - 1))
    fired_at = time.perf_counter() + rng.uniform(0, expected_s) if trigger == "time" else None
    while proc.poll() is None and time.perf_counter() < deadline:
        now = time.perf_counter()
        if fired_at is None:
            if trigger == "config" and (run / "config.json").exists():
                fired_at = now + rng.uniform(0, 0.05)
            elif trigger == "epoch" and watcher.checkpoint_epoch >= target_epoch:
                fired_at = now + rng.uniform(0, 0.1)
            elif trigger == "finish" and _stat_key(run / "model.safetensors") != weights0:
                fired_at = now + rng.uniform(0, 1.5)
        if fired_at is not None and now >= fired_at:
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    snap = check_folder(run)
    return Kill(trigger, round(time.perf_counter() - t0, 3), killed, snap.checkpoint_epoch,
                snap.files, snap.temps)


@dataclass
class Trial:
    kills: list[Kill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    file_checks: int = 0
    temps_seen: set[str] = field(default_factory=set)
    leftover_temps: list[str] = field(default_factory=list)
    final_code: int | None = None


def run_trial(spec: TrainSpec, work: Path, rng: Random, triggers: list[str],
              inprocess_resume: bool, expected_s: float) -> Trial:
    """Kill once per trigger, then let a final (re)start run to completion."""
    run, log = work / "run", work / "log.txt"
    work.mkdir(parents=True, exist_ok=True)
    trial = Trial()
    watcher = FolderWatcher(run)
    watcher.start()
    try:
        for trigger in triggers:
            proc = start(next_argv(spec, run), log)
            k = kill_at_trigger(proc, watcher, run, trigger, rng, spec, expected_s)
            trial.kills.append(k)
            if not k.killed:
                if proc.returncode != 0:
                    trial.problems.append(f"unkilled run exited {proc.returncode}")
                break
            trial.problems += check_folder(run).problems
        if not trial.kills or trial.kills[-1].killed:
            trial.final_code = run_cli(next_argv(spec, run), log, inprocess_resume)
        else:
            trial.final_code = 0
    finally:
        watcher.stop()
    final = check_folder(run)
    trial.problems += watcher.problems + final.problems
    trial.file_checks = watcher.checks
    trial.temps_seen = watcher.temps_seen
    trial.leftover_temps = final.temps
    if trial.final_code != 0:
        trial.problems.append(f"final run exited {trial.final_code}: {log.read_text()[-800:]}")
    return trial


def weights_differ(run_a: Path, run_b: Path) -> list[str]:
    """Names of tensors that are not bit-identical between two runs' model.safetensors."""
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    if a.keys() != b.keys():
        return sorted(set(a) ^ set(b))
    return [k for k in a if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]

"""Preemption: `aekit train` stopped by SIGTERM or SIGINT writes a checkpoint at the next step
boundary, prints one line saying how to resume and exits 75; `--resume` then ends bit-identical to
an uninterrupted run. Mid-epoch checkpoints (`--checkpoint-every`) change no result. Under torchrun
every rank stops after the same step (see docs/RELIABILITY.md, "Preemption")."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random

import pytest
import torch
from PIL import Image

from aekit.cli import main
from aekit.config import ModelConfig, TrainConfig
from aekit.core.training import build_corruption
from aekit.data.stream import StreamingImages, iter_batches
from aekit.errors import ConfigError, RunError
from aekit.models import build_model
from aekit.train import distributed
from aekit.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from aekit.train.logging import RunLogger
from aekit.train.loop import fit
from aekit.train.preempt import EXIT_PREEMPTED, Preempted, StopSignals
from tests.conftest import make_blobs
from tests.reliability.killresume import (
    TrainSpec,
    child_env,
    freeze_source,
    make_npz,
    resume_argv,
    weights_differ,
)
from tests.reliability.record import record
from tests.reliability.runfolder import FolderWatcher, check_folder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
SEED = int(os.environ.get("AEKIT_RELIABILITY_SEED", "0"))
LINE = re.compile(r"aekit: stopped by (SIGTERM|SIGINT) (in|after) epoch (\d+)/(\d+), step (\d+); "
                  r"checkpoint saved in (\S+); resume with: aekit train --resume (\S+)"
                  r"( \(under the same torchrun launch\))?")
# log.csv columns that measure time, not training
TIMING = {"seconds", "images_per_second"}


def test_exit_code_is_distinct_and_documented():
    assert EXIT_PREEMPTED == 75 and EXIT_PREEMPTED not in (0, 1, 2, 130)
    for doc in ("README.md", "docs/RELIABILITY.md"):
        text = (Path(__file__).resolve().parents[1] / doc).read_text()
        assert "75" in text and "--checkpoint-every" in text, doc


# --- the run folder's content, compared with an uninterrupted run --------------------------------


def _history(run: Path) -> list[tuple]:
    rows = json.loads((run / "metrics.json").read_text())["history"]
    return [(r["epoch"], r["train_loss"], r["val_loss"], r["lr"]) for r in rows]


def _log_rows(run: Path) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO((run / "log.csv").read_text())))
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _same_run(ref: Path, run: Path) -> None:
    assert not weights_differ(ref, run), "final weights differ from the uninterrupted run"
    assert _history(run) == _history(ref)
    assert _log_rows(run) == _log_rows(ref), "log.csv differs (timing columns aside)"
    metrics = [json.loads((r / "metrics.json").read_text()) for r in (ref, run)]
    for key in ("best_epoch", "stopped_early", "warnings", "test", "baselines"):
        assert metrics[0][key] == metrics[1][key], key


# --- subprocess trials: a real `python -m aekit train` stopped by a signal -----------------------


@dataclass
class StopTrial:
    signal: str
    delay_s: float  # after the first epoch's log row appeared
    code: int | None = None
    lines: list[str] = field(default_factory=list)  # the stop lines on stderr
    stop_s: float = 0.0  # signal -> process exit
    checkpoint_s: float | None = None  # signal -> checkpoint written (None: not rewritten)
    epoch: int = 0  # epochs done in the checkpoint
    position: int = 0  # steps done in the next epoch (0: an epoch-end checkpoint)
    step: int = 0
    second_signal: bool = False
    late: int = 0  # earlier attempts whose signal came after training had ended
    problems: list[str] = field(default_factory=list)


def _default_signals() -> None:
    """In the child: the signals at their defaults, whatever the test runner ignores (a background
    job inherits SIGINT ignored, and aekit leaves an ignored signal alone)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _checkpoint_meta(run: Path) -> tuple[dict, float]:
    path = run / "checkpoint" / CHECKPOINT_NAME
    return load_checkpoint(run)["meta"], path.stat().st_mtime


def stop_trial(spec: Spec, work: Path, sig: int, rng: Random, window_s: float,
               second_signal: bool = False) -> StopTrial:
    """Start `aekit train`, wait for its first epoch, signal it `0..window_s` later; record what
    happened (the caller resumes and compares)."""
    run = work / "run"
    work.mkdir(parents=True, exist_ok=True)
    trial = StopTrial(signal.Signals(sig).name, round(rng.uniform(0, window_s), 3),
                      second_signal=second_signal)
    watcher = FolderWatcher(run)
    watcher.start()
    with open(work / "stdout.txt", "wb") as out, open(work / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "aekit", *spec.argv(run)], stdout=out,
                                stderr=err, env=child_env(), preexec_fn=_default_signals)
    try:
        deadline = time.perf_counter() + 300
        while not (run / "log.csv").exists() and proc.poll() is None:
            assert time.perf_counter() < deadline, "the run never finished an epoch"
            time.sleep(0.002)
        time.sleep(trial.delay_s)
        sent, t0 = time.time(), time.perf_counter()
        proc.send_signal(sig)
        if second_signal:  # while the checkpoint is being written, most likely
            time.sleep(0.002)
            proc.send_signal(sig)
        trial.code = proc.wait(timeout=120)
        trial.stop_s = round(time.perf_counter() - t0, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watcher.stop()
    stderr = (work / "stderr.txt").read_text()
    trial.lines = [s for s in stderr.splitlines() if s.startswith("aekit: stopped")]
    if trial.code != EXIT_PREEMPTED and not (run / "checkpoint" / CHECKPOINT_NAME).exists():
        trial.problems.append(f"exit {trial.code} without a checkpoint: {stderr[-1500:]}")
        return trial
    meta, mtime = _checkpoint_meta(run)
    trial.epoch, trial.position, trial.step = meta["epoch"], meta.get("position", 0), meta["step"]
    trial.checkpoint_s = round(mtime - sent, 3) if mtime >= sent else None
    snap = check_folder(run)
    trial.problems = watcher.problems + snap.problems
    if snap.temps:
        trial.problems.append(f"temp files left: {snap.temps}")
    if (run / ".lock").exists():
        trial.problems.append("the run lock was not released")
    if trial.code == EXIT_PREEMPTED:
        if len(trial.lines) != 1:
            trial.problems.append(f"expected one stop line on stderr, got: {stderr[-1500:]}")
        else:
            m = LINE.fullmatch(trial.lines[0])
            if not m or m.group(1) != trial.signal or m.group(6) != str(run) or \
                    m.group(7) != str(run):
                trial.problems.append(f"stop line not as documented: {trial.lines[0]}")
            elif int(m.group(5)) != trial.step:
                trial.problems.append(f"stop line says step {m.group(5)}, checkpoint {trial.step}")
        if "Traceback" in stderr:
            trial.problems.append(f"traceback on stderr: {stderr[-1500:]}")
    return trial


@dataclass
class Spec(TrainSpec):
    """The kill tests' run, without the PCA baseline (it only costs time here)."""

    def argv(self, out: Path) -> list[str]:
        return [*super().argv(out), "--baseline", "none"]


def _resume_argv(run: Path) -> list[str]:
    return [*resume_argv(run), "--baseline", "none"]


def _spec(tmp: Path) -> Spec:
    """~720 12x12 training blobs, 5 epochs of ~90 steps (batch 8): about a second of training."""
    return Spec(make_npz(tmp / "d.npz", n=818), epochs=5, batch_size=8)


def _epoch_seconds(run: Path) -> list[float]:
    return [r["seconds"] for r in json.loads((run / "metrics.json").read_text())["history"]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every trial is compared with, and how long its epochs took."""
    tmp = tmp_path_factory.mktemp("preempt")
    freeze_source(tmp)
    spec = _spec(tmp)
    ref = tmp / "ref"
    assert main(spec.argv(ref)) == 0
    return spec, ref, _epoch_seconds(ref)


def _landed_after_training(trial: StopTrial, sig: int, epochs: int) -> bool:
    """The child ran faster than the reference and the signal came after its last epoch (during
    the final evaluation, where the default handlers are back, or after the exit)."""
    return trial.code in (-sig, 130, 0) and trial.epoch == epochs and trial.position == 0


def _run_trials(reference, tmp_path, sigs, rng, window_fraction=0.8, second=()):
    """One trial per signal in `sigs`, each resumed in-process and compared with the reference.
    A signal that landed after training is tried again with a quarter of the delay (at most
    twice); `late` counts those."""
    spec, ref, seconds = reference
    # The moment: within the epochs after the first, leaving the last one as a margin (a shared
    # machine may run the child slower than the reference).
    window = window_fraction * sum(seconds[1:-1])
    trials = []
    for i, sig in enumerate(sigs):
        for attempt in range(3):
            work = tmp_path / f"t{i}" / f"a{attempt}"
            trial = stop_trial(spec, work, sig, rng, window / 4 ** attempt,
                               second_signal=i in second)
            if not _landed_after_training(trial, sig, spec.epochs):
                break
            trial.late = attempt + 1
        assert trial.code == EXIT_PREEMPTED, (trial, (work / "stderr.txt").read_text()[-2000:])
        assert not trial.problems, trial.problems
        assert main(_resume_argv(work / "run")) == 0
        _same_run(ref, work / "run")
        assert not check_folder(work / "run").temps
        trials.append(trial)
    return trials


def test_sigterm_at_random_moments_then_resume_is_exact(reference, tmp_path):
    """CI: two SIGTERMs at random moments of training (the second trial sends a second SIGTERM
    2 ms after the first, while the checkpoint is written): exit 75, one line, exact resume."""
    trials = _run_trials(reference, tmp_path, [signal.SIGTERM, signal.SIGTERM], Random(SEED),
                         second={1})
    record("preempt_ci", trials=len(trials), detail=[asdict(t) for t in trials])


def test_sigint_then_resume_is_exact(reference, tmp_path):
    """CI: Ctrl-C (SIGINT) stops training the same way as SIGTERM."""
    (trial,) = _run_trials(reference, tmp_path, [signal.SIGINT], Random(SEED + 1))
    assert trial.signal == "SIGINT"


@pytest.mark.slow
def test_signals_at_many_random_moments(reference, tmp_path):
    """>= 10 trials (SIGTERM and SIGINT alternating, every third with a second signal), each at a
    uniformly random moment of training, each resumed and compared bit for bit."""
    n = int(os.environ.get("AEKIT_PREEMPT_TRIALS", "12"))
    sigs = [signal.SIGTERM if i % 2 == 0 else signal.SIGINT for i in range(n)]
    t0 = time.perf_counter()
    trials = _run_trials(reference, tmp_path, sigs, Random(SEED + 2), window_fraction=1.0,
                         second=set(range(2, n, 3)))
    stops = [t.stop_s for t in trials]
    writes = [t.checkpoint_s for t in trials if t.checkpoint_s is not None]
    record("preempt_many", trials=n, exact=n, mid_epoch=sum(t.position > 0 for t in trials),
           second_signal=sum(t.second_signal for t in trials),
           by_signal={s: sum(t.signal == s for t in trials) for s in ("SIGTERM", "SIGINT")},
           late=sum(t.late for t in trials),
           stop_s_median=statistics.median(stops), stop_s_max=max(stops),
           checkpoint_s_median=statistics.median(writes) if writes else None,
           checkpoint_s_max=max(writes) if writes else None,
           reference_epoch_s=reference[2], seconds=round(time.perf_counter() - t0, 1),
           detail=[asdict(t) for t in trials])
    assert len(trials) >= 10


# --- --checkpoint-every -------------------------------------------------------------------------


def test_checkpoint_every_changes_no_result(reference, tmp_path, monkeypatch):
    """CI: the same run with a checkpoint every 3 steps ends bit-identical (weights, history,
    log.csv), and wrote every mid-epoch checkpoint it was asked for."""
    import aekit.train.loop as loop_mod

    spec, ref, _ = reference
    run = tmp_path / "every3"
    positions = []
    real = loop_mod.save_checkpoint

    def spy(run_dir, model, optimizer, best, meta, rng=None):
        positions.append(meta.get("position", 0))
        real(run_dir, model, optimizer, best, meta, rng)

    monkeypatch.setattr(loop_mod, "save_checkpoint", spy)
    assert main([*spec.argv(run), "--checkpoint-every", "3"]) == 0
    steps = int(_log_rows(ref)[0]["step"])  # per epoch
    total = steps * spec.epochs
    assert sum(p > 0 for p in positions) == sum(1 for s in range(3, total + 1, 3) if s % steps)
    assert positions.count(0) == spec.epochs
    _same_run(ref, run)
    assert json.loads((run / "config.json").read_text())["train"]["checkpoint_every"] == 3


def _tiny_model(name: str = "vae") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(name=name, in_channels=1, height=12, width=12, latent_dim=6))


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _rows(result) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]


def _fit(x, val, cfg, run, stop=None, on_step=None, resume=False, logger=None):
    model = _tiny_model()
    logger = logger or RunLogger(run, ("csv",), cfg.batch_size)

    def steps(step, loss, logs):
        logger.step(step, loss, logs)
        if on_step is not None:
            on_step(step)
    result = fit(model, x, cfg, val_x=val, run_dir=run, resume=resume,
                 corrupt=build_corruption("gaussian:0.3"), progress=False,
                 on_epoch=logger.epoch, on_step=steps, stop=stop, log_state=logger)
    return model, result


def _data():
    return torch.from_numpy(make_blobs(200)), torch.from_numpy(make_blobs(40, seed=1))


@pytest.mark.parametrize("at_step, epoch, at_end, position", [
    (17, 2, False, 5),  # epoch 2, step 5 of 12: a mid-epoch checkpoint
    (12, 1, True, 0),  # the last step of epoch 1: its own checkpoint, then the stop
    (36, 3, True, 0),  # the last step of all: the resume only finishes the run
])
def test_stop_and_resume_in_process(tmp_path, python_sigint, at_step, epoch, at_end, position):
    """CI, in one process: a VAE (draws from torch's global RNG) trained to undo noise with
    mirrored batches (the epoch generator), 3 epochs of 12 steps, gets a real SIGTERM during step
    `at_step`; it stops at that step's end and resumes to the same weights, history, best epoch
    and log.csv as an uninterrupted run."""
    x, val = _data()
    cfg = TrainConfig(dataset="array", epochs=3, batch_size=16, precision="fp32", augment="hflip")
    ref_model, ref = _fit(x, val, cfg, tmp_path / "ref")

    run = tmp_path / "run"

    def signal_at(step):
        if step == at_step:
            os.kill(os.getpid(), signal.SIGTERM)

    with StopSignals() as stop, pytest.raises(Preempted) as info:
        _fit(x, val, cfg, run, stop=stop, on_step=signal_at)
    assert signal.getsignal(signal.SIGTERM) is not stop._handle  # handlers restored
    e = info.value
    assert (e.signum, e.epoch, e.step, e.at_epoch_end, e.saved) == (signal.SIGTERM, epoch,
                                                                    at_step, at_end, True)
    ckpt = load_checkpoint(run)
    assert ckpt["meta"]["step"] == at_step and ckpt["meta"].get("position", 0) == position
    if position:
        assert set(ckpt["rng"]) == {"epoch", "torch"}
        assert ckpt["rng"]["torch"].dtype == torch.uint8
    model, result = _fit(x, val, cfg, run, resume=True)
    assert _equal_state(ref_model, model)
    assert _rows(result) == _rows(ref) and result.best_epoch == ref.best_epoch
    assert result.warnings == ref.warnings
    assert _log_rows(run) == _log_rows(tmp_path / "ref")


def test_many_short_epochs_checkpoint_every_kth_and_stop_exactly_between(tmp_path, python_sigint,
                                                                          monkeypatch):
    """120 epochs of one step (a small folder on the automatic budget): end-of-epoch checkpoints
    every 2nd epoch (budget.epoch_stride), not 120; a SIGTERM at the end of epoch 21 (between
    two of them) still saves that epoch's end, and the resume is exact."""
    import aekit.train.loop as loop

    x, val = _data()
    cfg = TrainConfig(dataset="array", epochs=120, batch_size=200, precision="fp32")
    writes = []
    real_save = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda run_dir, m, o, b, meta, rng: (writes.append(meta["epoch"]),
                                                             real_save(run_dir, m, o, b, meta,
                                                                       rng)))
    ref_model, ref = _fit(x, val, cfg, tmp_path / "ref")
    assert writes == list(range(2, 121, 2))
    writes.clear()

    run = tmp_path / "run"
    with StopSignals() as stop, pytest.raises(Preempted) as info:
        _fit(x, val, cfg, run, stop=stop,
             on_step=lambda step: step == 21 and os.kill(os.getpid(), signal.SIGTERM))
    assert (info.value.epoch, info.value.at_epoch_end) == (21, True)
    assert writes == [*range(2, 21, 2), 21]
    assert load_checkpoint(run)["meta"]["epoch"] == 21
    model, result = _fit(x, val, cfg, run, resume=True)
    assert _equal_state(ref_model, model)
    assert _rows(result) == _rows(ref) and result.best_epoch == ref.best_epoch


def test_a_crash_after_a_mid_epoch_checkpoint_resumes_from_it(tmp_path, monkeypatch):
    """CI: --checkpoint-every 5 and a crash at step 23 (after the checkpoint of step 20): the
    resume continues from step 20 and ends exact; without the RNG states it would not."""
    x, val = _data()
    cfg = TrainConfig(dataset="array", epochs=3, batch_size=16, precision="fp32",
                      checkpoint_every=5)
    ref_model, ref = _fit(x, val, cfg, tmp_path / "ref")
    run = tmp_path / "run"

    def crash_at(step):
        if step == 23:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        _fit(x, val, cfg, run, on_step=crash_at)
    meta = load_checkpoint(run)["meta"]
    assert (meta["epoch"], meta["position"], meta["step"]) == (1, 8, 20)
    shutil.copytree(run / "checkpoint", tmp_path / "run2" / "checkpoint")
    model, result = _fit(x, val, cfg, run, resume=True)
    assert _equal_state(ref_model, model) and _rows(result) == _rows(ref)
    # The RNG states matter: the same resume from another global RNG position diverges.
    import aekit.train.loop as loop_mod

    real = loop_mod.restore_rng_states
    other = torch.Generator().manual_seed(5).get_state()
    monkeypatch.setattr(loop_mod, "restore_rng_states", lambda gen, states, device, where: real(
        gen, {**states, "torch": other}, device, where))
    _, wrong = _fit(x, val, cfg, tmp_path / "run2", resume=True)
    assert _rows(wrong) != _rows(ref)  # (the best epoch's weights may still be epoch 1's)


def test_streamed_folder_stops_and_resumes_mid_epoch(tmp_path, python_sigint):
    """CI: a streamed `folder:` dataset (DataLoader workers) resumes mid-epoch exactly: the
    batches already trained on are skipped, nothing of them is decoded."""
    root = tmp_path / "imgs"
    root.mkdir()
    for i, img in enumerate(make_blobs(80, seed=4)[:, 0]):
        Image.fromarray(img).save(root / f"im{i:03d}.png")
    images = StreamingImages(sorted(root.glob("*.png")), 1, (12, 12))
    cfg = TrainConfig(dataset=f"folder:{root}", epochs=2, batch_size=16, precision="fp32")
    ref_model, ref = _fit(images, None, cfg, tmp_path / "ref")
    run = tmp_path / "run"

    def signal_at(step):
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    with StopSignals() as stop, pytest.raises(Preempted):
        _fit(images, None, cfg, run, stop=stop, on_step=signal_at)
    assert load_checkpoint(run)["meta"]["position"] == 2
    model, result = _fit(images, None, cfg, run, resume=True)
    assert _equal_state(ref_model, model) and _rows(result) == _rows(ref)


def test_iter_batches_skips_what_was_done_without_reading_it(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    root.mkdir()
    for i, img in enumerate(make_blobs(40, seed=4)[:, 0]):
        Image.fromarray(img).save(root / f"im{i:03d}.png")
    images = StreamingImages(sorted(root.glob("*.png")), 1, (12, 12))
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    whole = list(iter_batches(images, order, 8, 5, workers=0))
    decoded = []
    real = StreamingImages.decode
    monkeypatch.setattr(StreamingImages, "decode",
                        lambda self, i: decoded.append(i) or real(self, i))
    rest = list(iter_batches(images, order, 8, 5, workers=0, start=2))
    assert len(rest) == 3 and all(torch.equal(a, b) for a, b in zip(rest, whole[2:], strict=True))
    assert len(decoded) == 24
    in_memory = images.read()
    again = list(iter_batches(in_memory, order, 8, 5, start=2))
    assert all(torch.equal(a, b) for a, b in zip(again, whole[2:], strict=True))


# --- the signal plumbing ------------------------------------------------------------------------


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test (a test runner started as a background job
    inherits SIGINT ignored, and aekit leaves an ignored signal alone)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_handlers_are_restored_and_a_second_signal_changes_nothing(python_sigint):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        assert stop.installed
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert stop.signum == signal.SIGINT and stop.received == 2
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_python_api_keeps_keyboard_interrupt(python_sigint, monkeypatch):
    """`aekit.Autoencoder.fit` installs no handler: Ctrl-C raises KeyboardInterrupt as before."""
    import aekit
    import aekit.train.objective as objective_mod

    def interrupting(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)  # Python's handler raises KeyboardInterrupt here
        raise AssertionError("no KeyboardInterrupt")

    monkeypatch.setattr(objective_mod, "iter_batches", interrupting)
    ae = aekit.Autoencoder(model="dense", latent_dim=4, epochs=1, batch_size=16, random_state=0)
    with pytest.raises(KeyboardInterrupt) as info:
        ae.fit(make_blobs(64))
    assert type(info.value) is KeyboardInterrupt


def test_not_installed_outside_the_main_thread():
    import threading

    box = {}

    def worker():
        box["installed"] = StopSignals().install().installed

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert box == {"installed": False}


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


# --- checkpoint format --------------------------------------------------------------------------


def _stopped_checkpoint(tmp_path) -> Path:
    x, val = _data()
    cfg = TrainConfig(dataset="array", epochs=2, batch_size=16, precision="fp32",
                      checkpoint_every=4)

    def crash(step):
        if step == 5:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        _fit(x, val, cfg, tmp_path / "run", on_step=crash)
    return tmp_path / "run"


def _rewrite(run: Path, meta_update=None, drop=(), replace=None) -> None:
    from aekit.io import parse_safetensors, write_safetensors

    path = run / "checkpoint" / CHECKPOINT_NAME
    tensors, header = parse_safetensors(path.read_bytes())
    meta = json.loads(header["meta"])
    meta.update(meta_update or {})
    for name in drop:
        tensors.pop(name)
    tensors.update(replace or {})
    write_safetensors(path, tensors, {**header, "meta": json.dumps(meta)})


@pytest.mark.parametrize("change", [
    {"drop": ["rng.torch"]},
    {"drop": ["rng.epoch"]},
    {"replace": {"rng.torch": torch.zeros(5056, dtype=torch.int32)}},
    {"replace": {"rng.epoch": torch.zeros(12, dtype=torch.uint8)}},
    {"meta_update": {"running": None}},
    {"meta_update": {"running": "0.5"}},
    {"meta_update": {"position": -1}},
    {"meta_update": {"position": True}},
    {"meta_update": {"position": 1.5}},
    {"meta_update": {"epoch_seconds": "x"}},
    {"meta_update": {"log_state": [1]}},
])
def test_forged_mid_epoch_state_is_a_corrupt_checkpoint(tmp_path, change):
    run = _stopped_checkpoint(tmp_path)
    _rewrite(run, **change)
    with pytest.raises(RunError, match="checkpoint is corrupt"):
        load_checkpoint(run)


def test_a_position_past_the_epoch_is_refused_on_resume(tmp_path):
    run = _stopped_checkpoint(tmp_path)
    _rewrite(run, meta_update={"position": 99})
    x, val = _data()
    cfg = TrainConfig(dataset="array", epochs=2, batch_size=16, precision="fp32")
    with pytest.raises(RunError, match="stopped after step 99 of epoch 1"):
        _fit(x, val, cfg, run, resume=True)


def test_an_old_checkpoint_and_config_without_the_new_keys_still_resume(tmp_path, tiny_npz,
                                                                         monkeypatch):
    """A run folder as an older aekit left it (no `checkpoint_every` in config.json, an epoch-end
    checkpoint without the mid-epoch keys) resumes, and ends as an uninterrupted run."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    args = ["train", "--model", "dense", "--dataset", tiny_npz, "--epochs", "2", "--batch-size",
            "16", "--precision", "fp32", "--quiet", "--out"]
    assert main([*args, str(ref)]) == 0
    real = RunLogger.epoch

    def crash_after_epoch_1(self, row, write=True):
        real(self, row, write)
        raise RuntimeError("killed")

    monkeypatch.setattr(RunLogger, "epoch", crash_after_epoch_1)
    with pytest.raises(RuntimeError, match="killed"):
        main([*args, str(run)])
    monkeypatch.setattr(RunLogger, "epoch", real)
    cfg = json.loads((run / "config.json").read_text())
    del cfg["train"]["checkpoint_every"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert TrainConfig.from_dict(cfg["train"]).checkpoint_every == 0
    meta = load_checkpoint(run)["meta"]
    assert meta["epoch"] == 1
    assert not {"position", "running", "epoch_seconds", "log_state"} & set(meta)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert not weights_differ(ref, run)
    assert _history(run) == _history(ref)


def test_a_full_disk_when_stopping_keeps_the_last_checkpoint(tmp_path, tiny_npz, monkeypatch,
                                                             capsys, python_sigint):
    """SIGTERM in epoch 2 on a full disk: the stop's checkpoint cannot be written, so the exit is
    the full-disk error (2, one line), not 75; epoch 1's checkpoint is intact, no temp file is
    left, and once space is freed the resume ends as an uninterrupted run."""
    import errno

    run, ref = tmp_path / "run", tmp_path / "ref"
    args = ["train", "--model", "dense", "--dataset", tiny_npz, "--epochs", "2", "--batch-size",
            "16", "--precision", "fp32", "--quiet", "--baseline", "none", "--out"]
    assert main([*args, str(ref)]) == 0
    real_step, real_fsync = RunLogger.step, os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    def step(self, step, loss, logs):
        real_step(self, step, loss, logs)
        if step == 7:  # epoch 2 (5 steps an epoch), step 2
            monkeypatch.setattr(os, "fsync", full)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(RunLogger, "step", step)
    capsys.readouterr()
    assert main([*args, str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aekit: error: disk full at ") and len(err.splitlines()) == 1, err
    monkeypatch.setattr(os, "fsync", real_fsync)
    monkeypatch.setattr(RunLogger, "step", real_step)
    meta = load_checkpoint(run)["meta"]
    assert (meta["epoch"], meta.get("position", 0)) == (1, 0)
    assert not list(run.rglob("*.tmp")) and not (run / ".lock").exists()
    assert main(["train", "--resume", str(run), "--quiet", "--baseline", "none"]) == 0
    assert not weights_differ(ref, run) and _history(run) == _history(ref)


def test_checkpoint_every_is_validated():
    with pytest.raises(ConfigError, match="checkpoint_every"):
        TrainConfig(checkpoint_every=-1)


# --- torchrun -----------------------------------------------------------------------------------

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dist_env() -> dict:
    env = {k: v for k, v in child_env().items() if k not in distributed.ENV_KEYS}
    env.update(AEKIT_THREADS="1")
    return env


def _dist_args(data: str, out: Path) -> list[str]:
    return ["train", "--model", "dense", "--dataset", data, "--latent-dim", "8", "--epochs", "3",
            "--batch-size", "16", "--device", "cpu", "--precision", "fp32", "--quiet",
            "--out", str(out)]


def _launch_ranks(argv: list[str], work: Path) -> list[subprocess.Popen]:
    """Two ranks started by hand (the environment torchrun would give them)."""
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {**_dist_env(), "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        with open(work / f"rank{rank}.err", "wb") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "aekit", *argv], env=env,
                                          stdout=subprocess.DEVNULL, stderr=err,
                                          preexec_fn=_default_signals))
    return procs


def _wait_for_epoch(run: Path, procs) -> None:
    deadline = time.perf_counter() + 300
    while not (run / "log.csv").exists():
        assert all(p.poll() is None for p in procs), "a rank ended before its first epoch"
        assert time.perf_counter() < deadline
        time.sleep(0.002)


@pytest.mark.slow
def test_one_rank_signalled_stops_every_rank_at_the_same_step(tmp_path):
    """Two ranks; SIGTERM reaches rank 1 only. Rank 0 stops too, after the same step (a rank that
    went on would wait for its partner's gradients for good); both exit 75, rank 0 prints the
    line; the resume (two ranks again) ends bit-identical to an uninterrupted two-rank run."""
    freeze_source(tmp_path)
    data = make_npz(tmp_path / "d.npz", n=1032)
    ref, run = tmp_path / "ref", tmp_path / "run"
    procs = _launch_ranks(_dist_args(data, ref), tmp_path)
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    work = tmp_path / "stop"
    work.mkdir()
    procs = _launch_ranks(_dist_args(data, run), work)
    _wait_for_epoch(run, procs)
    time.sleep(Random(SEED).uniform(0, 0.5) * _epoch_seconds(ref)[1])
    t0 = time.perf_counter()
    procs[1].send_signal(signal.SIGTERM)
    codes = [p.wait(timeout=120) for p in procs]
    stop_s = time.perf_counter() - t0
    errs = [(work / f"rank{r}.err").read_text() for r in (0, 1)]
    assert codes == [EXIT_PREEMPTED, EXIT_PREEMPTED], errs
    lines = [s for s in errs[0].splitlines() if s.startswith("aekit: stopped")]
    assert len(lines) == 1 and LINE.fullmatch(lines[0]), errs[0]
    assert "aekit:" not in errs[1], errs[1]
    assert stop_s < 25
    meta = load_checkpoint(run)["meta"]
    assert isinstance(meta.get("running", []), list)
    procs = _launch_ranks(["train", "--resume", str(run), "--quiet"], work)
    assert [p.wait(timeout=300) for p in procs] == [0, 0], \
        [(work / f"rank{r}.err").read_text() for r in (0, 1)]
    assert not weights_differ(ref, run)
    assert _history(run) == _history(ref)
    record("preempt_ranks", stop_s=round(stop_s, 3), epoch=meta["epoch"],
           position=meta.get("position", 0), step=meta["step"])


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_both_ranks_and_resume_is_exact(tmp_path):
    """SIGTERM to the torchrun launcher, which forwards it to both ranks: they stop after the same
    step, rank 0 prints the one line, and a resumed torchrun launch ends bit-identical to an
    uninterrupted one."""
    freeze_source(tmp_path)
    data = make_npz(tmp_path / "d.npz", n=1032)

    def torchrun(argv, err_path):
        with open(err_path, "wb") as err:
            return subprocess.Popen(
                [*TORCHRUN, "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                 "--master-port", str(_free_port()), "-m", "aekit", *argv],
                env=_dist_env(), stdout=subprocess.DEVNULL, stderr=err,
                preexec_fn=_default_signals)

    ref, run = tmp_path / "ref", tmp_path / "run"
    assert torchrun(_dist_args(data, ref), tmp_path / "ref.err").wait(timeout=300) == 0
    proc = torchrun(_dist_args(data, run), tmp_path / "stop.err")
    _wait_for_epoch(run, [proc])
    time.sleep(Random(SEED + 3).uniform(0, 0.5) * _epoch_seconds(ref)[1])
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    stop_s = time.perf_counter() - t0
    err = (tmp_path / "stop.err").read_text()
    lines = [s for s in err.splitlines() if s.startswith("aekit: stopped")]
    assert len(lines) == 1 and LINE.fullmatch(lines[0]), err[-3000:]
    assert "rank 0 could not" not in err and "aekit: error" not in err, err[-3000:]
    # The ranks left by themselves: torchrun did not have to SIGKILL them after its 30 s wait.
    assert "forcefully exiting" not in err and stop_s < 25, err[-3000:]
    meta = load_checkpoint(run)["meta"]
    assert not list(run.rglob("*.tmp"))
    resumed = torchrun(["train", "--resume", str(run), "--quiet"], tmp_path / "resume.err")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resume.err").read_text()[-3000:]
    assert not weights_differ(ref, run)
    assert _history(run) == _history(ref)
    record("preempt_torchrun", launcher_code=code, stop_s=round(stop_s, 3), epoch=meta["epoch"],
           position=meta.get("position", 0), step=meta["step"], line=lines[0])


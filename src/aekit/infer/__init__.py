"""Fast exact inference: each encode / decode / reconstruct runs on the fastest of a few
equivalent implementations, measured on this machine, never on one that differs from the model.

    from aekit import infer
    x_hat = infer.run(model, "reconstruct", x)           # == model(x)["x_hat"] within 1e-5

Parts (what `run` computes, as the model in eval mode under inference_mode computes it):
  encode       x -> model.encode(x)
  decode       z -> sigmoid(model.decode(z))             (images in [0, 1], not logits)
  reconstruct  x -> model(x)["x_hat"]
  scores       x -> (model(x)["x_hat"], model(x)["z"])   (what anomaly scoring needs)

Candidates (CPU, float32, eval mode; anything else runs eagerly):
  eager        the model itself (the reference)
  rewrite      a copy with NHWC (channels-last) weights and every nearest-resize + 3x3 conv
               (UpConv, or Resize then Conv2d in a Sequential) computed on the low-resolution
               input when the resize is an exact 2x: a transposed conv (or, for a few output
               channels, a conv to 4 phase maps + pixel shuffle) whose kernels are sums of the
               conv's taps. The same products summed in another order: 2.25x fewer
               multiply-adds, no upsampled tensor.
  onnxruntime  the rewritten copy exported to ONNX (TorchScript-based exporter: ~1 s) and run
               by ONNX Runtime, when it is installed; for batches of 1 to 8 only (ORT_BUCKETS).
  .../1 thread the same on one thread, when torch uses more: at batch 1 threading costs more
               than it gains, and on a CPU shared with other processes PyTorch's spin-waiting
               OpenMP threads can starve each other at any batch size.

Measuring costs about a second (mostly the ONNX export at small batches), so a choice is made
only where that pays: once a (part, batch-size bucket 1 / <=8 / <=64 / larger, thread count,
input shape) has spent SELECT_AFTER_S seconds eagerly, or as soon as the images the caller
announces (`total`) would take that long at the eager speed just seen. Then every candidate runs
the caller's batch: one whose output differs from eager's by more than TOLERANCE, or that
raises, is dropped; the rest are timed in alternating rounds (best round each), and the fastest
is kept if it takes less than SPEEDUP of eager's time (else eager stays). The choice is cached
per model and weights (a weight change starts over); a chosen path that raises on a later batch
gives way to eager for that batch. On CUDA or any other device, or in training mode: eager only
(under inference_mode).

Off: AEKIT_FAST_PATH=0 in the environment, or `fast=False`.
"""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aekit.infer.onnx import _onnx_bytes, _ort_call, _ort_session, onnxruntime_available
from aekit.infer.parts import ENV, PARTS, Output, eager, enabled
from aekit.models.rewrite import PhaseUpConv, rewrite

__all__ = ["ENV", "PARTS", "PhaseUpConv", "batched", "candidates", "chosen", "clear", "eager",
           "enabled", "max_abs_diff", "onnxruntime_available", "reports", "rewrite", "run",
           "select"]

TOLERANCE = 1e-5  # max |candidate - eager| allowed on the caller's batch
SELECT_AFTER_S = 1.0  # eager seconds spent (or announced) before the candidates are measured
BUCKETS = (1, 8, 64)  # batch-size buckets; larger batches share one more
SPEEDUP = 0.95  # a candidate replaces eager only below this fraction of eager's time
ROUNDS = 3  # timing rounds (alternating candidates); the best round of each counts
MIN_TIMED_S = 0.002  # a timed round repeats the call until it lasts at least this long
# ONNX Runtime is measured only for these buckets: at batch 1 it was 2.4x the rewrite (PyTorch's
# per-op overhead dominates), at 256 level with it or slower, while the export and a session
# cost ~100 MB of memory per model part.
ORT_BUCKETS = (1, 8)


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in model.modules())


def _channels_last_input(fn: Callable, nhwc: bool) -> Callable:
    if not nhwc:
        return fn

    def call(x: torch.Tensor) -> Output:
        return fn(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
    return call


# --- selection ------------------------------------------------------------------------------


@contextlib.contextmanager
def _threads(n: int):
    prev = torch.get_num_threads()
    if n == prev:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _one_thread(fn: Callable) -> Callable:
    def call(x: torch.Tensor) -> Output:
        with _threads(1):
            return fn(x)
    return call


@dataclass
class _State:
    key: tuple  # the weights this state was built for
    built: dict[str, Any] = field(default_factory=dict)  # shared builds, or the exception
    eager: dict[tuple, tuple[float, int]] = field(default_factory=dict)  # (seconds, images)
    chosen: dict[tuple, tuple[str, Callable | None]] = field(default_factory=dict)
    reports: dict[tuple, dict] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _weights_key(model: nn.Module) -> tuple:
    """(address, version) of every parameter and buffer: changes when weights are loaded,
    trained, moved or replaced. A plain walk over the modules (5x cheaper than parameters()):
    it runs on every call."""
    key, stack = [], [model]
    while stack:
        mod = stack.pop()
        for t in (*mod._parameters.values(), *mod._buffers.values()):
            if t is not None:
                key.append((t.data_ptr(), t._version))
        stack.extend(m for m in mod._modules.values() if m is not None)
    return tuple(key)


def _state(model: nn.Module) -> _State | None:
    """The model's selection state for its current weights (None: weights not float32 on the
    CPU, or whose version cannot be tracked, e.g. created under inference_mode)."""
    try:
        key = _weights_key(model)
    except RuntimeError:
        return None
    state = _STATES.get(model)
    if state is None or state.key != key:
        # Moving or converting the weights changes their addresses, hence the key: the device
        # and dtype are looked at only here.
        params = list(model.parameters())
        if not params or any(p.device.type != "cpu" or p.dtype != torch.float32
                             for p in params):
            return None
        state = _STATES[model] = _State(key)
    return state


def clear(model: nn.Module | None = None) -> None:
    """Forget the choices (and the copies and sessions) for `model`, or for every model."""
    if model is None:
        _STATES.clear()
    else:
        _STATES.pop(model, None)


def _key(part: str, x: torch.Tensor, threads: int) -> tuple:
    """What a choice is cached for: part, batch bucket, thread count, per-item input shape."""
    return part, bucket(x.shape[0]), threads, tuple(x.shape[1:])


def bucket(batch: int) -> int:
    """The batch-size bucket a choice is cached for: 1, 8, 64 or 0 (larger)."""
    return next((b for b in BUCKETS if batch <= b), 0)


def _eligible(model: nn.Module, x: torch.Tensor, fast: bool | None) -> bool:
    """Eval mode and a non-empty float32 CPU batch (the weights: `_state`)."""
    return (enabled(fast) and not model.training and isinstance(x, torch.Tensor)
            and x.dtype == torch.float32 and x.device.type == "cpu" and x.dim() > 0
            and x.shape[0] > 0)


def _build(state: _State, name: str, make: Callable[[], Any]) -> Any:
    """A shared build (the rewritten copy, the ONNX bytes), made once; an exception is kept and
    raised again, so a failing build is not retried for the same weights."""
    if name not in state.built:
        try:
            state.built[name] = make()
        except Exception as e:  # noqa: BLE001  any failure drops the candidate
            state.built[name] = e
    got = state.built[name]
    if isinstance(got, Exception):
        raise got
    return got


def candidates(model: nn.Module, part: str, x: torch.Tensor, threads: int | None = None,
               onnx: bool = True) -> dict[str, Callable[[], Callable]]:
    """{name: factory} of the candidate implementations of `part` for inputs like batch x and
    a thread count; a factory builds (or reuses) the candidate and returns its callable."""
    threads = threads or torch.get_num_threads()
    state = _state(model)
    out: dict[str, Callable[[], Callable]] = {"eager": lambda: eager(model, part)}
    if state is None:
        return out
    nhwc = _has_conv(model)
    try:
        rewritten = _build(state, "rewrite", lambda: rewrite(model))
    except Exception as e:  # noqa: BLE001  reported as the candidate's failure
        def failed(e: Exception = e) -> Callable:
            raise e
        rewritten, out["rewrite"] = None, failed
    if rewritten is not None:
        out["rewrite"] = lambda: _channels_last_input(eager(rewritten, part), nhwc)

    def ort(n: int) -> Callable:
        def make() -> Callable:
            def export() -> tuple[bytes, int]:
                src = state.built.get("rewrite")
                src = src if isinstance(src, nn.Module) else model
                return _onnx_bytes(src, part, x)
            shape = tuple(x.shape[1:])  # the traced graph may have fixed every other axis
            onnx_model, n_out = _build(state, f"onnx/{part}/{shape}", export)
            sess = _build(state, f"ort/{part}/{shape}/{n}", lambda: _ort_session(onnx_model, n))
            return _ort_call(sess, n_out)
        return make

    if onnx and bucket(x.shape[0]) in ORT_BUCKETS and onnxruntime_available():
        out["onnxruntime"] = ort(threads)
    if threads > 1:
        out["eager/1 thread"] = lambda: _one_thread(eager(model, part))
        if rewritten is not None:
            out["rewrite/1 thread"] = lambda: _one_thread(
                _channels_last_input(eager(rewritten, part), nhwc))
        if "onnxruntime" in out:
            out["onnxruntime/1 thread"] = ort(1)
    return out


def max_abs_diff(a: Output, b: Output) -> float:
    """Max |a - b| over every output (inf on a shape mismatch; NaN where both are NaN is 0)."""
    xs, ys = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    if not isinstance(ys, tuple) or len(xs) != len(ys):
        return math.inf
    worst = 0.0
    for u, v in zip(xs, ys, strict=True):
        if u.shape != v.shape:
            return math.inf
        if u.numel():
            u, v = u.float(), v.float()
            both_nan = torch.isnan(u) & torch.isnan(v)
            d = torch.where(both_nan, 0.0, (u - v).abs())
            worst = max(worst, float(torch.nan_to_num(d, nan=math.inf).max()))
    return worst


def _contiguous(out: Output) -> Output:
    if isinstance(out, tuple):
        return tuple(t.contiguous() for t in out)
    return out.contiguous()


def _time(fn: Callable, x: torch.Tensor, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return (time.perf_counter() - t0) / reps


def select(model: nn.Module, part: str, x: torch.Tensor, onnx: bool = True
           ) -> tuple[Output, dict]:
    """Measure every candidate on batch `x` now and cache the choice for its bucket; returns
    (eager's output on x, the report: {"chosen", "candidates": {name: {"seconds",
    "max_abs_diff"} or {"error"}}})."""
    threads = torch.get_num_threads()
    key = _key(part, x, threads)
    state = _state(model)
    ref_fn = eager(model, part)
    with torch.inference_mode():
        ref = ref_fn(x)
        first = _time(ref_fn, x, 1)  # warm: sets how often a timed round repeats the call
        report: dict[str, dict] = {}
        live: dict[str, Callable] = {"eager": ref_fn}
        for name, factory in candidates(model, part, x, threads, onnx).items():
            if name == "eager":
                continue
            try:
                fn = factory()
                diff = max_abs_diff(fn(x), ref)
            except Exception as e:  # noqa: BLE001  a failing candidate is dropped
                report[name] = {"error": f"{type(e).__name__}: {str(e)[:160]}"}
                continue
            if not diff <= TOLERANCE:
                report[name] = {"error": f"differs from eager by {diff:.3g}",
                                "max_abs_diff": diff}
                continue
            live[name] = fn
            report[name] = {"max_abs_diff": diff}
        reps = max(1, min(100, math.ceil(MIN_TIMED_S / max(first, 1e-6))))
        best = {name: math.inf for name in live}
        for _ in range(ROUNDS):
            for name, fn in live.items():
                best[name] = min(best[name], _time(fn, x, reps))
    report["eager"] = {"max_abs_diff": 0.0}
    for name, s in best.items():
        report[name]["seconds"] = s
    winner = min(best, key=best.get)
    if best[winner] >= SPEEDUP * best["eager"]:
        winner = "eager"
    info = {"chosen": winner, "part": part, "batch": len(x), "threads": threads,
            "candidates": report}
    if state is not None:
        # The eager variants are rebuilt from the model at each call: a stored bound method
        # would keep the model alive through _STATES, whose keys are weak.
        state.chosen[key] = (winner, None if winner.startswith("eager") else live[winner])
        state.reports[key] = info
        # The chosen callable holds its own session; the measured ones that lost would stay
        # alive in the cache (a later choice rebuilds a session from the cached ONNX bytes).
        for name in [k for k in state.built if k.startswith("ort/")]:
            del state.built[name]
    return ref, info


def chosen(model: nn.Module, part: str, batch: int, threads: int | None = None) -> str | None:
    """The implementation chosen for (part, batch's bucket, threads), or None before a choice."""
    state = _STATES.get(model)
    if state is None:
        return None
    names = [name for (p, b, t, _), (name, _fn) in state.chosen.items()
             if (p, b, t) == (part, bucket(batch), threads or torch.get_num_threads())]
    return names[-1] if names else None


def reports(model: nn.Module) -> list[dict]:
    """Every measurement made for `model` (what `select` returned), oldest first."""
    state = _STATES.get(model)
    return list(state.reports.values()) if state else []


def run(model: nn.Module, part: str, x: torch.Tensor, total: int | None = None,
        fast: bool | None = None) -> Output:
    """`part` of `model` on batch x, on the fastest exact implementation (see the module
    docstring); `total` is how many images the caller is about to process in all (a large total
    measures the candidates early, see SELECT_AFTER_S)."""
    state = _state(model) if _eligible(model, x, fast) else None
    if state is None:
        with torch.inference_mode():
            return eager(model, part)(x)
    key = _key(part, x, torch.get_num_threads())
    got = state.chosen.get(key)
    if got is not None:
        name, fn = got
        if fn is None:
            fn = eager(model, part) if name == "eager" else _one_thread(eager(model, part))
        with torch.inference_mode():
            try:
                return _contiguous(fn(x))
            except Exception:  # noqa: BLE001  e.g. an input eager rejects too: eager says why
                return eager(model, part)(x)
    spent, seen = state.eager.get(key, (0.0, 0))
    if spent >= SELECT_AFTER_S or (seen and spent / seen * (total or 0) >= SELECT_AFTER_S):
        return select(model, part, x)[0]
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = eager(model, part)(x)
    state.eager[key] = (spent + time.perf_counter() - t0, seen + x.shape[0])
    return out


def batched(model: nn.Module, part: str, x: torch.Tensor, batch_size: int,
            prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
            fast: bool | None = None) -> list[Output]:
    """`run` over x in batches of `batch_size` (each passed through `prepare` first, e.g. to
    float in [0, 1] on the model's device); returns the per-batch outputs."""
    outs = []
    for b in x.split(batch_size):
        with torch.inference_mode():
            b = prepare(b) if prepare is not None else b
        outs.append(run(model, part, b, total=len(x), fast=fast))
    return outs

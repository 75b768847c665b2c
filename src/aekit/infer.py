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
               by ONNX Runtime, when it is installed.
  .../1 thread the same on one thread, when torch uses more: at batch 1 threading costs more
               than it gains, and on a CPU shared with other processes PyTorch's spin-waiting
               OpenMP threads can starve each other at any batch size.

Measuring costs about a second (mostly the ONNX export), so a choice is made only where that
pays: once a (part, batch-size bucket 1 / <=8 / <=64 / larger, thread count, input shape) has
spent SELECT_AFTER_S seconds eagerly, or as soon as the images the caller announces (`total`)
would take that long at the eager speed just seen. Then every candidate runs the caller's
batch: one whose output differs from eager's by more than TOLERANCE, or that raises, is dropped;
the rest are timed in alternating rounds (best round each), and the fastest is kept if it takes
less than SPEEDUP of eager's time (else eager stays). The choice is cached per model and weights
(a weight change starts over); a chosen path that raises on a later batch gives way to eager for
that batch. On CUDA or any other device, or in training mode: eager only (under inference_mode).

Off: AEKIT_FAST_PATH=0 in the environment, or `fast=False`.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import math
import os
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError
from aekit.models.layers import Resize

ENV = "AEKIT_FAST_PATH"
PARTS = ("encode", "decode", "reconstruct", "scores")
TOLERANCE = 1e-5  # max |candidate - eager| allowed on the caller's batch
SELECT_AFTER_S = 1.0  # eager seconds spent (or announced) before the candidates are measured
BUCKETS = (1, 8, 64)  # batch-size buckets; larger batches share one more
SPEEDUP = 0.95  # a candidate replaces eager only below this fraction of eager's time
ROUNDS = 3  # timing rounds (alternating candidates); the best round of each counts
MIN_TIMED_S = 0.002  # a timed round repeats the call until it lasts at least this long
# UpConvs with at most this many output channels use conv + pixel shuffle rather than a
# transposed conv: measured crossover on a 2-core AVX-512 machine (32 -> 1..8 channels, 14x14:
# shuffle 1.2-2.4x faster; 32 -> 16 and wider: the transposed conv 1.3-2.3x faster).
SHUFFLE_MAX_OUT = 8

Output = torch.Tensor | tuple[torch.Tensor, ...]


def enabled(fast: bool | None = None) -> bool:
    """Whether the fast path is on: `fast` when given, else AEKIT_FAST_PATH (default on)."""
    if fast is not None:
        return bool(fast)
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def eager(model: nn.Module, part: str) -> Callable[[torch.Tensor], Output]:
    """The reference computation of `part` on `model` (call it under inference_mode)."""
    if part == "encode":
        return model.encode
    if part == "decode":
        return lambda z: torch.sigmoid(model.decode(z))
    if part == "reconstruct":
        return lambda x: model(x)["x_hat"]
    if part == "scores":
        def scores(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = model(x)
            return out["x_hat"], out["z"]
        return scores
    raise ConfigError(f"part={part!r}: use one of {', '.join(PARTS)}")


# --- the rewrite: nearest 2x resize + 3x3 conv on the low-resolution input --------------------


def _taps(w: torch.Tensor, dim: int, factor: int) -> torch.Tensor:
    """Transposed-conv taps along `dim` of a 3-tap conv kernel after a nearest resize by
    `factor` (1 or 2). Output row 2i reads input rows i-1, i, i and row 2i+1 reads i, i, i+1,
    so with stride 2, padding 1 the kernel is [w2, w1 + w2, w0 + w1, w0]; factor 1 is the
    plain conv, i.e. the flipped kernel [w2, w1, w0]."""
    a, b, c = w.unbind(dim)
    return torch.stack([c, b + c, a + b, a] if factor == 2 else [c, b, a], dim)


def _phase_kernel(w: torch.Tensor) -> torch.Tensor:
    """(O, I, 3, 3) conv kernel after a 2x nearest resize -> (4*O, I, 3, 3) conv kernel on the
    low-resolution input whose output channel 4*o + 2*a + b is output pixel (2i + a, 2j + b)
    (pixel_shuffle's order). Phase 0 reads rows i-1, i; phase 1 reads rows i, i+1."""
    def split(k: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, c = k.unbind(dim)
        zero = torch.zeros_like(a)
        return torch.stack([a, b + c, zero], dim), torch.stack([zero, a + b, c], dim)

    o, i = w.shape[:2]
    out = torch.empty(o, 2, 2, i, 3, 3, dtype=w.dtype)
    for pa, rows in enumerate(split(w, 2)):
        for pb, k in enumerate(split(rows, 3)):
            out[:, pa, pb] = k
    return out.reshape(4 * o, i, 3, 3)


def _phaseable(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


class PhaseUpConv(nn.Module):
    """Nearest resize to `size` then a 3x3 'same' conv, computed on the low-resolution input
    when each axis is resized by exactly 1x or 2x (any other size: the resize and the conv as
    given). Weights are derived once from the conv's (summed in float64)."""

    def __init__(self, resize: Resize, conv: nn.Conv2d) -> None:
        super().__init__()
        self.resize, self.conv = resize, conv
        self.size = resize.size
        w = conv.weight.detach().double()
        bias = conv.bias.detach() if conv.bias is not None else None
        self.shuffle = conv.out_channels <= SHUFFLE_MAX_OUT
        for fh, fw in ((2, 2), (1, 2), (2, 1)):
            k = _taps(_taps(w, 2, fh), 3, fw).transpose(0, 1)  # (I, O, kh, kw)
            self.register_buffer(f"t{fh}{fw}", k.float().contiguous(), persistent=False)
        self.register_buffer("phase", _phase_kernel(w).float(), persistent=False)
        self.register_buffer("phase_bias", None if bias is None else
                             bias.repeat_interleave(4).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        fh, fw = self.size[0] // h if h else 0, self.size[1] // w if w else 0
        if (fh, fw) == (1, 1) or fh not in (1, 2) or fw not in (1, 2) \
                or (fh * h, fw * w) != self.size:
            return self.conv(self.resize(x))
        if (fh, fw) == (2, 2) and self.shuffle:
            return F.pixel_shuffle(F.conv2d(x, self.phase, self.phase_bias, padding=1), 2)
        return F.conv_transpose2d(x, getattr(self, f"t{fh}{fw}"), self.conv.bias,
                                  stride=(fh, fw), padding=1)


def rewrite(model: nn.Module) -> nn.Module | None:
    """An inference copy of `model` (eval mode): every Resize directly followed by a phaseable
    Conv2d in an nn.Sequential (UpConv is one) becomes a PhaseUpConv, and a model with convs gets
    channels-last weights. None when nothing would change."""
    with torch.inference_mode(False), torch.no_grad():
        m = copy.deepcopy(model).eval()
        changed = False
        for seq in [s for s in m.modules() if isinstance(s, nn.Sequential)]:
            mods = list(seq)
            for i in range(len(mods) - 1):
                if isinstance(mods[i], Resize) and _phaseable(mods[i + 1]):
                    seq[i], seq[i + 1] = PhaseUpConv(mods[i], mods[i + 1]), nn.Identity()
                    changed = True
        convs = [c for c in m.modules() if isinstance(c, nn.Conv2d | nn.ConvTranspose2d)]
        if any(not c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs):
            m.to(memory_format=torch.channels_last)
            changed = True
        for c in m.modules():
            if isinstance(c, PhaseUpConv):
                for name in ("t22", "t12", "t21", "phase"):
                    setattr(c, name, getattr(c, name).contiguous(memory_format=torch.channels_last))
    return m if changed else None


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in model.modules())


def _channels_last_input(fn: Callable, nhwc: bool) -> Callable:
    if not nhwc:
        return fn

    def call(x: torch.Tensor) -> Output:
        return fn(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
    return call


# --- ONNX Runtime ---------------------------------------------------------------------------


class _Part(nn.Module):
    def __init__(self, model: nn.Module, part: str) -> None:
        super().__init__()
        self.model, self.part = model, part

    def forward(self, x: torch.Tensor) -> Output:
        return eager(self.model, self.part)(x)


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def _onnx_bytes(model: nn.Module, part: str, x: torch.Tensor) -> tuple[bytes, int]:
    """The part exported with a dynamic batch axis (traced at batch >= 2 so the exporter does
    not specialise it); returns (model bytes, number of outputs)."""
    # Traced with autograd on, as torch.onnx.export is meant to run: a model may switch to
    # inference-only copies of its layers without it (unet's conv+BN folding), which the
    # tracer would see as constants.
    with torch.inference_mode(False), torch.enable_grad():
        ex = (x[:2] if len(x) >= 2 else torch.cat([x, x])).detach().clone()
        module = _Part(model, part).eval()
        n_out = 2 if part == "scores" else 1
        outs = [f"y{i}" for i in range(n_out)]
        axes = {name: {0: "batch"} for name in ["x", *outs]}
        buf = io.BytesIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
            torch.onnx.export(module, (ex,), buf, dynamo=False, input_names=["x"],
                              output_names=outs, dynamic_axes=axes, opset_version=18)
    return buf.getvalue(), n_out


def _ort_session(onnx: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 4  # failures come back as exceptions
    # Worker threads sleep between runs instead of spinning: spinning threads take the cores
    # from whatever the caller computes between batches, and from other processes (on a shared
    # 2-core machine at load 2.6: batch 1 2,394 -> 5,554 img/s, batch 256 3,589 -> 4,757).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])


def _ort_call(sess: Any, n_out: int) -> Callable:
    import numpy as np

    def call(x: torch.Tensor) -> Output:
        outs = sess.run(None, {"x": np.ascontiguousarray(x.detach().numpy())})
        ts = tuple(torch.from_numpy(o) for o in outs)
        return ts if n_out > 1 else ts[0]
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
    chosen: dict[tuple, tuple[str, Callable]] = field(default_factory=dict)
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

    if onnx and onnxruntime_available():
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
        state.chosen[key] = (winner, live[winner])
        state.reports[key] = info
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
        with torch.inference_mode():
            try:
                return _contiguous(got[1](x))
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

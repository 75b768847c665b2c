"""ONNX Runtime as an inference candidate: a model part exported to ONNX and run by a session
whose threads sleep between runs (aekit.infer measures it against the model as written)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from aekit.infer.parts import Output, eager


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

"""Export a trained run to ONNX or TorchScript: the encoder, the decoder or the whole model.

    aekit export RUN --format onnx --part encoder -o encoder.onnx

Parts (all with a dynamic batch axis; images are float32 (B, C, H, W) in [0, 1]):
  encoder  image -> z           the latent code (as `AutoencoderModule.encode`)
  decoder  z -> image           sigmoid(decode(z)): an image in [0, 1], not logits
  model    image -> image       the reconstruction (forward's x_hat in eval mode)

ONNX uses PyTorch's torch.export-based exporter (needs onnxscript) and falls back to the
TorchScript-based one for models torch.export cannot capture. Every export is checked before it
is published: the exported file is run (onnxruntime / torch.jit.load) on a batch size other than
the one it was traced with and must match PyTorch within 1e-4, so a model whose graph silently
froze the batch size or a data-dependent branch is refused with an error, never written.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit.errors import ConfigError
from aekit.io import atomic_path

FORMATS = ("onnx", "torchscript")
PARTS = ("encoder", "decoder", "model")
TOLERANCE = 1e-4
OPSET = 18
_NAMES = {"encoder": ("image", "z"), "decoder": ("z", "image"), "model": ("image", "image_out")}


class EncoderPart(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)


class DecoderPart(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.decode(z))


class ModelPart(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["x_hat"]


def part_module(model: nn.Module, part: str) -> nn.Module:
    if part not in PARTS:
        raise ConfigError(f"--part {part!r}: use one of {', '.join(PARTS)}")
    return {"encoder": EncoderPart, "decoder": DecoderPart, "model": ModelPart}[part](model).eval()


@torch.no_grad()  # not inference_mode: tracing cannot take inference tensors
def example_input(model: nn.Module, part: str, batch: int, seed: int = 0) -> torch.Tensor:
    """A seeded input batch for a part: random images, or the codes of random images."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((batch, *model.cfg.shape), generator=gen)
    return model.encode(x).detach().clone() if part == "decoder" else x


@contextlib.contextmanager
def _quiet():
    """The exporters print progress, graph dumps and deprecation warnings; the user wants one
    line. Their messages are kept in the buffer for the error text."""
    buf = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                              "torch.fx", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf), \
                contextlib.redirect_stderr(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0][:240] if text else type(e).__name__).replace("\x1b[96m", "").replace(
        "\x1b[0m", "")


def _export_onnx(module: nn.Module, x: torch.Tensor, path: Path, names: tuple[str, str]
                 ) -> str:
    """Write ONNX to `path`; returns which exporter succeeded."""
    errors = []
    with _quiet():
        try:
            import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)

            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(module, (x,), str(path), dynamo=True, input_names=[names[0]],
                              output_names=[names[1]], dynamic_shapes=({0: batch},),
                              opset_version=OPSET, verbose=False)
            return "torch.export"
        except Exception as e:  # noqa: BLE001  any failure: try the other exporter
            errors.append(f"torch.export-based exporter: {_first_line(e)}")
        try:
            torch.onnx.export(module, (x,), str(path), dynamo=False, input_names=[names[0]],
                              output_names=[names[1]], opset_version=OPSET,
                              dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}})
            return "torchscript-based"
        except Exception as e:  # noqa: BLE001
            errors.append(f"TorchScript-based exporter: {_first_line(e)}")
    raise _Unexportable("; ".join(errors))


class _Unexportable(Exception):
    pass


def _export_torchscript(module: nn.Module, x: torch.Tensor, path: Path, meta: dict) -> str:
    with _quiet():
        try:
            traced = torch.jit.trace(module, (x,), check_trace=False)
            # Freezing inlines the weights the part uses and drops the rest (an encoder file
            # then holds no decoder weights).
            frozen = torch.jit.freeze(traced.eval())
            torch.jit.save(frozen, str(path), _extra_files={"aekit.json": json.dumps(meta)})
        except Exception as e:  # noqa: BLE001
            raise _Unexportable(f"torch.jit.trace: {_first_line(e)}") from None
    return "torch.jit.trace"


def run_exported(path: str | os.PathLike, fmt: str, x: torch.Tensor, threads: int = 1
                 ) -> torch.Tensor:
    """Run an exported file on a batch (onnxruntime for ONNX, torch.jit for TorchScript)."""
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4  # failures come back as exceptions; no C++ log lines
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        run_opts = ort.RunOptions()
        run_opts.log_severity_level = 4
        name = sess.get_inputs()[0].name
        return torch.from_numpy(sess.run(None, {name: x.numpy()}, run_opts)[0])
    with _quiet():
        mod = torch.jit.load(str(path), map_location="cpu")
        with torch.inference_mode():
            return mod(x)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.float() - b.float()).abs().max()) if a.numel() else 0.0


# The codec is refused whole rather than exported in a form that would not decode its files.
_CODEC_REFUSAL = {
    "encoder": "codec --part {part}: cannot be exported: its encoder picks each block's cluster "
               "and rounds with rate-distortion decisions over the frozen integer entropy "
               "tables, and its output is a range-coded byte stream, not a tensor; use `aekit "
               "compress`",
    "decoder": "codec --part {part}: cannot be exported: its decoder is an order-independent "
               "exact float64 matmul (what makes decoding bit-exact), and ONNX Runtime has no "
               "float64 MatMul kernel; use `aekit decompress`",
    "model": "codec --part {part}: cannot be exported: its encoder makes rate-distortion "
             "decisions over the frozen integer entropy tables and range-codes bytes, and its "
             "decoder is an exact float64 matmul that ONNX Runtime has no kernel for; use `aekit "
             "compress` / `aekit decompress`",
}


def export_model(model: nn.Module, part: str, fmt: str, out: str | os.PathLike,
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export one part of a model (eval mode, CPU) to `out`, checked for parity; returns info.

    Raises ConfigError when the part cannot be exported faithfully; `out` is then untouched.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if getattr(model, "entropy_coded", False):
        raise ConfigError(_CODEC_REFUSAL.get(part, _CODEC_REFUSAL["model"]).format(part=part))
    model = model.to("cpu").eval()
    module = part_module(model, part)
    names = _NAMES[part]
    name = model.cfg.name
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"aekit_part": part, "input": names[0], "output": names[1],
            "input_range": "[0, 1]" if part != "decoder" else "latent", **(meta or {})}
    with atomic_path(out) as tmp, contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: _side_file(tmp).unlink(missing_ok=True))  # failed exports too
        # Traced at batch 2 (batch 1 would let the exporter specialise the batch axis),
        # checked at batch 3: the dynamic axis must really be dynamic.
        x2, x3 = example_input(model, part, 2), example_input(model, part, 3, seed=1)
        try:
            if fmt == "onnx":
                how = _export_onnx(module, x2, tmp, names)
                _add_onnx_metadata(tmp, meta)
            else:
                how = _export_torchscript(module, x2, tmp, meta)
            with torch.no_grad():
                expected = module(x3)
            diff = max_abs_diff(run_exported(tmp, fmt, x3), expected)
        except _Unexportable as e:
            raise ConfigError(f"model {name!r} cannot be exported to {fmt} (part {part}): {e}. "
                              "Export a model type such as conv, dense or deep, or use the run "
                              "folder with aekit itself") from None
        except Exception as e:  # noqa: BLE001  the exported file would not even run
            raise ConfigError(f"model {name!r} cannot be exported to {fmt} (part {part}): the "
                              f"exported graph fails on a batch of {len(x3)} ("
                              f"{_first_line(e)}), e.g. because it froze the batch size or "
                              "left PyTorch") from None
        if not diff <= TOLERANCE:
            raise ConfigError(
                f"model {name!r} cannot be exported to {fmt} faithfully (part {part}): the "
                f"exported graph differs from PyTorch by {diff:.3g} (> {TOLERANCE}) on a new "
                "batch, e.g. because its forward pass depends on the data or the batch size")
    return {"path": str(out), "format": fmt, "part": part, "exporter": how,
            "input": names[0], "output": names[1], "input_shape": ["batch", *x2.shape[1:]],
            "max_abs_diff": diff}



def _add_onnx_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Add `meta` to the model's metadata and save it as one self-contained file: the
    torch.export-based exporter writes the weights to a side file `<path>.data`, which would be
    left behind next to the output (and would not follow the renamed file)."""
    import onnx

    m = onnx.load(str(path))  # also reads the side file's weights into the model
    for key, value in meta.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(m, str(path), save_as_external_data=False)
    _side_file(path).unlink(missing_ok=True)


def _side_file(path: Path) -> Path:
    """Where torch.onnx.export puts external weights for `path`."""
    return path.with_name(path.name + ".data")


def export_run(run_dir: str | os.PathLike, fmt: str, part: str, out: str | os.PathLike
               ) -> dict[str, Any]:
    """Load a run folder and export one part of its model."""
    from aekit.core.io import load_model

    if fmt == "onnx":
        for pkg in ("onnx", "onnxruntime"):
            try:
                __import__(pkg)
            except ImportError:
                raise ConfigError(f"ONNX export needs the {pkg} package: pip install "
                                  "'aekit[export]' (or onnx onnxruntime onnxscript)") from None
    model, run = load_model(run_dir)
    meta = {"aekit_model": json.dumps(run.model_cfg.to_dict(), sort_keys=True)}
    return export_model(model, part, fmt, out, meta)

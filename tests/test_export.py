"""`aekit export`: ONNX / TorchScript files that match PyTorch, with a dynamic batch axis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.cli import main
from aekit.config import ModelConfig, TrainConfig
from aekit.core.io import load_model, save_weights, write_config
from aekit.models import build_model
from aekit.models.base import AutoencoderModule
from aekit.registry import MODELS, register_model
from aekit.report.export import example_input, export_model, part_module

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install "
                                                "'aekit[export]')")


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    """A conv run folder with seeded (untrained) weights: export does not care about training."""
    run = tmp_path_factory.mktemp("export") / "run"
    torch.manual_seed(0)
    cfg = ModelConfig(name="conv", in_channels=1, height=12, width=12, latent_dim=6)
    write_config(run, cfg, TrainConfig(dataset="array"))
    save_weights(run, build_model(cfg))
    return run


def _onnx_run(path, x: torch.Tensor) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert isinstance(inp.shape[0], str)  # the batch axis is symbolic, not a number
    return sess.run(None, {inp.name: x.numpy()})[0]


def test_onnx_encoder_decoder_model_match_pytorch(conv_run, tmp_path, capsys):
    model, _ = load_model(conv_run)
    out_dir = tmp_path / "exports"
    for part in ("encoder", "decoder", "model"):
        out = out_dir / f"{part}.onnx"
        assert main(["export", str(conv_run), "--format", "onnx", "--part", part,
                     "-o", str(out)]) == 0
        assert "max |diff|" in capsys.readouterr().out
        for batch in (1, 7):  # batch sizes it was not traced with
            x = example_input(model, part, batch, seed=batch)
            with torch.inference_mode():
                expected = part_module(model, part)(x).numpy()
            got = _onnx_run(out, x)
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1e-4, part
    # Nothing beside the outputs: no temp file, no external-weights side file (hidden or not).
    assert sorted(p.name for p in out_dir.iterdir()) == ["decoder.onnx", "encoder.onnx",
                                                         "model.onnx"]


def test_unet_every_part_exports_with_a_dynamic_batch(tmp_path, capsys):
    """The unet's packed code (skip features + input) is unpacked with the batch axis left
    symbolic, so the decoder graph also runs on batch sizes it was not traced with."""
    run = tmp_path / "unet"
    torch.manual_seed(0)
    cfg = ModelConfig(name="unet", in_channels=1, height=12, width=12, latent_dim=6)
    write_config(run, cfg, TrainConfig(dataset="array"))
    save_weights(run, build_model(cfg))
    model, _ = load_model(run)
    for part in ("encoder", "decoder", "model"):
        out = tmp_path / f"{part}.onnx"
        assert main(["export", str(run), "--format", "onnx", "--part", part, "-o", str(out)]) == 0
        capsys.readouterr()
        for batch in (1, 5):
            x = example_input(model, part, batch, seed=batch)
            with torch.inference_mode():
                expected = part_module(model, part)(x).numpy()
            assert np.abs(_onnx_run(out, x) - expected).max() <= 1e-4, part


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_model_matches_pytorch(conv_run, tmp_path):
    out = tmp_path / "model.pt"
    assert main(["export", str(conv_run), "--format", "torchscript", "-o", str(out)]) == 0
    model, _ = load_model(conv_run)
    loaded = torch.jit.load(str(out))
    x = torch.rand(5, 1, 12, 12)
    with torch.inference_mode():
        assert (loaded(x) - model(x)["x_hat"]).abs().max() <= 1e-4


class DataDependentAE(AutoencoderModule):
    """A model whose forward pass turns tensors into Python numbers, which no exporter can
    capture (torch.export refuses; tracing would freeze them into constants)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.enc = torch.nn.Linear(cfg.height * cfg.width, cfg.latent_dim)
        self.dec = torch.nn.Linear(cfg.latent_dim, cfg.height * cfg.width)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.tensor([1.0 + abs(v) for v in x.flatten(1).mean(1).tolist()])
        return self.enc(x.flatten(1)) * scale[:, None]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z).reshape(len(z), *self.cfg.shape)  # (B, C, H, W)


@pytest.fixture
def unexportable_registered():
    """Register the test model only for this test, so registry-wide tests never see it."""
    register_model("test-unexportable")(DataDependentAE)
    yield
    del MODELS["test-unexportable"]


def test_unexportable_model_is_a_clear_error(tmp_path, capsys, unexportable_registered):
    assert "test-unexportable" in MODELS
    run = tmp_path / "run"
    cfg = ModelConfig(name="test-unexportable", height=6, width=6, latent_dim=3)
    write_config(run, cfg, TrainConfig(dataset="array"))
    save_weights(run, build_model(cfg))
    out = tmp_path / "enc.onnx"
    for fmt in ("onnx", "torchscript"):
        assert main(["export", str(run), "--format", fmt, "--part", "encoder",
                     "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert "cannot be exported" in err and "test-unexportable" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert not out.exists() and not list(tmp_path.glob(".*"))


def test_export_bad_inputs(tmp_path, conv_run, capsys):
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["export", str(conv_run), "--format", "tflite", "-o", "x"]) == 2
    model = build_model(ModelConfig(name="dense", height=4, width=4, latent_dim=2))
    with pytest.raises(Exception, match="part"):
        export_model(model, "middle", "onnx", tmp_path / "m.onnx")

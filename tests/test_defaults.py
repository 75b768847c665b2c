"""The defaults on sparse images: the default `conv` must learn white strokes on black (it used to
collapse to an all-black output), and a collapsed run must say so (train/health.py)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import aekit.train.objective as objective_mod
from aekit.config import ModelConfig, TrainConfig
from aekit.core.io import read_metrics
from aekit.core.training import train_run
from aekit.models import build_model
from aekit.train.loop import fit

# The CI layout: the shared data folder sits next to the repository (absent in a user's clone).
MNIST_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
STROKE_SIZE = 16


def make_strokes(n: int, size: int = STROKE_SIZE, seed: int = 0) -> torch.Tensor:
    """Sparse images: 1-3 random white line segments on black (~10% lit pixels), uint8."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 1, size, size), np.uint8)
    for i in range(n):
        im = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 4))):
            draw.line(rng.integers(3, size - 3, 4).tolist(), fill=int(rng.integers(160, 256)),
                      width=int(rng.integers(1, 4)))
        out[i, 0] = np.asarray(im)
    return torch.from_numpy(out)


def gain_over_mean_db(model, train_x: torch.Tensor, test_x: torch.Tensor) -> float:
    """Test PSNR of the model minus that of predicting the training images' mean image."""
    target = test_x.float() / 255
    with torch.inference_mode():
        mse = float((model(target)["x_hat"] - target).pow(2).mean())
    mean_mse = float((target - (train_x.float() / 255).mean(0)).pow(2).mean())
    return 10 * math.log10(mean_mse / mse)


def train_conv(train_x: torch.Tensor, epochs: int, start_from_data: bool = True):
    """The default `conv` (default options, latent and learning rate) started from the data as
    `aekit train` starts it, batch 32 for speed. start_from_data=False: the old model and start,
    no linear path and the output at sigmoid(0) = 0.5 grey."""
    torch.manual_seed(0)
    c, h, w = train_x.shape[1:]
    options = {} if start_from_data else {"linear": False}
    model = build_model(ModelConfig(name="conv", in_channels=c, height=h, width=w,
                                    options=options))
    if start_from_data:
        model.init_from_data(train_x, seed=0)
    else:
        model.output_init_pending = False
    cfg = TrainConfig(dataset="array", epochs=epochs, batch_size=32, seed=0)
    return model, fit(model, train_x, cfg, progress=False)


@pytest.fixture(scope="module")
def strokes() -> tuple[torch.Tensor, torch.Tensor]:
    x = make_strokes(1024 + 256)
    return x[:1024], x[1024:]


@pytest.fixture(scope="module")
def healthy_strokes_run(strokes):
    return train_conv(strokes[0], epochs=6)


def test_default_conv_learns_sparse_strokes(strokes, healthy_strokes_run):
    """128 steps: ~4.3 dB above the mean image (bf16 or fp32, any seed tried); the old grey
    start collapsed here to a constant output, 0.2 dB *below* the mean image."""
    model, _ = healthy_strokes_run
    assert gain_over_mean_db(model, *strokes) >= 3.0


def test_default_conv_learns_mnist():
    """2,000 MNIST digits, 2 epochs: ~3.7 dB above the mean image (the old start: -2.2 dB, an
    all-black output)."""
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {MNIST_DIR} (the CI layout's ../shared/data/mnist)")
    from aekit.data import load_dataset

    ds = load_dataset(f"idx:{MNIST_DIR}")
    train_x, test_x = ds.train_x[:2000], ds.test_x[:500]
    model, result = train_conv(train_x, epochs=2)
    assert gain_over_mean_db(model, train_x, test_x) >= 3.0
    assert result.warnings == []


def test_collapse_warning_fires_only_on_a_collapsed_run(strokes, healthy_strokes_run, capsys):
    _, healthy = healthy_strokes_run
    assert healthy.warnings == []

    model, collapsed = train_conv(strokes[0], epochs=6, start_from_data=False)
    assert gain_over_mean_db(model, *strokes) < 0.5  # collapsed indeed
    assert len(collapsed.warnings) == 1
    assert "collapsed" in collapsed.warnings[0] and "near-constant" in collapsed.warnings[0]
    lines = [s for s in capsys.readouterr().err.splitlines() if s.startswith("warning:")]
    assert lines == [f"warning: {collapsed.warnings[0]}"]


def test_warnings_list_in_metrics_json(tmp_path, tiny_npz, monkeypatch):
    """metrics.json always has "warnings": empty for a healthy run, the message otherwise."""
    cfg = TrainConfig(dataset=tiny_npz, epochs=1, batch_size=32)
    metrics = train_run(tmp_path / "ok", ModelConfig(name="dense", latent_dim=4), cfg,
                        progress=False, log=lambda s: None)
    assert metrics["warnings"] == [] and read_metrics(tmp_path / "ok")["warnings"] == []

    class AlwaysCollapsed:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __call__(self, *args, **kwargs) -> str:
            return "training collapsed (test)"

    monkeypatch.setattr(objective_mod, "CollapseCheck", AlwaysCollapsed)
    train_run(tmp_path / "bad", ModelConfig(name="dense", latent_dim=4), cfg, progress=False,
              log=lambda s: None)
    assert read_metrics(tmp_path / "bad")["warnings"] == ["training collapsed (test)"]


def test_output_bias_starts_at_the_data_mean():
    """Per pixel where the bias has one value per pixel (dense), per channel for a conv; nothing
    for a residual U-Net or for a model whose weights were loaded."""
    mean = torch.rand(3, 8, 8) * 0.5 + 0.25
    logit = torch.log(mean / (1 - mean))
    dense = build_model(ModelConfig(name="dense", in_channels=3, height=8, width=8))
    assert dense.init_output_bias(mean)
    assert torch.allclose(dense.output_bias(), logit.flatten(), atol=1e-5)
    conv = build_model(ModelConfig(name="conv", in_channels=3, height=8, width=8))
    assert conv.init_output_bias(mean)
    channel = mean.mean((1, 2))
    assert torch.allclose(conv.output_bias(), torch.log(channel / (1 - channel)), atol=1e-5)
    unet = build_model(ModelConfig(name="unet", in_channels=3, height=8, width=8,
                                   options={"residual": True}))
    assert unet.output_bias() is None and not unet.init_output_bias(mean)

    fresh = build_model(ModelConfig(name="conv", in_channels=3, height=8, width=8))
    assert fresh.output_init_pending
    fresh.load_state_dict(conv.state_dict())
    assert not fresh.output_init_pending  # fit() leaves loaded weights alone


def test_collapse_check_rules(strokes):
    """Near-constant output: any epoch after MIN_STEPS; no better than the mean image: only at
    the end (a healthy start may sit there for a while); a good reconstruction: never."""
    from aekit.train.health import MIN_STEPS, CollapseCheck

    images = strokes[1]
    check = CollapseCheck(images)
    mean = (images.float() / 255).mean(0)

    class Fixed(torch.nn.Module):
        def __init__(self, fn) -> None:
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return {"x_hat": self.fn(x)}

    cpu = torch.device("cpu")
    constant = Fixed(lambda x: mean.expand_as(x))
    assert check(constant, cpu, MIN_STEPS - 1) is None  # too early to judge
    assert "near-constant" in check(constant, cpu, MIN_STEPS)
    # Varies with the input but is no better than the mean image.
    mean_ish = Fixed(lambda x: 0.8 * mean + 0.2 * x.flip(0))
    assert check(mean_ish, cpu, MIN_STEPS) is None
    assert "mean image" in check(mean_ish, cpu, MIN_STEPS, final=True)
    good = Fixed(lambda x: 0.9 * x + 0.1 * mean)
    assert check(good, cpu, MIN_STEPS, final=True) is None


def test_an_early_flat_phase_the_run_grows_out_of_is_not_recorded(tmp_path, tiny_npz,
                                                                   monkeypatch):
    """Slow starters pass through a near-constant phase; the recorded verdict is the final
    model's, so a run that recovers ends with no warning."""

    class FlatThenHealthy:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __call__(self, model, device, step, final=False) -> str | None:
            return None if final else "training collapsed (early flat phase)"

    monkeypatch.setattr(objective_mod, "CollapseCheck", FlatThenHealthy)
    cfg = TrainConfig(dataset=tiny_npz, epochs=4, batch_size=8)
    metrics = train_run(tmp_path / "r", ModelConfig(name="dense", latent_dim=4), cfg,
                        progress=False, log=lambda s: None)
    assert metrics["warnings"] == []


def _pca_psnr(train_x: torch.Tensor, test_x: torch.Tensor, k: int) -> float:
    from sklearn.decomposition import PCA

    a, b = (t.flatten(1).double().numpy() / 255 for t in (train_x, test_x))
    pca = PCA(k, svd_solver="full").fit(a)
    rec = np.clip(pca.inverse_transform(pca.transform(b)), 0, 1)
    return 10 * math.log10(1 / float(((rec - b) ** 2).mean()))


def test_conv_linear_path_starts_at_pca():
    """Before any step the default conv is PCA plus a logit fit: the code is the PCA code and
    the output within 1 dB of PCA's reconstruction on the training images."""
    from aekit.data import load_dataset

    x = load_dataset("digits").train_x
    model = build_model(ModelConfig(name="conv", in_channels=1, height=8, width=8,
                                    latent_dim=16))
    state = torch.get_rng_state()
    note = model.init_from_data(x, seed=0)
    assert torch.equal(torch.get_rng_state(), state)  # the global random stream is untouched
    assert "PCA-16" in note
    basis = model.lin_enc.weight.double()  # (16, 64)
    assert torch.allclose(basis @ basis.T, torch.eye(16, dtype=torch.float64), atol=1e-4)
    target = x.float() / 255
    with torch.inference_mode():
        out = model(target)
    codes = (target.flatten(1) - target.flatten(1).mean(0)) @ model.lin_enc.weight.T
    assert torch.allclose(out["z"], codes, atol=1e-4)  # the conv stacks start at zero
    psnr = 10 * math.log10(1 / float((out["x_hat"] - target).pow(2).mean()))
    assert psnr > _pca_psnr(x, x, 16) - 1.0


@pytest.mark.parametrize("name,widths,rank", [("dense", (), 16), ("deep", (), 16),
                                               ("deep", (64, 16), 8)])
def test_dense_families_start_at_pca(name, widths, rank):
    """dense (a ReLU code) and deep (ReLU layers) start as exactly the model PCA gives the conv's
    linear path: same output on the training images; deep keeps at most half its narrowest
    layer's units of PCA. With pca_start=false nothing is started."""
    from aekit.data import load_dataset
    from aekit.models.pca_start import pca_start

    x = load_dataset("digits").train_x
    cfg = ModelConfig(name=name, in_channels=1, height=8, width=8, latent_dim=16, widths=widths)
    model = build_model(cfg)
    assert f"PCA-{rank} " in model.init_from_data(x, seed=0)
    start = pca_start(x, rank, seed=0)
    expected = torch.sigmoid(start.codes @ start.decode + start.logit_mean)  # (N, 64)
    with torch.inference_mode():
        out = model(x.float() / 255)["x_hat"].flatten(1)
    assert torch.allclose(out, expected, atol=1e-5)
    plain = build_model(dataclasses.replace(cfg, options={"pca_start": False}))
    assert plain.init_from_data(x, seed=0) is None


def test_pca_start_reads_uint8_and_float_images_alike():
    """The Python API keeps float input as float32 in [0, 1]; the start must not divide it by
    255 again."""
    from aekit.data import load_dataset
    from aekit.models.pca_start import pca_start

    x = load_dataset("digits").train_x
    a, b = pca_start(x, 8, seed=0), pca_start(x.float() / 255, 8, seed=0)
    assert torch.allclose(a.mean, b.mean, atol=1e-6)
    assert torch.allclose(a.decode, b.decode, atol=1e-4)


def test_default_conv_beats_pca_on_small_images():
    """8x8 digits, a 32-number code (PCA-32 keeps half the pixels' dimensions): the plain conv
    ended 0.5 dB under PCA-32 even after 3,000 steps; started at PCA it passes it in 300."""
    from aekit.data import load_dataset

    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="conv", in_channels=1, height=8, width=8))
    model.init_from_data(ds.train_x, seed=0)
    fit(model, ds.train_x, TrainConfig(dataset="array", steps=300, seed=0), progress=False)
    target = ds.test_x.float() / 255
    with torch.inference_mode():
        psnr = 10 * math.log10(1 / float((model(target)["x_hat"] - target).pow(2).mean()))
    assert psnr > _pca_psnr(ds.train_x, ds.test_x, 32)


def test_detector_trains_a_collapsed_network_again_from_the_data_start(strokes, capsys,
                                                                         monkeypatch):
    """The detector's networks start plain (their scores were measured so); on sparse strokes
    the plain start collapses, that run ends as soon as the collapse check sees it, and the
    network is trained again from the mean output: no network it keeps is collapsed, and it
    says what it did."""
    import aekit.train.loop as loop
    from aekit.anomaly.detector import Detector
    from aekit.train.health import CollapseCheck

    runs = []
    real_fit = loop.fit

    def recording_fit(module, x, cfg, **kw):
        result = real_fit(module, x, cfg, **kw)
        runs.append((kw.get("stop_on_collapse", False), cfg.epochs, result))
        return result

    monkeypatch.setattr(loop, "fit", recording_fit)
    train_x, test_x = strokes
    det = Detector(epochs=12, latent_epochs=12, batch_size=32).fit(train_x[:512])
    assert det.restarts_ >= 1 and det.basic_metrics()["restarts"] == det.restarts_
    lost = [(epochs, r) for plain, epochs, r in runs if plain and r.warnings]
    assert len(lost) == det.restarts_
    assert all(r.stopped_early and len(r.history) < epochs for epochs, r in lost)
    check = CollapseCheck(test_x)
    assert [check(net, torch.device("cpu"), 10_000, final=False)
            for net in det.members_ + det.latent_members_] == [None, None]
    assert gain_over_mean_db(det.latent_members_[0], train_x, test_x) >= 1.0  # the restarted
    err = capsys.readouterr().err
    assert "collapsed from the plain start; training it again" in err
    # images with a mid-grey mean train from the plain start, never again
    grey = torch.randint(60, 200, (64, 1, 16, 16), dtype=torch.uint8)
    assert Detector(epochs=2, latent_epochs=2, batch_size=32).fit(grey).restarts_ == 0

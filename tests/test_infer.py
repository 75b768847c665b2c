"""The fast inference path (aekit.infer): every candidate equals eager within 1e-5, failing or
differing candidates are dropped, the choice is cached and can be turned off. No timing
assertions: speed lives in bench/inference.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

import aekit
from aekit import infer
from aekit.config import ModelConfig
from aekit.models import build_model
from aekit.models.layers import Resize, UpConv
from tests.conftest import make_blobs

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
TOL = infer.TOLERANCE


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(infer.ENV, raising=False)
    infer.clear()
    yield
    infer.clear()


def tiny(name: str, shape=(1, 16, 16), latent: int = 6, widths=(4, 8), **options) -> nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, in_channels=shape[0], height=shape[1], width=shape[2],
                      latent_dim=latent, widths=widths, options=options)
    return build_model(cfg).eval()


def part_input(model: nn.Module, part: str, batch: int, seed: int = 0) -> torch.Tensor:
    x = torch.rand(batch, *model.cfg.shape, generator=torch.Generator().manual_seed(seed))
    if part == "decode":
        with torch.no_grad():
            return model.encode(x)
    return x


def reference(model: nn.Module, part: str, x: torch.Tensor):
    with torch.inference_mode():
        return infer.eager(model, part)(x)


MODELS = {
    "conv": lambda: tiny("conv"),
    "conv-odd": lambda: tiny("conv", shape=(3, 15, 13), widths=(4, 6)),  # non-2x resizes
    "conv-spatial": lambda: tiny("conv", shape=(2, 16, 16), latent=3, spatial=True),
    "dense": lambda: tiny("dense", widths=()),
    "unet": lambda: tiny("unet"),
    "unet-bn": lambda: tiny("unet", norm=True),
    "vae": lambda: tiny("vae", widths=(4, 8), backbone="conv"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_candidate_equals_eager(name):
    model = MODELS[name]()
    for part in infer.PARTS:
        x = part_input(model, part, 5)
        ref = reference(model, part, x)
        out, report = infer.select(model, part, x)
        assert infer.max_abs_diff(out, ref) == 0.0  # select returns eager's own output
        assert report["chosen"] in report["candidates"]
        for cand, info in report["candidates"].items():
            if "error" not in info:
                assert info["max_abs_diff"] <= TOL, (name, part, cand)
        if HAS_ORT:
            assert "seconds" in report["candidates"]["onnxruntime"], report
        # The cached choice, now on new batches of other sizes in the same bucket.
        for batch, seed in ((5, 1), (7, 2)):
            x2 = part_input(model, part, batch, seed)
            got = infer.run(model, part, x2)
            assert infer.max_abs_diff(got, reference(model, part, x2)) <= TOL, (name, part)
        assert infer.chosen(model, part, 5) == report["chosen"]


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_onnxruntime_is_measured_only_for_small_batches():
    # Level with the rewrite at large batches, and an export plus a session cost memory.
    model = tiny("conv")
    for batch, expected in ((1, True), (8, True), (9, False), (256, False)):
        x = part_input(model, "reconstruct", batch)
        assert ("onnxruntime" in infer.candidates(model, "reconstruct", x)) == expected, batch


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_sessions_that_lost_are_not_kept():
    model = tiny("conv")
    x = part_input(model, "reconstruct", 1)
    _, report = infer.select(model, "reconstruct", x)
    assert "seconds" in report["candidates"]["onnxruntime"], report
    assert not [k for k in infer._STATES[model].built if k.startswith("ort/")]
    got = infer.run(model, "reconstruct", x)  # the choice, whatever it is, still runs
    assert infer.max_abs_diff(got, reference(model, "reconstruct", x)) <= TOL
    x8 = part_input(model, "reconstruct", 8)  # another bucket measures from the cached bytes
    assert "seconds" in infer.select(model, "reconstruct", x8)[1]["candidates"]["onnxruntime"]


def test_rewrite_replaces_exact_2x_upconvs_and_keeps_the_rest():
    model = tiny("conv", shape=(1, 16, 16), widths=(4, 8))
    rw = infer.rewrite(model)
    assert sum(isinstance(m, infer.PhaseUpConv) for m in rw.modules()) == 2
    assert not any(isinstance(m, infer.PhaseUpConv) for m in model.modules())  # a copy
    assert infer.rewrite(tiny("dense", widths=())) is None  # nothing to change


@pytest.mark.parametrize("c_out", [1, 3, 16])  # pixel-shuffle form up to 8 outputs, then convT
@pytest.mark.parametrize("size_in,size_out", [((7, 7), (14, 14)), ((7, 5), (14, 5)),
                                              ((5, 7), (5, 14)), ((7, 7), (13, 13)),
                                              ((6, 6), (6, 6))])
def test_phase_upconv_equals_resize_then_conv(c_out, size_in, size_out):
    torch.manual_seed(1)
    up = UpConv(8, c_out, size_out).eval()
    phase = infer.PhaseUpConv(up[0], up[1])
    x = torch.randn(3, 8, *size_in)
    with torch.inference_mode():
        want = up(x)
        for fmt in (torch.contiguous_format, torch.channels_last):
            got = phase(x.contiguous(memory_format=fmt))
            assert got.shape == want.shape
            assert (got - want).abs().max() <= TOL


def test_phase_upconv_in_a_sequential_of_a_seed_preset():
    torch.manual_seed(0)
    seq = nn.Sequential(Resize((8, 8)), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU()).eval()
    rw = copy_rewrite(seq)
    x = torch.rand(2, 4, 4, 4)
    with torch.inference_mode():
        assert (rw(x) - seq(x)).abs().max() <= TOL


def copy_rewrite(seq: nn.Sequential) -> nn.Module:
    holder = nn.Module()
    holder.body = seq
    rw = infer.rewrite(holder)
    assert isinstance(rw.body[0], infer.PhaseUpConv)
    return rw.body


def test_a_failing_or_differing_candidate_is_dropped(monkeypatch):
    model = tiny("conv")
    real = infer.candidates

    def rigged(model, part, x, threads=None, onnx=True):
        out = real(model, part, x, threads, onnx=False)

        def broken():
            raise RuntimeError("no kernel")

        def wrong():  # instant, and off by 1e-3: must never be chosen
            return lambda x: x * 0 + 1e-3

        return {**out, "broken": broken, "wrong": wrong}

    monkeypatch.setattr(infer, "candidates", rigged)
    x = part_input(model, "reconstruct", 4)
    _, report = infer.select(model, "reconstruct", x)
    cands = report["candidates"]
    assert cands["broken"]["error"].startswith("RuntimeError: no kernel")
    assert "differs from eager" in cands["wrong"]["error"]
    assert report["chosen"] not in ("broken", "wrong")


def test_rewrite_failure_falls_back(monkeypatch):
    model = tiny("conv")

    def boom(model):
        raise ValueError("cannot copy")

    monkeypatch.setattr(infer, "rewrite", boom)
    x = part_input(model, "reconstruct", 4)
    out, report = infer.select(model, "reconstruct", x, onnx=False)
    assert "cannot copy" in report["candidates"]["rewrite"]["error"]
    assert report["chosen"] == "eager"
    assert infer.max_abs_diff(infer.run(model, "reconstruct", x), out) == 0.0


def test_a_chosen_path_that_raises_falls_back_to_eager(monkeypatch):
    model = tiny("conv")
    x = part_input(model, "encode", 4)
    infer.select(model, "encode", x, onnx=False)
    state = infer._STATES[model]
    for key in state.chosen:
        state.chosen[key] = ("rigged", lambda x: (_ for _ in ()).throw(RuntimeError("gone")))
    assert infer.max_abs_diff(infer.run(model, "encode", x), reference(model, "encode", x)) == 0


def test_measured_only_where_it_pays(monkeypatch):
    model = tiny("dense", widths=())
    x = part_input(model, "encode", 3)
    for _ in range(5):
        infer.run(model, "encode", x)
        assert infer.chosen(model, "encode", 3) is None  # small one-off jobs stay eager
    monkeypatch.setattr(infer, "SELECT_AFTER_S", 1e-9)  # now the time spent is enough
    infer.run(model, "encode", x)
    assert infer.chosen(model, "encode", 3) is not None
    # A large announced total: measured on the second batch (the first gives eager's speed).
    monkeypatch.setattr(infer, "SELECT_AFTER_S", 1.0)
    z = part_input(model, "decode", 3)
    infer.run(model, "decode", z, total=10**9)
    assert infer.chosen(model, "decode", 3) is None
    infer.run(model, "decode", z, total=10**9)
    assert infer.chosen(model, "decode", 3) is not None


@pytest.mark.parametrize("how", ["env", "argument"])
def test_opt_out(monkeypatch, how):
    model = tiny("conv")
    x = part_input(model, "reconstruct", 4)
    kwargs = {}
    if how == "env":
        monkeypatch.setenv(infer.ENV, "0")
    else:
        kwargs["fast"] = False
    monkeypatch.setattr(infer, "SELECT_AFTER_S", 0.0)
    for _ in range(3):
        out = infer.run(model, "reconstruct", x, total=10**6, **kwargs)
        assert torch.equal(out, reference(model, "reconstruct", x))
    assert infer.chosen(model, "reconstruct", 4) is None and not infer.reports(model)


def test_not_eligible_stays_eager(monkeypatch):
    monkeypatch.setattr(infer, "SELECT_AFTER_S", 0.0)
    model = tiny("conv")
    x = part_input(model, "reconstruct", 4)
    model.train()  # training mode: dropout, sampling, batch statistics
    infer.run(model, "reconstruct", x, total=10**6)
    assert infer.chosen(model, "reconstruct", 4) is None
    model.eval().double()  # not float32
    out = infer.run(model, "reconstruct", x.double(), total=10**6)
    assert out.dtype == torch.float64 and infer.chosen(model, "reconstruct", 4) is None


def test_new_weights_start_over():
    model = tiny("conv")
    x = part_input(model, "reconstruct", 4)
    infer.select(model, "reconstruct", x, onnx=False)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    assert infer.chosen(model, "reconstruct", 4) is not None  # not looked at until used
    out = infer.run(model, "reconstruct", x)  # the old copy must not answer
    assert infer.max_abs_diff(out, reference(model, "reconstruct", x)) <= TOL
    assert infer.chosen(model, "reconstruct", 4) is None


def test_the_cache_does_not_keep_a_model_alive():
    import gc

    model = tiny("conv")
    x = part_input(model, "reconstruct", 3)
    for part in ("reconstruct", "encode"):
        infer.select(model, part, x)
    assert len(infer._STATES) == 1
    del model
    gc.collect()
    assert len(infer._STATES) == 0


def test_one_thread_variants():
    model = tiny("conv")
    x = part_input(model, "reconstruct", 1)
    prev = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, report = infer.select(model, "reconstruct", x)
        assert {"eager/1 thread", "rewrite/1 thread"} <= set(report["candidates"])
        assert torch.get_num_threads() == 2  # restored
        for info in report["candidates"].values():
            assert info["max_abs_diff"] <= TOL
    finally:
        torch.set_num_threads(prev)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_eager(monkeypatch):
    monkeypatch.setattr(infer, "SELECT_AFTER_S", 0.0)
    model = tiny("conv").cuda()
    x = part_input(model.cpu(), "reconstruct", 4).cuda()
    model.cuda()
    out = infer.run(model, "reconstruct", x, total=10**6)
    assert out.is_cuda and infer.chosen(model, "reconstruct", 4) is None


# --- the callers give the same results with the fast path as without -----------------------


@pytest.fixture
def eager_first(monkeypatch):
    """Run a caller twice: fast path off, then on and measuring on the first batch."""
    def both(fn):
        monkeypatch.setenv(infer.ENV, "0")
        slow = fn()
        monkeypatch.setenv(infer.ENV, "1")
        monkeypatch.setattr(infer, "SELECT_AFTER_S", 0.0)
        infer.clear()
        return slow, fn()
    return both


def test_api_gives_the_same_results(eager_first):
    x = make_blobs(40, size=16)
    ae = aekit.Autoencoder(model="conv", latent_dim=4, widths=(4, 8), epochs=1,
                           batch_size=20).fit(x)
    for call in (ae.transform, ae.reconstruct, lambda X: ae.inverse_transform(ae.transform(X))):
        slow, fast = eager_first(lambda call=call: call(x[:9]))
        assert np.abs(np.asarray(slow) - np.asarray(fast)).max() <= TOL
    assert infer.reports(ae.module_)  # the fast path did measure


def test_restorer_and_detector_give_the_same_results(eager_first):
    from aekit.anomaly.detector import Detector
    from aekit.data.corrupt import parse_corruption
    from aekit.restore.restorer import Restorer

    model = tiny("unet")
    r = Restorer(model, parse_corruption("gaussian:0.2"), model.cfg.shape, batch_size=4)
    x = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    slow, fast = eager_first(lambda: r.predict(x))
    assert (slow - fast).abs().max() <= TOL

    det = Detector(scores="mse+ssim+knn", model="conv", latent_dim=4, widths=(4, 8), epochs=1,
                   batch_size=32)
    det.fit(make_blobs(60, size=16))
    probe = make_blobs(10, size=16, seed=5)
    slow, fast = eager_first(lambda: (det.score_samples(probe), det.reconstruct(probe),
                                      det.error_maps(probe)))
    for a, b in zip(slow, fast, strict=True):
        assert np.abs(a - b).max() <= 1e-4  # scores are sums of normalised parts

"""The two-domain `swap` model, paired datasets and `aekit swap` (tiny synthetic domains)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.cli import main
from aekit.config import ModelConfig, TrainConfig
from aekit.core import load_model, read_metrics
from aekit.core.training import train_run
from aekit.data import load_pair
from aekit.data.pair import pair_indices
from aekit.errors import ConfigError
from aekit.models import build_model
from aekit.train.checkpoint import load_checkpoint
from tests.conftest import make_blobs

SMALL = ["--epochs", "2", "--batch-size", "16", "--latent-dim", "8", "--widths", "8,16",
         "--baseline", "none", "--quiet", "--threads", "1"]


def _npz(path: Path, n_train: int, n_test: int, seed: int, invert: bool = False,
         size: int = 12, channels: int = 1) -> str:
    x = make_blobs(n_train + n_test, size=size, channels=channels, seed=seed)
    x = 255 - x if invert else x
    np.savez(path, x_train=x[:n_train], x_test=x[n_train:])
    return f"npz:{path}"


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> tuple[str, str]:
    """A: bright blobs (96 train / 32 test); B: dark blobs on white (64 / 16), other positions."""
    d = tmp_path_factory.mktemp("domains")
    return _npz(d / "a.npz", 96, 32, seed=0), _npz(d / "b.npz", 64, 16, seed=1, invert=True)


@pytest.fixture(scope="module")
def swap_run(tmp_path_factory, domains) -> Path:
    run = tmp_path_factory.mktemp("runs") / "swap"
    a, b = domains
    assert main(["train", "--model", "swap", "--dataset", a, "--dataset-b", b, *SMALL,
                 "--out", str(run)]) == 0
    return run


def _png(path: Path, hw: tuple[int, int], mode: str = "L") -> Path:
    rng = np.random.default_rng(0)
    shape = (*hw, 3) if mode == "RGB" else hw
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def test_pairs_cycle_the_smaller_domain_and_stack_channels(domains):
    ia, ib = pair_indices(5, 3, seed=0)
    assert ia.tolist() == [0, 1, 2, 3, 4] and sorted(ib.tolist()) in ([0, 0, 1, 1, 2],
                                                                      [0, 1, 1, 2, 2],
                                                                      [0, 0, 1, 2, 2])
    ia, ib = pair_indices(2, 4, seed=0)
    assert ia.tolist() == [0, 1, 0, 1] and sorted(ib.tolist()) == [0, 1, 2, 3]
    ds = load_pair(*domains)
    assert ds.shape == (2, 12, 12) and len(ds.train_x) == 96 and len(ds.test_x) == 32
    a = np.load(domains[0].removeprefix("npz:"))["x_train"]
    assert torch.equal(ds.train_x[:, :1], torch.from_numpy(a))  # A in order, channels [:C]
    assert ds.train_x[:, 1:].float().mean() > 128  # B (dark blobs on white) in channels [C:]


def test_training_writes_a_complete_swap_run(swap_run):
    cfg = json.loads((swap_run / "config.json").read_text())
    assert cfg["model"]["name"] == "swap" and cfg["model"]["in_channels"] == 2
    assert cfg["train"]["dataset_b"].startswith("npz:")
    m = read_metrics(swap_run)
    assert m["code_size"] == 16 and np.isfinite(m["test"]["psnr"])  # two 8-unit codes
    per_domain = [m["domains"][d]["mse"] for d in "ab"]  # each domain's own reconstruction
    assert np.isclose(np.mean(per_domain), m["test"]["mse"], rtol=1e-3)
    for name in ("swaps.png", "reconstructions.png", "loss.png", "model.safetensors"):
        assert (swap_run / name).is_file(), name
    with Image.open(swap_run / "swaps.png") as im:  # four rows: A, A->B, B, B->A
        grid = Image.open(swap_run / "reconstructions.png")
        assert im.height > 3 * im.width / 10 and grid.height > 3 * grid.width / 10
    assert main(["eval", str(swap_run)]) == 0


def test_swap_to_own_domain_is_the_reconstruction(swap_run, domains):
    model, _ = load_model(swap_run)
    x = load_pair(*domains).test_x[:8].float() / 255
    with torch.inference_mode():
        rec = model(x)["x_hat"]
    xa, xb = model.split_domains(x)
    assert torch.allclose(model.swap(xa, "a", "a"), rec[:, :1], atol=1e-5)
    assert torch.allclose(model.swap(xb, "b", "b"), rec[:, 1:], atol=1e-5)
    assert model.swap(xa, "b").shape == xa.shape
    assert model.encode(x).shape == (8, 2, 8)  # (N, domain, code)


def test_aekit_swap_writes_pngs_of_the_input_size_and_skips_bad_files(swap_run, tmp_path,
                                                                      capsys):
    src = tmp_path / "in"
    src.mkdir()
    _png(src / "same.png", (12, 12))
    _png(src / "big.png", (20, 16))
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    code = main(["swap", str(swap_run), str(src), "--to", "b", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "broken.png" in err
    for name, hw in (("same.png", (12, 12)), ("big.png", (20, 16))):
        with Image.open(out / name) as im:
            assert (im.height, im.width) == hw and im.mode == "L"
    assert not (out / "broken.png").exists()
    assert main(["swap", str(swap_run), str(src / "same.png"), "--to", "a", "-o",
                 str(out)]) == 0
    # A colour file for a grey model: skipped with the flag that takes it, or converted.
    (src / "broken.png").unlink()
    _png(src / "rgb.png", (12, 12), "RGB")
    capsys.readouterr()
    assert main(["swap", str(swap_run), str(src), "--to", "b", "-o", str(tmp_path / "o2")]) == 1
    assert "rgb.png: image is 3x12x12" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "rgb.png").exists()
    assert main(["swap", str(swap_run), str(src), "--to", "b", "--resize", "-o",
                 str(tmp_path / "o3")]) == 0
    assert "aekit: 1 image(s) converted to 1 channel(s)" in capsys.readouterr().err
    with Image.open(tmp_path / "o3" / "rgb.png") as im:
        assert im.mode == "L"
    # A grey image with transparency keeps it.
    alpha = np.zeros((12, 12), np.uint8)
    alpha[6:] = 255
    la = Image.open(_png(src / "la.png", (12, 12))).convert("LA")
    la.putalpha(Image.fromarray(alpha))
    la.save(src / "la.png")
    assert main(["swap", str(swap_run), str(src / "la.png"), "--to", "b", "-o",
                 str(tmp_path / "o4")]) == 0
    with Image.open(tmp_path / "o4" / "la.png") as im:
        assert im.mode == "LA" and np.array_equal(np.asarray(im)[..., 1], alpha)


def test_aekit_swap_bad_inputs_are_one_line_errors(swap_run, domains, tmp_path, capsys):
    img = _png(tmp_path / "x.png", (12, 12))
    rgb = _png(tmp_path / "rgb.png", (12, 12), "RGB")
    cases = [
        (["swap", str(swap_run), str(img), "--to", "c", "-o", str(tmp_path / "o")], "--to 'c'"),
        (["swap", str(swap_run), str(rgb), "--to", "a", "-o", str(tmp_path / "o")],
         "rgb.png: image is 3x12x12 but the model in"),
    ]
    conv = tmp_path / "conv"
    assert main(["train", "--model", "conv", "--dataset", domains[0], "--epochs", "1",
                 "--latent-dim", "4", "--widths", "4", "--baseline", "none", "--quiet",
                 "--out", str(conv)]) == 0
    cases.append((["swap", str(conv), str(img), "--to", "b", "-o", str(tmp_path / "o")],
                   "not a domain-translation model"))
    cases.append((["reconstruct", str(swap_run), str(img), "-o", str(tmp_path / "o")],
                   "aekit swap"))
    for argv, text in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert text in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()  # nothing written


def test_training_settings_that_do_not_pair_are_errors(domains, tmp_path, capsys):
    a, b = domains
    other_size = _npz(tmp_path / "big.npz", 16, 4, seed=2, size=14)
    rgb = _npz(tmp_path / "rgb.npz", 16, 4, seed=2, channels=3)
    cases = [
        (["--model", "conv", "--dataset", a, "--dataset-b", b], "--dataset-b is for two-domain"),
        (["--model", "swap", "--dataset", a], "--dataset-b B"),
        (["--model", "swap", "--dataset", a, "--dataset-b", other_size], "--image-size"),
        (["--model", "swap", "--dataset", a, "--dataset-b", rgb], "same channel count"),
    ]
    for i, (argv, text) in enumerate(cases):
        capsys.readouterr()
        out = tmp_path / f"r{i}"
        assert main(["train", *argv, *SMALL, "--out", str(out)]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert text in err and len(err.splitlines()) == 1, err
        assert not out.exists()
    # --image-size resizes both domains, so differently sized ones pair.
    assert main(["train", "--model", "swap", "--dataset", a, "--dataset-b", other_size,
                 "--image-size", "10x10", *SMALL, "--epochs", "1", "--out",
                 str(tmp_path / "sized")]) == 0


def test_resume_of_a_swap_run_equals_the_uninterrupted_run(domains, tmp_path):
    a, b = domains
    mcfg = ModelConfig(name="swap", latent_dim=4, widths=(4, 8))
    tcfg = TrainConfig(dataset=a, dataset_b=b, epochs=2, batch_size=32, seed=1)
    quiet = {"progress": False, "log": lambda s: None, "baseline": "none"}
    train_run(tmp_path / "full", mcfg, tcfg, **quiet)

    import aekit.train.loop as loop

    class Stop(Exception):
        pass

    original = loop.fit

    def interrupted(*args, **kw):
        def stop(row):
            if row["epoch"] == 1:
                raise Stop
        return original(*args, **{**kw, "on_epoch": stop})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "fit", interrupted)
        with pytest.raises(Stop):
            train_run(tmp_path / "cut", mcfg, tcfg, **quiet)
    assert load_checkpoint(tmp_path / "cut")["meta"]["epoch"] == 1
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet", "--baseline",
                 "none"]) == 0
    full, _ = load_model(tmp_path / "full")
    cut, _ = load_model(tmp_path / "cut")
    for (k, va), vb in zip(full.state_dict().items(), cut.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert (tmp_path / "cut" / "swaps.png").is_file()


def test_model_options_and_each_decoder_starts_at_its_domain_mean():
    with pytest.raises(ConfigError, match="odd"):
        build_model(ModelConfig(name="swap", in_channels=3))
    with pytest.raises(ConfigError, match="unknown options"):
        build_model(ModelConfig(name="swap", in_channels=2, options={"beta": 1}))
    torch.manual_seed(0)
    m = build_model(ModelConfig(name="swap", in_channels=2, height=12, width=12, latent_dim=4,
                                widths=(4, 8), options={"confusion": 1.0}))
    mean = torch.stack([torch.full((12, 12), 0.2), torch.full((12, 12), 0.8)])  # (2C, H, W)
    assert m.init_output_bias(mean)
    x = torch.rand(4, 2, 12, 12)
    m.train()
    out = m(x)
    assert out["x_hat"].shape == x.shape and out["z"].shape == (4, 2, 4)
    ((out["x_hat"] - x) ** 2).mean().backward()
    assert all(p.grad is not None for p in m.parameters())
    logit = torch.logit(torch.tensor([0.2, 0.8]))
    for domain, value in zip("ab", logit, strict=True):
        m._bias_domain = domain
        assert torch.allclose(m.output_bias(), value.expand(1), atol=1e-5)


def test_confusion_term_adds_its_gradient_to_the_loss():
    from aekit.models.swap import confusion_penalty

    cfg = ModelConfig(name="swap", in_channels=2, height=12, width=12, latent_dim=4,
                      widths=(4, 8), options={"confusion": 0.5})
    torch.manual_seed(0)
    m = build_model(cfg).train()
    plain = build_model(dataclasses.replace(cfg, options={"confusion": 0.0})).train()
    plain.load_state_dict(m.state_dict())
    x = torch.rand(6, 2, 12, 12)
    ((m(x)["x_hat"] - x) ** 2).mean().backward()
    out = plain(x)
    (((out["x_hat"] - x) ** 2).mean() + 0.5 * confusion_penalty(out["z"])).backward()
    for (name, p), q in zip(m.named_parameters(), plain.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    assert build_model(dataclasses.replace(cfg, options={})).confusion == 0.03  # the default
    z = torch.randn(64, 2, 4)
    assert confusion_penalty(z) < confusion_penalty(torch.stack([z[:, 0], z[:, 1] + 2], 1))
    assert torch.isclose(confusion_penalty(z), confusion_penalty(z * 0.01), atol=1e-5)

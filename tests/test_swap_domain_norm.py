"""Per-domain affine maps in the swap model's shared encoder (`domain_norm`) and the images'
own domain (`source`, `aekit swap --from`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.cli import main
from aekit.config import ModelConfig
from aekit.core import load_model
from aekit.errors import ConfigError
from aekit.models import build_model
from aekit.models.swap import DomainAffine, match_means
from aekit.swap import Translator
from tests.conftest import make_blobs

SMALL = ["--epochs", "2", "--batch-size", "16", "--latent-dim", "8", "--widths", "8,16",
         "--baseline", "none", "--quiet", "--threads", "1"]
CFG = ModelConfig(name="swap", in_channels=2, height=12, width=12, latent_dim=4, widths=(4, 8))


def _model(norm: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(dataclasses.replace(CFG, options={"domain_norm": norm}))


def test_match_means_turns_an_inverted_domain_back_and_keeps_unrelated_ones_upright():
    torch.manual_seed(0)
    a = torch.rand(2, 8, 8)
    scale, shift = match_means(a, 1 - a)  # B is A's negative
    assert torch.allclose(scale, torch.tensor([-1.0, -1.0]), atol=1e-5)
    assert torch.allclose(scale.view(2, 1, 1) * (1 - a) + shift.view(2, 1, 1), a, atol=1e-5)
    scale, shift = match_means(a, 0.5 * a + 0.1)  # same polarity, half the contrast
    assert torch.allclose(scale, torch.tensor([2.0, 2.0]), atol=1e-5)
    assert torch.allclose(shift, torch.tensor([-0.2, -0.2]), atol=1e-5)
    b = torch.rand(2, 8, 8)  # unrelated layout: |r| small, no flip
    assert (match_means(a, b)[0] > 0).all()
    flat = torch.full((2, 8, 8), 0.3)  # a flat mean says nothing about the scale
    assert torch.allclose(match_means(a, flat)[0], torch.ones(2))


def test_domain_affine_applies_each_domains_map_to_its_half():
    aff = DomainAffine(3)
    with torch.no_grad():
        aff.scale.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 1.0]]))
        aff.shift.copy_(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, -2.0]]))
    x = torch.randn(4, 3, 5, 5)
    both = aff(x, None)  # first 2 images are A's, last 2 B's
    assert torch.allclose(both[:2], aff(x[:2], 0)) and torch.allclose(both[2:], aff(x[2:], 1))
    assert torch.allclose(aff(x, 1)[:, 0], 1 - x[:, 0])
    code = torch.randn(4, 3)  # a vector code (N, D) too
    assert torch.allclose(aff(code, None)[2:], aff(code[2:], 1))


@pytest.mark.parametrize("norm", ["input", "layers"])
def test_domain_norm_model_encodes_each_domain_with_its_own_maps(norm):
    m = _model(norm).eval()
    mean = torch.stack([torch.linspace(0, 1, 144).view(12, 12),
                        1 - torch.linspace(0, 1, 144).view(12, 12)])  # B: A's negative
    assert m.init_output_bias(mean)
    assert torch.allclose(m.domain_in.scale[1], torch.tensor([-1.0]), atol=1e-4)
    assert torch.allclose(m.domain_in.scale[0], torch.tensor([1.0]))  # A is the reference
    x = torch.rand(5, 2, 12, 12)
    xa, xb = m.split_domains(x)
    with torch.inference_mode():
        out = m(x)
    assert torch.allclose(m.swap(xa, "a", "a"), out["x_hat"][:, :1], atol=1e-5)
    assert torch.allclose(m.swap(xb, "b", "b"), out["x_hat"][:, 1:], atol=1e-5)
    # The default source is the other domain: A images drawn as B use A's maps.
    assert torch.allclose(m.swap(xa, "b"), m.swap(xa, "b", "a"))
    # B's map inverts its input, so B's negative of an A image gets the A image's code.
    with torch.inference_mode():
        assert torch.allclose(m.encode_domain(1 - xa, 1), m.encode_domain(xa, 0), atol=1e-5)
    with pytest.raises(ConfigError, match="--from 'c'"):
        m.swap(xa, "b", "c")
    n_layers = sum(isinstance(k, torch.nn.Conv2d | torch.nn.Linear) for k in m.encoder)
    assert (m.domain_layers is not None) == (norm == "layers")
    if norm == "layers":
        assert len(m.domain_layers) == n_layers
    m.train()
    ((m(x)["x_hat"] - x) ** 2).mean().backward()
    assert m.domain_in.scale.grad is not None and m.domain_in.scale.grad[1].abs().sum() > 0


def test_weights_saved_without_domain_maps_load_as_the_same_model():
    old = _model("none").eval()
    new = _model("layers", seed=1).eval()
    new.load_state_dict(old.state_dict())  # no domain_in / domain_layers keys: identity maps
    x = torch.rand(3, 2, 12, 12)
    with torch.inference_mode():
        assert torch.allclose(new(x)["x_hat"], old(x)["x_hat"], atol=1e-6)
    assert torch.equal(new.domain_in.scale, torch.ones(2, 1))


def test_aekit_swap_from_reconstructs_and_checks_the_domain(tmp_path, capsys):
    a = tmp_path / "a.npz"
    x = make_blobs(80, seed=0)
    np.savez(a, x_train=x[:64], x_test=x[64:])
    b = tmp_path / "b.npz"
    y = 255 - make_blobs(80, seed=1)
    np.savez(b, x_train=y[:64], x_test=y[64:])
    run = tmp_path / "run"
    assert main(["train", "--model", "swap", "--dataset", f"npz:{a}", "--dataset-b", f"npz:{b}",
                 "--option", "domain_norm=input", *SMALL, "--out", str(run)]) == 0
    model, _ = load_model(run)
    assert model.domain_in.scale[1].item() < 0  # started from the inverted mean images
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(y[70, 0]).save(src / "b0.png")
    t = Translator.load(run)
    xb = torch.from_numpy(y[70:71]).float() / 255
    for source, argv in ((None, []), ("b", ["--from", "b"])):  # default: B images drawn as A
        out = tmp_path / f"o{source}"
        capsys.readouterr()
        assert main(["swap", str(run), str(src), "--to", "a" if source is None else "b",
                     *argv, "-o", str(out)]) == 0
        assert ("reconstructed" in capsys.readouterr().out) == (source == "b")
        with Image.open(out / "b0.png") as im:
            got = torch.from_numpy(np.array(im)).float() / 255
        want = (model.swap(xb, "a", "b") if source is None else model.swap(xb, "b", "b"))[0, 0]
        assert (got - want).abs().max() <= 1 / 255 + 1e-6
        assert np.allclose(t.translate(y[70:71], "a" if source is None else "b", source),
                           want.numpy()[None, None], atol=1e-6)
    capsys.readouterr()
    assert main(["swap", str(run), str(src), "--to", "a", "--from", "x", "-o",
                 str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--from 'x'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="source='x'"):
        t.translate(y[:1], "a", "x")


def test_domain_norm_is_a_checked_option():
    with pytest.raises(ConfigError, match="domain_norm"):
        build_model(dataclasses.replace(CFG, options={"domain_norm": "batch"}))


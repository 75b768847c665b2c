"""Training-time augmentation: what it does to a batch, validation, and the CLI flag."""

from __future__ import annotations

import json

import pytest
import torch

from aekit.cli import main
from aekit.config import ModelConfig, TrainConfig
from aekit.data.augment import augment_batch
from aekit.errors import ConfigError
from aekit.models import build_model
from aekit.train.loop import fit
from tests.conftest import make_blobs


def test_hflip_mirrors_a_random_subset_and_is_seeded():
    x = torch.rand(64, 1, 5, 7)
    out = augment_batch(x, "hflip", torch.Generator().manual_seed(0))
    mirrored = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54  # about half, never all or none
    again = augment_batch(x, "hflip", torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)


def _dihedral(img: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips and quarter turns of a square image (C, H, W)."""
    return [torch.rot90(f, k, (-2, -1)) for f in (img, img.flip(-1)) for k in range(4)]


def test_dihedral_gives_each_image_one_of_its_symmetries_and_all_occur():
    x = torch.rand(200, 1, 5, 5)
    out = augment_batch(x, "dihedral", torch.Generator().manual_seed(1))
    which = []
    for o, xi in zip(out, x, strict=True):
        matches = [i for i, t in enumerate(_dihedral(xi)) if torch.equal(o, t)]
        assert len(matches) == 1
        which.append(matches[0])
    assert set(which) == set(range(8))
    # a non-square image keeps its shape: one of its 4 flips
    r = torch.rand(50, 1, 4, 6)
    out = augment_batch(r, "dihedral", torch.Generator().manual_seed(1))
    flips = lambda t: [t, t.flip(-1), t.flip(-2), t.flip(-1).flip(-2)]  # noqa: E731
    assert all(any(torch.equal(o, f) for f in flips(ri)) for o, ri in zip(out, r, strict=True))


def test_dihedral_colours_permutes_channels_and_inverts_seeded():
    from itertools import permutations

    x = torch.rand(300, 3, 4, 4)
    out = augment_batch(x, "dihedral+colours", torch.Generator().manual_seed(2))
    inverted, orders = 0, set()
    for o, xi in zip(out, x, strict=True):
        found = [(inv, p) for inv in (False, True) for p in permutations(range(3))
                 if any(torch.allclose(o, t) for t in _dihedral((1 - xi if inv else xi)[list(p)]))]
        assert len(found) == 1
        inverted += found[0][0]
        orders.add(found[0][1])
    assert 100 < inverted < 200 and len(orders) == 6
    again = augment_batch(x, "dihedral+colours", torch.Generator().manual_seed(2))
    assert torch.equal(out, again)
    # a grey image is only turned and maybe inverted
    g = torch.rand(20, 1, 3, 3)
    og = augment_batch(g, "dihedral+colours", torch.Generator().manual_seed(3))
    assert all(any(torch.allclose(o, t) for t in _dihedral(gi) + _dihedral(1 - gi))
               for o, gi in zip(og, g, strict=True))


@pytest.mark.parametrize("bad", ["flip", "HFLIP", "rotate"])
def test_unknown_augment_names_the_value(bad):
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment=bad)


@pytest.mark.parametrize("kind", ["hflip", "dihedral", "dihedral+colours"])
def test_augment_changes_training_deterministically(kind):
    x = torch.from_numpy(make_blobs(64))
    cfg = ModelConfig(name="dense", height=12, width=12, latent_dim=4)

    def train(augment: str) -> dict:
        torch.manual_seed(0)
        model = build_model(cfg)
        fit(model, x, TrainConfig(epochs=1, batch_size=16, dataset="array", augment=augment),
            progress=False)
        return model.state_dict()

    plain, flipped, flipped_again = train(""), train(kind), train(kind)
    assert any(not torch.equal(plain[k], flipped[k]) for k in plain)
    assert all(torch.equal(flipped[k], flipped_again[k]) for k in flipped)


def test_cli_stores_augment_in_the_run_config(tmp_path, tiny_npz):
    out = tmp_path / "run"
    rc = main(["train", "--model", "dense", "--dataset", tiny_npz, "--latent-dim", "4",
               "--epochs", "1", "--augment", "hflip", "--quiet", "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "config.json").read_text())["train"]["augment"] == "hflip"


def _oriented(n: int = 200) -> torch.Tensor:
    """Images with an 'up': a bright top band of random height over a dark bottom, uint8."""
    g = torch.Generator().manual_seed(0)
    rows = torch.arange(12).view(1, 12, 1)
    top = torch.randint(3, 8, (n, 1, 1), generator=g)
    img = (rows < top).float() * 200 + torch.rand(n, 12, 12, generator=g) * 40
    return img.round().to(torch.uint8)[:, None]  # (N, 1, 12, 12)


def _orientation_free(n: int = 200) -> torch.Tensor:
    """A blob anywhere in a range that every flip and quarter turn maps onto itself, uint8."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij")
    cy, cx = (2 + 7 * torch.rand(2, n, 1, 1, generator=g)).unbind(0)  # centres in [2, 9]
    img = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)  # (N, H, W)
    return (img * 255).round().to(torch.uint8)[:, None]  # (N, 1, 12, 12)


def _model(x: torch.Tensor, name: str = "dense"):
    c, h, w = x.shape[1:]
    return build_model(ModelConfig(name=name, in_channels=c, height=h, width=w, latent_dim=4))


def test_auto_turns_orientation_free_images_only():
    """Blobs anywhere in a symmetric range look the same turned (dihedral); images with a
    bright top do not (none). Both decisions are recorded as a concrete value."""
    from aekit.train.symmetry import SYMMETRY_MARGIN_DB, orientation_costs, resolve

    blobs, banded = _orientation_free(), _oriented()
    assert max(orientation_costs(blobs)) <= SYMMETRY_MARGIN_DB
    assert max(orientation_costs(banded)) > SYMMETRY_MARGIN_DB
    cfg = TrainConfig()
    assert cfg.augment == "auto"
    chosen, why = resolve(cfg, blobs, _model(blobs))
    assert chosen.augment == "dihedral" and "no preferred orientation" in why
    chosen, why = resolve(cfg, banded, _model(banded))
    assert chosen.augment == "none" and why == ""


@pytest.mark.parametrize("cfg", [TrainConfig(corrupt="gaussian:0.1"), TrainConfig(augment="none"),
                                 TrainConfig(augment=""), TrainConfig(augment="hflip")])
def test_auto_leaves_restoration_and_explicit_choices_alone(cfg):
    from aekit.train.symmetry import resolve

    blobs = _orientation_free()
    chosen, why = resolve(cfg, blobs, _model(blobs))
    assert chosen.augment == ("none" if cfg.augment == "auto" else cfg.augment) and why == ""


def test_auto_is_none_for_too_few_images():
    from aekit.train.symmetry import resolve

    blobs = _orientation_free(8)
    assert resolve(TrainConfig(), blobs, _model(blobs))[0].augment == "none"


def test_auto_must_be_decided_before_a_batch_is_augmented():
    with pytest.raises(ValueError, match="auto"):
        augment_batch(torch.rand(2, 1, 4, 4), "auto", torch.Generator())


def test_cli_records_the_automatic_choice_and_says_why(tmp_path, capsys):
    import numpy as np

    x = _orientation_free(128).numpy()
    np.savez(tmp_path / "free.npz", x_train=x[:96], x_test=x[96:])
    out = tmp_path / "run"
    assert main(["train", "--model", "dense", "--dataset", f"npz:{tmp_path / 'free.npz'}",
                 "--latent-dim", "4", "--epochs", "1", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["augment"] == "dihedral"
    assert "augment: dihedral" in capsys.readouterr().err  # the log goes to stderr


def test_the_estimator_records_the_automatic_choice():
    from aekit import Autoencoder

    banded = _oriented(64).numpy()
    ae = Autoencoder(model="dense", latent_dim=4, epochs=1).fit(banded)
    assert ae.train_config_.augment == "none"
    free = _orientation_free(64).numpy()
    ae = Autoencoder(model="dense", latent_dim=4, epochs=1).fit(free)
    assert ae.train_config_.augment == "dihedral"
    ae = Autoencoder(model="dense", latent_dim=4, epochs=1, augment="hflip").fit(free)
    assert ae.train_config_.augment == "hflip"

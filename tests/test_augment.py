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

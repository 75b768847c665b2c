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


@pytest.mark.parametrize("bad", ["flip", "HFLIP", "rotate"])
def test_unknown_augment_names_the_value(bad):
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment=bad)


def test_augment_changes_training_deterministically():
    x = torch.from_numpy(make_blobs(64))
    cfg = ModelConfig(name="dense", height=12, width=12, latent_dim=4)

    def train(augment: str) -> dict:
        torch.manual_seed(0)
        model = build_model(cfg)
        fit(model, x, TrainConfig(epochs=1, batch_size=16, dataset="array", augment=augment),
            progress=False)
        return model.state_dict()

    plain, flipped, flipped_again = train(""), train("hflip"), train("hflip")
    assert any(not torch.equal(plain[k], flipped[k]) for k in plain)
    assert all(torch.equal(flipped[k], flipped_again[k]) for k in flipped)


def test_cli_stores_augment_in_the_run_config(tmp_path, tiny_npz):
    out = tmp_path / "run"
    rc = main(["train", "--model", "dense", "--dataset", tiny_npz, "--latent-dim", "4",
               "--epochs", "1", "--augment", "hflip", "--quiet", "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "config.json").read_text())["train"]["augment"] == "hflip"

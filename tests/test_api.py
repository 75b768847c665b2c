"""The scikit-learn-style API: fit/transform/inverse_transform/save/load, numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import AekitError, DataError
from tests.conftest import make_blobs


@pytest.fixture(scope="module")
def fitted():
    x = make_blobs(160)[:, 0]  # (N, H, W) uint8
    return aekit.Autoencoder(model="conv", latent_dim=6, epochs=3, batch_size=32).fit(x), x


def test_fit_returns_self_and_sets_learned_attributes(fitted):
    ae, _ = fitted
    assert isinstance(ae, aekit.Autoencoder)
    assert ae.model_config_.shape == (1, 12, 12)
    assert len(ae.history_) == 3


def test_numpy_in_numpy_out_torch_in_torch_out(fitted):
    ae, x = fitted
    z = ae.transform(x[:5])
    assert isinstance(z, np.ndarray) and z.shape == (5, 6)
    rec = ae.inverse_transform(z)
    assert isinstance(rec, np.ndarray) and rec.shape == (5, 12, 12)  # (N, H, W) as fitted
    assert rec.min() >= 0 and rec.max() <= 1
    zt = ae.transform(torch.from_numpy(x[:5]).float() / 255)
    assert isinstance(zt, torch.Tensor)
    np.testing.assert_allclose(zt.numpy(), z, atol=1e-5)


def test_save_load_round_trip(fitted, tmp_path):
    ae, x = fitted
    ae.save(tmp_path / "ae")
    again = aekit.load(tmp_path / "ae")
    np.testing.assert_array_equal(again.transform(x[:4]), ae.transform(x[:4]))
    assert again.score(x[:20]) == pytest.approx(ae.score(x[:20]))


def test_validation_names_the_problem(fitted):
    ae, _ = fitted
    with pytest.raises(DataError, match="expects"):
        ae.transform(np.zeros((2, 10, 10), np.uint8))
    with pytest.raises(DataError, match="NaN"):
        ae.transform(np.full((2, 12, 12), np.nan, np.float32))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        ae.transform(np.full((2, 12, 12), 3.0, np.float32))
    with pytest.raises(AekitError, match="not fitted"):
        aekit.Autoencoder().transform(np.zeros((1, 12, 12), np.uint8))
    with pytest.raises(AekitError, match="epochs"):
        aekit.Autoencoder(epochs=0).fit(np.zeros((4, 12, 12), np.uint8))


def test_load_reads_the_old_seed_name(fitted, tmp_path):
    import json

    ae, x = fitted
    cfg = ae.save(tmp_path / "ae") / "config.json"
    doc = json.loads(cfg.read_text())
    doc["api"]["seed"] = doc["api"].pop("random_state")  # as aekit wrote it before
    for key in ("pixel_max_", "input_layout_"):
        del doc["api"][key]
    cfg.write_text(json.dumps(doc))
    again = aekit.load(tmp_path / "ae")
    assert again.random_state == 0 and again.pixel_max_ == 1.0
    assert again.reconstruct(x[:2]).shape == (2, 12, 12)  # (N, H, W) in, (N, H, W) out
    assert again.inverse_transform(again.transform(x[:2])).shape == (2, 1, 12, 12)  # unknown

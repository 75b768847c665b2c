"""The codec's deblocking filter: fitted on multi-block training images, exact, optional."""

from __future__ import annotations

import conftest
import numpy as np
import pytest
import torch
from conftest import decode_on_threads, make_blobs

import aekit
from aekit.codec import api, deblock
from aekit.config import ModelConfig
from aekit.models import build_model

CFG = ModelConfig(name="codec", in_channels=1, height=16, width=16, latent_dim=8,
                  options={"clusters": 3, "lambda": 0.01, "block": 4})


def fitted_codec(cfg: ModelConfig = CFG, fit_filter: bool = True):
    return conftest.fitted_codec(cfg, fit_filter=fit_filter)


@pytest.fixture(scope="module")
def codec():
    return fitted_codec()[0]


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    return torch.from_numpy(make_blobs(12, size=20, seed=7))  # not a multiple of the block


def test_filter_is_fitted_on_multi_block_images_and_reported() -> None:
    model, note = fitted_codec()
    r = deblock.radius(model.block_hw)
    assert model.deblock.shape == (len(deblock.FIT_STEPS), 2, 2 * r, 2 * r + 1)
    assert "deblocking filter and intra predictor fitted on 300 and 300 training images" in note


@pytest.mark.parametrize("quality", [-8, 0, 6])
def test_filter_lowers_the_error_of_held_out_images(codec, test_images, quality) -> None:
    x = test_images.float() / 255
    k, s, idx = codec.symbols(x, quality)
    plain = codec.reconstruct_symbols(k, s, idx, (1, 20, 20), quality, deblocked=False)
    decoded = api.decompress(api.compress(codec, test_images, quality=quality), codec,
                             like="torch")
    assert decoded.shape == test_images.shape
    assert float(((decoded - x) ** 2).mean()) < 0.8 * float(((plain - x) ** 2).mean())


def test_decode_equals_the_models_reconstruction_and_is_bit_exact(codec) -> None:
    images = torch.from_numpy(make_blobs(6, size=16, seed=3))
    data = api.compress(codec, images)
    with torch.inference_mode():
        expected = codec(images.float() / 255)["x_hat"]
    assert all(torch.equal(o, expected) for o in decode_on_threads(data, codec))


def test_one_block_training_images_fit_no_filter() -> None:
    cfg = ModelConfig(name="codec", in_channels=1, height=8, width=8, latent_dim=8,
                      options={"clusters": 2, "lambda": 0.01})
    model, note = fitted_codec(cfg)
    assert note is None and model.deblock.numel() == 0


def test_weights_without_a_filter_load_and_keep_their_fingerprint(codec) -> None:
    plain, _ = fitted_codec(fit_filter=False)
    state = {k: v for k, v in plain.state_dict().items() if k != "deblock"}  # older weights
    fresh = build_model(CFG)
    fresh.load_state_dict(state)
    fresh.eval()
    assert fresh.deblock.numel() == 0
    assert api.fingerprint(fresh) == api.fingerprint(plain)
    assert api.fingerprint(codec) != api.fingerprint(plain)
    fresh.load_state_dict(codec.state_dict())  # and a filter loads into a model built empty
    assert torch.equal(fresh.deblock, codec.deblock)


def test_training_again_drops_the_filter(codec) -> None:
    model, _ = fitted_codec()
    model.unfreeze()
    assert model.deblock.numel() == 0


def test_nearest_fitted_step() -> None:
    assert [deblock.FIT_STEPS[deblock.nearest(s)] for s in (-16, -6, -2, 1, 2, 3, 16)] == \
        [-8, -4, 0, 0, 0, 4, 8]


def test_the_estimator_fits_the_filter_and_saves_it(tmp_path) -> None:
    x = make_blobs(120, size=16, seed=1)[:, 0]  # (N, H, W) grey
    est = aekit.Autoencoder(model="codec", latent_dim=8, epochs=1, batch_size=32,
                            options={"clusters": 2, "block": 8, "lambda": 0.01},
                            val_fraction=0.0, random_state=0).fit(x)
    assert est.module_.deblock.numel() > 0
    est.save(tmp_path / "run")
    again = aekit.load(tmp_path / "run")
    assert torch.equal(again.module_.deblock, est.module_.deblock)
    data = api.compress(est, x[:3])
    assert np.array_equal(api.decompress(data, again), api.decompress(data, est))


def test_a_filter_of_the_wrong_shape_is_refused(codec) -> None:
    from aekit.errors import RunError

    state = dict(codec.state_dict())
    state["deblock"] = torch.zeros(2, 2, 3, 4, dtype=torch.float64)
    with pytest.raises(RunError, match="deblocking filter of shape"):
        build_model(CFG).load_state_dict(state)


def test_streamed_training_fits_the_filter_and_says_so(tmp_path, capsys) -> None:
    from PIL import Image

    from aekit.cli import main
    from aekit.core.io import load_model

    root = tmp_path / "imgs"
    root.mkdir()
    for i, img in enumerate(make_blobs(48, size=16, seed=4)[:, 0]):
        Image.fromarray(img).save(root / f"im{i:02d}.png")
    run = tmp_path / "run"
    assert main(["train", "--model", "codec", "--dataset", f"folder:{root}", "--stream",
                 "always", "--latent-dim", "8", "--option", "clusters=2", "--option",
                 "block=8", "--val-fraction", "0", "--epochs", "1", "--batch-size", "8",
                 "--out", str(run)]) == 0
    captured = capsys.readouterr()
    assert "deblocking filter and intra predictor fitted on" in captured.out + captured.err
    model, _ = load_model(run)
    assert model.deblock.numel() > 0

"""The codec's intra prediction: fitted on multi-block images, smaller files, the same pixels,
exact on any thread count, version 4 files, escapes, damaged weights refused."""

from __future__ import annotations

import zlib

import pytest
import torch
from conftest import decode_on_threads, fitted_codec, make_blobs
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.codec import api, intra
from aekit.codec.io import unpack
from aekit.codec.model import FITTED
from aekit.config import ModelConfig
from aekit.errors import FormatError, RunError
from aekit.models import build_model

CFG = ModelConfig(name="codec", in_channels=1, height=16, width=16, latent_dim=12,
                  options={"clusters": 2, "lambda": 0.01, "block": 4})
RGB = ModelConfig(name="codec", in_channels=3, height=16, width=16, latent_dim=24,
                  options={"clusters": 2, "lambda": 0.01, "block": 8})


def fitted(cfg: ModelConfig = CFG, n: int = 300):
    return fitted_codec(cfg, n)[0]


@pytest.fixture(scope="module")
def codec():
    return fitted()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.from_numpy(make_blobs(8, size=22, seed=5))  # not a multiple of the block


def without_intra(model):
    """The same model with its predictor and context tables dropped (version 3 coding)."""
    plain = build_model(model.cfg)
    plain.load_state_dict(model.state_dict())
    for name in FITTED:
        setattr(plain, name, getattr(plain, name).new_empty(0))
    plain._cache = {}
    return plain.eval()


def test_fitted_shapes_and_version_4_files(codec, images) -> None:
    p, f = intra.n_predicted(codec), intra.n_features(codec)
    assert p == 12 and f == 4 * 2 + 2 * 4 + 1
    assert codec.intra.shape == (intra.CASES, 2, f, p)
    assert codec.intra_levels.shape == (intra.CASES, 2, p)
    assert codec.cluster_context.shape == (2, 2) and codec.shift_delta.shape == (33,)
    assert int(codec.cluster_context.sum(1).min()) == 1 << 16
    assert unpack(api.compress(codec, images)).version == 4
    assert unpack(api.compress(without_intra(codec), images)).version == 3


@pytest.mark.parametrize("quality", [-8, 0, 8])
def test_decode_equals_the_reconstruction_and_files_are_smaller(codec, images, quality) -> None:
    x = images.float() / 255
    data = api.compress(codec, images, quality=quality)
    plain = api.compress(without_intra(codec), images, quality=quality)
    with torch.inference_mode():
        k, s, idx = codec.symbols(x, quality)
        expected = codec.reconstruct_symbols(k, s, idx, (1, 22, 22), quality)
    outs = decode_on_threads(data, codec)
    assert all(torch.equal(o, expected) for o in outs)  # bit-exact on 1, 2, 3 threads
    assert torch.equal(api.decompress(plain, without_intra(codec), like="torch"), expected)
    if quality >= 0:  # (on these tiny blob images the very lowest rates break even)
        assert len(data) < len(plain)
    assert api.compress(codec, images, quality=quality) == data  # deterministic


def test_colour_images_round_trip_exactly() -> None:
    model = fitted(RGB, n=200)
    x = torch.from_numpy(make_blobs(3, size=27, channels=3, seed=2))
    data = api.compress(model, x)
    with torch.inference_mode():
        k, s, idx = model.symbols(x.float() / 255)
        expected = model.reconstruct_symbols(k, s, idx, (3, 27, 27))
    assert torch.equal(api.decompress(data, model, like="torch"), expected)


def test_a_bad_predictor_escapes_and_still_decodes_exactly(codec, images) -> None:
    """Residuals far beyond their tables' support are coded through the escape table."""
    bad = build_model(codec.cfg)
    bad.load_state_dict(codec.state_dict())
    bad.eval()
    bad.intra = codec.intra * 0 + 50.0  # predicts absurd values: most residuals escape
    bad._cache = {}
    data = api.compress(bad, images)
    with torch.inference_mode():
        k, s, idx = bad.symbols(images.float() / 255)
        expected = bad.reconstruct_symbols(k, s, idx, (1, 22, 22))
    assert torch.equal(api.decompress(data, bad, like="torch"), expected)
    assert len(data) > len(api.compress(codec, images))


def test_one_block_images_fit_no_predictor() -> None:
    cfg = ModelConfig(name="codec", in_channels=1, height=8, width=8, latent_dim=8,
                      options={"clusters": 2, "lambda": 0.01})
    model = fitted(cfg, n=100)
    assert model.intra.numel() == 0 and model.intra_levels.numel() == 0


def test_a_version_that_does_not_match_the_model_is_refused(codec, images) -> None:
    data = bytearray(api.compress(codec, images[:1]))
    data[3] = 3  # claim version 3: this model writes 4
    body = bytes(data[:-4])
    forged = body + zlib.crc32(body).to_bytes(4, "big")
    with pytest.raises(FormatError, match="does not match the model"):
        api.decompress(forged, codec)


def test_predictor_survives_saving_and_a_damaged_one_is_refused(codec, tmp_path) -> None:
    fresh = build_model(CFG)
    fresh.load_state_dict(codec.state_dict())
    assert torch.equal(fresh.intra, codec.intra)
    assert api.fingerprint(fresh.eval()) == api.fingerprint(codec)
    assert api.fingerprint(without_intra(codec)) != api.fingerprint(codec)
    state = dict(codec.state_dict())
    state["intra"] = torch.zeros(3, 2, 5, 5, dtype=torch.float64)
    with pytest.raises(RunError, match="intra predictor and context tables of shapes"):
        build_model(CFG).load_state_dict(state)
    state = dict(codec.state_dict())
    state["intra"] = codec.intra.clone()
    state["intra"][0, 0, 0, 0] = float("nan")
    with pytest.raises(RunError, match="finite"):
        build_model(CFG).load_state_dict(state)


def test_training_again_drops_the_predictor() -> None:
    model = fitted()
    model.unfreeze()
    assert model.intra.numel() == 0


@settings(max_examples=200, deadline=None)
@given(level=st.integers(0, 63), r=st.integers(-4095, 4095))
def test_split_and_join_are_inverse(codec, level: int, r: int) -> None:
    u = torch.tensor([[level]])
    sym, esc = intra.split(codec, torch.tensor([[r]]), u)
    assert 0 <= int(sym) < int(codec.lengths[level])
    assert int(esc) < 1 << intra.ESCAPE_BITS
    assert int(intra.join(codec, sym, esc, u)) == r


@settings(max_examples=100, deadline=None)
@given(r=st.integers(-4095, 4095))
def test_a_one_symbol_table_escapes_with_the_sign(r: int) -> None:
    from types import SimpleNamespace

    tables = SimpleNamespace(offsets=torch.tensor([0, -1]), lengths=torch.tensor([1, 3]))
    for level in (0, 1):
        u = torch.tensor([[level]])
        sym, esc = intra.split(tables, torch.tensor([[r]]), u)
        assert 0 <= int(esc) < 1 << intra.ESCAPE_BITS or (level == 1 and abs(r) <= 0)
        assert int(intra.join(tables, sym, esc, u)) == r


def test_waves_follow_the_neighbours() -> None:
    lay = intra.layout(3, 4)
    assert lay["case"].tolist() == [0, 1, 1, 1, 2, 3, 3, 3, 2, 3, 3, 3]
    assert lay["wave"].reshape(3, 4).tolist() == [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5]]
    assert lay["left"][5] == 4 and lay["up"][5] == 1 and lay["left"][4] == -1


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=400))
def test_any_payload_bytes_decode_to_some_image(codec, data: bytes) -> None:
    """Corruption inside a payload is the CRC's to catch; past it, random bytes decode to some
    image or fail with a FormatError, nothing else."""
    from aekit.codec.payload import decode_payloads

    try:
        out = decode_payloads(codec, [data], (1, 13, 9), version=4)
    except FormatError:
        return
    assert out.shape == (1, 1, 13, 9) and bool(torch.isfinite(out).all())

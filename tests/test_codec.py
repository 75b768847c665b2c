"""The learned codec end to end: model, entropy coding, Python API, bad input, fuzzed decoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import decode_on_threads, make_blobs
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.codec import api
from aekit.codec.density import PRECISION, integer_table
from aekit.codec.entropy import TableCoder
from aekit.codec.io import AezFile, pack, unpack
from aekit.config import ModelConfig
from aekit.errors import ConfigError, DataError, FormatError
from aekit.models import build_model

CFG = ModelConfig(name="codec", in_channels=1, height=12, width=12, latent_dim=48,
                  options={"clusters": 3, "lambda": 0.003})


def tiny_codec(seed: int = 0, cfg: ModelConfig = CFG):
    torch.manual_seed(seed)
    model = build_model(cfg)
    data = torch.from_numpy(make_blobs(200, size=cfg.height, channels=cfg.in_channels,
                                       seed=seed))
    model.init_from_data(data, seed=seed)
    model.eval()
    model.finalize()
    return model


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.from_numpy(make_blobs(10, size=12, seed=7))  # uint8 (10, 1, 12, 12)


def test_roundtrip_equals_quantized_reconstruction(codec, images) -> None:
    data = api.compress(codec, images)
    x_hat = api.decompress(data, codec, like="torch")
    with torch.inference_mode():
        expected = codec(images.float() / 255)["x_hat"]
    assert torch.equal(x_hat, expected)
    assert x_hat.shape == images.shape
    assert float(((x_hat - images / 255.0) ** 2).mean()) < 0.01


def test_decoding_is_bit_exact_on_any_thread_count(codec, images) -> None:
    outs = decode_on_threads(api.compress(codec, images), codec)
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_encoding_is_deterministic_and_files_match_container(codec, images) -> None:
    assert api.compress(codec, images) == api.compress(codec, images)
    files = api.compress_each(codec, images)
    assert len(files) == len(images)
    container = unpack(api.compress(codec, images))
    for f, payload in zip(files, container.payloads, strict=True):
        single = unpack(f)
        assert single.count == 1 and single.payloads[0] == payload
    # single files decode to exactly the same images as the container (order-free matmul)
    singles = torch.cat([api.decompress(f, codec, like="torch") for f in files])
    assert torch.equal(singles, api.decompress(api.compress(codec, images), codec, like="torch"))


def test_estimated_bits_match_real_payload_bits(codec, images) -> None:
    with torch.inference_mode():
        estimate = float(-torch.log2(codec(images.float() / 255)["likelihoods"]).sum())
    payload_bits = 8 * sum(len(p) for p in unpack(api.compress(codec, images)).payloads)
    # Range coding costs the information content plus < 1 byte of termination per image.
    assert estimate - 1 <= payload_bits <= estimate + 8 * len(images) + 1


def test_per_image_scale_shift(codec, images) -> None:
    k, s, idx = codec.symbols(images.float() / 255)
    assert s.abs().max() <= codec.max_shift == 8 and bool((s != 0).any())
    off = tiny_codec(cfg=dataclasses.replace(CFG, options={**CFG.options, "shifts": 0}))
    assert off.max_shift == 0 and bool((off.symbols(images.float() / 255)[1] == 0).all())
    for model in (codec, off):  # both decode exactly to their quantized reconstructions
        with torch.inference_mode():
            expected = model(images.float() / 255)["x_hat"]
        data = api.compress(model, images)
        assert torch.equal(api.decompress(data, model, like="torch"), expected)


def test_float_and_uint8_inputs_agree(codec, images) -> None:
    assert api.compress(codec, images) == api.compress(codec, images.float() / 255)
    assert api.compress(codec, images[0]) == api.compress(codec, images[:1])  # (C, H, W) ok


@pytest.mark.parametrize("bad,match", [
    (torch.zeros(2, 3, 12, 12), "channel"),
    (torch.zeros(2, 5, 12, 12), "channels"),
    ([torch.zeros(1, 12, 12), torch.zeros(2, 12, 12)], "one image"),
    ([], "empty"),
    (torch.full((1, 1, 12, 12), float("nan")), "NaN"),
    (torch.full((1, 1, 12, 12), 2.0), r"\[0, 1\]"),
    (torch.zeros(0, 1, 12, 12, dtype=torch.uint8), "non-empty"),
    (torch.full((1, 1, 12, 12), 300, dtype=torch.int64), r"\[0, 255\]"),
])
def test_bad_images_are_data_errors(codec, bad, match) -> None:
    with pytest.raises(DataError, match=match):
        api.compress(codec, bad)


def test_corrupt_files_are_format_errors(codec, images) -> None:
    data = api.compress(codec, images[:3])
    with pytest.raises(FormatError, match="truncated"):
        api.decompress(data[:-7], codec)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        api.decompress(bytes(flipped), codec)
    with pytest.raises(FormatError, match="magic"):
        api.decompress(b"\x89PNG" + data[4:], codec)
    with pytest.raises(FormatError, match="version"):
        api.decompress(data[:3] + b"\x07" + data[4:], codec)


def test_file_of_another_model_is_rejected(codec, images) -> None:
    other = tiny_codec(seed=1)
    assert api.fingerprint(other) != api.fingerprint(codec)
    with pytest.raises(FormatError, match="different model"):
        api.decompress(api.compress(other, images[:2]), codec)


def test_fingerprint_tracks_weights_and_survives_save_load(codec, tmp_path) -> None:
    from aekit.config import TrainConfig
    from aekit.core.io import load_model, save_weights, write_config

    write_config(tmp_path, codec.cfg, TrainConfig())
    save_weights(tmp_path, codec)
    loaded, _ = load_model(tmp_path)
    assert api.fingerprint(loaded) == api.fingerprint(codec)
    clone = tiny_codec()
    with torch.no_grad():
        clone.mean_p[0, 0] += 1e-3
    assert api.fingerprint(clone) != api.fingerprint(codec)


def test_unfrozen_or_non_codec_models_are_refused(images) -> None:
    with pytest.raises(ConfigError, match="finalize"):
        api.compress(build_model(CFG), images)
    conv = build_model(dataclasses.replace(CFG, name="conv", options={}))
    with pytest.raises(ConfigError, match="not a codec"):
        api.compress(conv, images)


def test_two_pass_search_keeps_the_exact_choice(images, monkeypatch) -> None:
    """The encoder's shortlist (a few coefficients of every cluster, then the best two exactly)
    picks the cluster the exact search picks, and its files decode to the model's output."""
    from aekit.codec import search

    model = tiny_codec(cfg=dataclasses.replace(CFG, options={**CFG.options, "clusters": 6}))
    blocks = torch.from_numpy(make_blobs(64, size=12, seed=3)).float().flatten(1) / 255
    monkeypatch.setattr(search, "SEARCH_COEFFS", 4)  # of 48: the shortlist really is partial
    with torch.inference_mode():
        model.fast_select = False
        exact, _, _ = model.select(blocks)
        model.fast_select = True
        fast, _, _ = model.select(blocks)
    assert len(torch.unique(exact)) >= 4  # the blocks spread over the clusters
    assert float((fast == exact).float().mean()) >= 0.9
    data = api.compress(model, images)
    with torch.inference_mode():
        assert torch.equal(api.decompress(data, model, like="torch"),
                           model(images.float() / 255)["x_hat"])


@pytest.mark.parametrize("step", [-8, 0, 8])
def test_rerounding_only_the_coefficients_that_can_change_is_exact(step, monkeypatch) -> None:
    """choose_shift re-rounds only coefficients that are not 0 or have |y| near 0.5 or more
    (the others provably stay 0): the same shifts and values as re-rounding every one."""
    import math

    from aekit.codec.model import CodecAE

    model = tiny_codec(cfg=dataclasses.replace(CFG, options={**CFG.options, "clusters": 6}))
    blocks = torch.from_numpy(make_blobs(200, size=12, seed=5)).float().flatten(1) / 255
    with torch.inference_mode():
        k, y, q = model.select(blocks, step=step)
        assert model._zero_margin() < math.inf  # the shortcut is really taken here
        s, fast = model.choose_shift(k, y, q, step)
        monkeypatch.setattr(CodecAE, "_zero_margin", lambda self: math.inf)  # every one
        s_all, every = model.choose_shift(k, y, q, step)
    assert torch.equal(s, s_all) and torch.equal(fast, every)


def test_training_mode_unfreezes_and_finalize_restores(images) -> None:
    model = tiny_codec()
    fp = api.fingerprint(model)
    model.train()
    model(images.float() / 255)
    assert not model.frozen
    model.eval()
    model.finalize()
    assert api.fingerprint(model) == fp  # same weights -> same tables, bit for bit


def test_rd_loss_contract(images) -> None:
    from aekit.train.losses import build_loss

    model = build_model(CFG)
    model.train()
    out = model(images.float() / 255)
    assert out["likelihoods"].shape == out["z"].shape == (len(images), 1 + CFG.latent_dim)
    assert bool(((out["likelihoods"] > 0) & (out["likelihoods"] <= 1)).all())
    loss, logs = build_loss("", model)(out, images.float() / 255)
    loss.backward()
    assert model.default_loss == "rd" and logs["bpp"] > 0
    assert model.analysis_p.grad is not None and model.log_scale.grad is not None


def test_integer_table() -> None:
    t = integer_table(np.array([0.5, 1e-12, 0.25, 0.25]))
    assert t.sum() == 1 << PRECISION and t.min() >= 1 and t[1] == 1
    assert integer_table(np.array([0.0, 0.0])).tolist() == [1 << 15, 1 << 15]


def test_entropy_coder_golden_bytes() -> None:
    coder = TableCoder([np.array([1, 2, 5], np.int32), np.array([3, 1], np.int32)])
    enc = coder.encoder()
    enc.put(0, np.array([2, 2, 1, 0, 2], np.int32))
    enc.put(1, np.array([0, 1, 0], np.int32))
    payload = enc.finish()
    assert payload.hex() == GOLDEN_PAYLOAD
    dec = coder.decoder(payload)
    assert dec.get(0, 5).tolist() == [2, 2, 1, 0, 2] and dec.get(1, 3).tolist() == [0, 1, 0]


GOLDEN_PAYLOAD = "ab"  # 9.9 bits of information: the implicit zero padding helps


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_entropy_coder_roundtrip(data) -> None:
    sizes = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    tables = [integer_table(rng.dirichlet(np.full(n, data.draw(st.sampled_from([0.05, 1.0])))))
              for n in sizes]
    coder = TableCoder(tables)
    groups = [(t, rng.integers(0, sizes[t], size=data.draw(st.integers(0, 30)), dtype=np.int32))
              for t in data.draw(st.lists(st.integers(0, len(sizes) - 1), max_size=5))]
    enc = coder.encoder()
    for t, sym in groups:
        enc.put(t, sym)
    dec = coder.decoder(enc.finish())
    for t, sym in groups:
        expect = sym if sizes[t] > 1 else np.zeros_like(sym)
        assert dec.get(t, len(sym)).tolist() == expect.tolist()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_fuzz_decoder_only_format_errors(codec, images, data) -> None:
    """Mutated files (CRC recomputed half of the time, so payload garbage reaches the range
    decoder) either decode to images of the right shape or raise FormatError."""
    f = unpack(api.compress(codec, images[:2]))
    payloads = [bytearray(p) for p in f.payloads]
    for _ in range(data.draw(st.integers(1, 3))):
        p = payloads[data.draw(st.integers(0, len(payloads) - 1))]
        op = data.draw(st.sampled_from(["flip", "cut", "append"]))
        if op == "flip" and p:
            p[data.draw(st.integers(0, len(p) - 1))] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del p[data.draw(st.integers(0, len(p))):]
        else:
            p.extend(data.draw(st.binary(min_size=1, max_size=16)))
    blob = pack(AezFile(f.fingerprint, f.shapes, tuple(bytes(p) for p in payloads)))
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob = blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1:]
    try:
        x = api.decompress(blob, codec, like="torch")
    except FormatError:
        return
    assert x.shape == (2, 1, 12, 12) and bool(((x >= 0) & (x <= 1)).all())

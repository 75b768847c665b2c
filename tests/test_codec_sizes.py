"""The codec on images of any size: blocks, colour, mixed-size containers, version-2 files and
rate control, through the public API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_blobs
from test_codec import CFG, tiny_codec

from aekit.codec import api, payload
from aekit.codec.io import AezFile, pack, unpack
from aekit.config import ModelConfig
from aekit.errors import ConfigError, FormatError

RGB = ModelConfig(name="codec", in_channels=3, height=16, width=16, latent_dim=96,
                  options={"clusters": 2, "lambda": 0.003, "block": 8})


@pytest.fixture(scope="module")
def grey():
    return tiny_codec()  # whole 12x12 images are its blocks


@pytest.fixture(scope="module")
def rgb():
    return tiny_codec(cfg=RGB)  # 3x8x8 blocks


def photo(h: int, w: int, c: int = 1, seed: int = 0) -> torch.Tensor:
    """A smooth random image (uint8 (1, C, H, W)): blobs tiled and cut to H x W."""
    big = make_blobs(1, size=max(h, w) + 3, channels=c, seed=seed)[:, :, :h, :w]
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.clip(big + rng.integers(0, 20, big.shape), 0, 255)
                            .astype(np.uint8))


@pytest.mark.parametrize("h,w", [(12, 12), (5, 7), (13, 30), (25, 12)])
def test_any_size_decodes_to_the_same_size_and_the_model_reconstruction(grey, h, w) -> None:
    x = photo(h, w)
    data = api.compress(grey, x)
    assert unpack(data).shapes == ((1, h, w),)
    y = api.decompress(data, grey, like="torch")
    with torch.inference_mode():
        expected = grey(x.float() / 255)["x_hat"]
    assert y.shape == x.shape and torch.equal(y, expected)


def test_one_block_image_payload_is_the_version_2_payload(grey) -> None:
    """An image of the training size is one block: its version-3 payload codes the same
    symbols as version 2 after a step symbol that costs ~0 bits, and a version-2 file of the
    same image still decodes to the same pixels."""
    x = torch.from_numpy(make_blobs(3, size=12, seed=2))
    v3 = unpack(api.compress(grey, x))
    k, s, idx = (t.numpy() for t in grey.symbols(x.float() / 255))
    coder = payload.coder_of(grey)
    v2_payloads = tuple(payload.encode_one(grey, coder, k[i : i + 1], s[i : i + 1],
                                           idx[i : i + 1], 0, version=2) for i in range(3))
    assert all(abs(len(a) - len(b)) <= 1 for a, b in zip(v2_payloads, v3.payloads, strict=True))
    v2 = pack(AezFile.uniform(v3.fingerprint, (1, 12, 12), v2_payloads, version=2))
    assert torch.equal(api.decompress(v2, grey, like="torch"),
                       api.decompress(pack(v3), grey, like="torch"))


def test_mixed_sizes_in_one_container(grey) -> None:
    images = [photo(12, 12, seed=1)[0], photo(20, 9, seed=2)[0], photo(20, 9, seed=3)[0],
              photo(3, 40, seed=4)[0].numpy()]
    data = api.compress(grey, images)
    f = unpack(data)
    assert f.shapes == ((1, 12, 12), (1, 20, 9), (1, 20, 9), (1, 3, 40))
    out = api.decompress(data, grey)
    assert [o.shape for o in out] == [(1, 12, 12), (1, 20, 9), (1, 20, 9), (1, 3, 40)]
    each = api.compress_each(grey, images)
    for one, o in zip(each, out, strict=True):  # the container's images == the single files
        assert np.array_equal(api.decompress(one, grey)[0], o)
    assert api.info(data)["shapes"] == [[1, 12, 12], [1, 20, 9], [1, 3, 40]]


def test_colour_blocks_roundtrip_bit_exact_across_threads(rgb) -> None:
    x = photo(19, 26, c=3, seed=5)
    hwc = x[0].permute(1, 2, 0).numpy()  # one (H, W, C) image
    data = api.compress(rgb, hwc)
    assert data == api.compress(rgb, x)
    before = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append(api.decompress(data, rgb, like="torch"))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(outs[0], outs[1]) and outs[0].shape == (1, 3, 19, 26)
    mse = float((outs[0] - x / 255.0).square().mean())
    assert 10 * np.log10(1 / mse) > 20


def test_rate_control_quality_moves_rate_and_psnr(rgb) -> None:
    x = photo(32, 32, c=3, seed=6)

    def point(**kw):
        data = api.compress(rgb, x, **kw)
        y = api.decompress(data, rgb, like="torch")
        return len(data), float(10 * torch.log10(1 / (y - x / 255.0).square().mean()))

    low, mid, high = point(quality=-6), point(), point(quality=6)
    assert low[0] < mid[0] < high[0] and low[1] < mid[1] < high[1]
    target = (mid[1] + high[1]) / 2
    size, psnr = point(target_psnr=target)
    assert psnr >= target and size <= high[0]
    bpp = (mid[0] + high[0]) / 2 * 8 / (32 * 32)
    size, _ = point(target_bpp=bpp)
    assert size * 8 / (32 * 32) <= bpp + 20 * 8 / 1024  # payload within target (+ header)
    with pytest.raises(ConfigError, match="at most one"):
        api.compress(rgb, x, quality=1, target_psnr=30.0)
    with pytest.raises(ConfigError, match="quality"):
        api.compress(rgb, x, quality=40)


def test_too_large_or_wrong_channel_files_are_refused(grey, rgb) -> None:
    data = api.compress(rgb, photo(8, 8, c=3))
    f = unpack(data)
    with pytest.raises(FormatError, match="channel"):
        api.check_file_matches(AezFile(f.fingerprint, ((1, 8, 8),), f.payloads), rgb)
    huge = pack(AezFile(f.fingerprint, ((3, 65536, 65536),), f.payloads))
    with pytest.raises(FormatError, match="more than one call decodes"):
        api.decompress(huge, rgb)


def test_training_on_larger_images_uses_blocks() -> None:
    """A 3x40x40 training set (4,800 values per image) gets 16x16 blocks by default: the
    closed-form start works on 768-value blocks, not 4,800-value images."""
    from aekit.models import build_model

    cfg = ModelConfig(name="codec", in_channels=3, height=40, width=40, latent_dim=64,
                      options={"clusters": 2})
    model = build_model(cfg)
    assert model.block_hw == (16, 16) and model.pixels == 768
    x = torch.from_numpy(make_blobs(30, size=40, channels=3, seed=1))
    note = model.init_from_data(x)
    assert "3x16x16 blocks" in note
    out = model(x[:2].float() / 255)
    assert out["x_hat"].shape == (2, 3, 40, 40)
    assert CFG.height == 12  # the grey fixture keeps whole-image blocks


def test_rows_and_one_grey_image(grey) -> None:
    x = photo(12, 12, seed=8)
    rows = x.reshape(1, -1).numpy()  # (1, 144): one flattened training-size image
    assert api.compress(grey, rows) == api.compress(grey, x)
    wide = photo(12, 30, seed=8)[0, 0].numpy()  # (H, W): one grey image of any size
    assert unpack(api.compress(grey, wide)).shapes == ((1, 12, 30),)

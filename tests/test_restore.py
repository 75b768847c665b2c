"""The unet model, the Restorer (tiles, resize, exact known pixels, luma), classical baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from aekit.config import ModelConfig
from aekit.data.corrupt import LUMA, parse_corruption, to_grayscale
from aekit.errors import ConfigError, DataError
from aekit.eval import classical
from aekit.models import build_model
from aekit.restore.restorer import Restorer, read_mask, task_error, tent, tile_starts, with_luma


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 13, 37), (1, 8, 8), (1, 5, 9)])
@pytest.mark.parametrize("options", [{}, {"residual": True}, {"depth": 0, "norm": False},
                                     {"shuffle": 2}])
def test_unet_any_shape_and_packed_code(shape, options):
    torch.manual_seed(0)
    m = build_model(ModelConfig(name="unet", in_channels=shape[0], height=shape[1],
                                width=shape[2], widths=(4, 8, 8), options=options)).eval()
    x = torch.rand(2, *shape)
    with torch.no_grad():
        out = m(x)
    assert out["x_hat"].shape == x.shape
    assert float(out["x_hat"].min()) >= 0 and float(out["x_hat"].max()) <= 1
    with torch.no_grad():
        z = m.encode(x)
        assert z.shape == (2, *m.latent_shape)
        assert torch.allclose(m.decode(z), out["logits"], atol=1e-5)


def test_unet_trains_and_options_are_checked():
    torch.manual_seed(0)
    m = build_model(ModelConfig(name="unet", widths=(4, 8)))
    x = torch.rand(4, 1, 28, 28)
    loss = ((m(x)["x_hat"] - x) ** 2).mean()
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    with pytest.raises(ConfigError, match="unknown options"):
        build_model(ModelConfig(name="unet", options={"spatial": True}))
    with pytest.raises(ConfigError, match="depth"):
        build_model(ModelConfig(name="unet", options={"depth": 99}))
    with pytest.raises(ConfigError, match="shuffle=2 needs"):
        build_model(ModelConfig(name="unet", height=3, width=3, options={"shuffle": 2}))


class _Const(nn.Module):
    """Outputs a constant image (or the input with `identity`); records what it was given."""

    def __init__(self, value: float | None) -> None:
        super().__init__()
        self.value = value
        self.p = nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return {"x_hat": x.clone() if self.value is None else torch.full_like(x, self.value)}


def _restorer(value=None, spec="gaussian:0.5+mask:blocks", shape=(1, 12, 12)) -> Restorer:
    return Restorer(_Const(value), parse_corruption(spec), shape, batch_size=7)


def test_tiles_cover_the_image_and_identity_tiling_is_exact():
    for length, tile in [(12, 12), (13, 12), (30, 12), (100, 28), (5, 12)]:
        starts = tile_starts(length, tile)
        covered = set()
        for s in starts:
            covered |= set(range(s, min(s + tile, length)))
        assert covered == set(range(length)) and starts[0] == 0
    assert bool((tent(12) > 0).all())
    r = _restorer(None)
    for h, w in [(12, 12), (30, 17), (5, 40), (7, 7)]:
        x = torch.rand(1, 1, h, w)
        assert torch.allclose(r.denoise(x), x, atol=1e-6)
        assert r.denoise(x, fit="resize").shape == x.shape


def test_inpaint_keeps_known_pixels_exactly_and_feeds_filled_input():
    r = _restorer(0.5)
    x = torch.rand(3, 1, 12, 12)
    mask = torch.zeros(3, 1, 12, 12, dtype=torch.bool)
    mask[:, :, 2:6, 3:9] = True
    out = r.inpaint(x, mask)
    assert torch.equal(out[~mask.expand_as(x)], x[~mask.expand_as(x)])
    assert bool((out[mask.expand_as(x)] == 0.5).all())
    seen = r.model.seen[-1]
    assert bool((seen[mask] == 0).all())  # the model saw the training fill value there
    big = torch.rand(1, 1, 20, 31)
    big_mask = torch.rand(1, 1, 20, 31) < 0.3
    for fit in ("tile", "resize"):
        out = r.inpaint(big, big_mask, fit=fit)
        assert torch.equal(out[~big_mask.expand_as(big)], big[~big_mask.expand_as(big)])
    with pytest.raises(DataError, match="does not fit"):
        r.inpaint(x, mask[:, :, :10])


def test_colorize_keeps_the_input_luma():
    r = _restorer(None, "grayscale", (3, 12, 12))
    grey = torch.rand(2, 1, 12, 12)
    out = r.colorize(grey)
    assert out.shape == (2, 3, 12, 12)
    assert torch.allclose(to_grayscale(out)[:, :1], grey, atol=1e-5)
    rgb = torch.rand(2, 3, 12, 12) * 0.5 + 0.25
    y = torch.rand(2, 1, 12, 12) * 0.2 + 0.4
    mixed = with_luma(rgb, y)
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    assert torch.allclose((mixed * weights).sum(1, keepdim=True), y, atol=1e-5)
    assert torch.allclose(mixed[:, 0] - mixed[:, 1], rgb[:, 0] - rgb[:, 1], atol=1e-5)


def test_which_runs_can_do_which_task():
    assert "not a restoration model" in task_error("R", "denoise", "", 1)
    assert task_error("R", "denoise", "gaussian:0.5", 1) is None
    assert task_error("R", "inpaint", "gaussian:0.5+mask:blocks", 1) is None
    assert "not to inpaint" in task_error("R", "inpaint", "gaussian:0.5", 1)
    assert task_error("R", "colorize", "grayscale", 3) is None
    assert "not to colorize" in task_error("R", "colorize", "grayscale", 1)


def test_read_mask_accepts_binary_and_rejects_grey(tmp_path):
    a = np.zeros((6, 5), np.uint8)
    a[1:3, 2:4] = 255
    Image.fromarray(a).save(tmp_path / "m.png")
    m = read_mask(tmp_path / "m.png")
    assert m.shape == (1, 6, 5) and m.dtype == torch.bool and int(m.sum()) == 4
    Image.fromarray((a > 0).astype(np.uint8)).save(tmp_path / "m01.png")
    assert torch.equal(read_mask(tmp_path / "m01.png"), m)
    a[0, 0] = 77
    Image.fromarray(a).save(tmp_path / "grey.png")
    with pytest.raises(DataError, match="not binary.*77"):
        read_mask(tmp_path / "grey.png")


@pytest.mark.parametrize("name", classical.available_denoisers())
def test_classical_denoisers_shape_range_and_help(name):
    torch.manual_seed(0)
    clean = torch.full((2, 1, 16, 16), 0.3)
    clean[:, :, 4:12, 4:12] = 0.7  # away from 0 and 1: unclipped noise, which they model
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    value = classical.DENOISERS[name].grid[1]
    out, rate = classical.denoise(name, noisy, value)
    assert out.shape == noisy.shape and rate > 0
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float(((out - clean) ** 2).mean()) < float(((noisy - clean) ** 2).mean())


def test_tune_picks_the_best_grid_value_and_biharmonic_keeps_known_pixels():
    torch.manual_seed(0)
    clean = torch.rand(2, 3, 12, 12)
    best, scores = classical.tune("gaussian-blur", clean, clean, grid=[0.5, 2.0])
    assert best == 0.5 and set(scores) == {0.5, 2.0}
    mask = torch.zeros(2, 1, 12, 12, dtype=torch.bool)
    mask[:, :, 3:7, 3:7] = True
    out, _ = classical.inpaint_batch(clean, mask)
    keep = ~mask.expand_as(clean)
    assert torch.allclose(out[keep], clean[keep], atol=1e-6)
    with pytest.raises(ConfigError, match="unknown baseline"):
        classical.denoise("median", clean, 1.0)


def test_unet_eval_folds_batchnorm_without_changing_outputs():
    torch.manual_seed(0)
    m = build_model(ModelConfig(name="unet", widths=(4, 8)))
    x = torch.rand(8, 1, 28, 28)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):  # move the BN statistics and weights away from their initial values
        loss = m(x)["x_hat"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.inference_mode():
        fused = m(x)["logits"]
    m.norm = False  # the unfolded eval path, for reference
    with torch.no_grad():
        plain = m(x)["logits"]
        m.norm = True
        assert torch.allclose(fused, plain, atol=1e-5)
        m.head.weight.add_(0.5)  # a changed parameter invalidates the folded copy
        changed = m(x)["logits"]
    assert not torch.allclose(changed, fused)
    assert not any("fused" in k for k in m.state_dict())
    m(x)["x_hat"].sum().backward()  # eval mode with autograd: the real parameters learn
    assert m.down[0][0].weight.grad is not None


def test_numpy_in_numpy_out_in_the_callers_layout():
    """The Python API takes what a user has: numpy uint8 (N, H, W) or float (N, H, W, C) images
    of any size come back as numpy in [0, 1], in the same layout."""
    r = _restorer(None)
    x8 = np.random.default_rng(0).integers(0, 256, (2, 20, 31), dtype=np.uint8)
    out = r.denoise(x8)
    assert isinstance(out, np.ndarray) and out.shape == (2, 20, 31)
    assert np.allclose(out, x8 / 255.0, atol=1e-6)
    mask = np.zeros((2, 20, 31), dtype=bool)
    mask[:, 4:9, 5:12] = True
    filled = r.inpaint(x8, mask)
    assert filled.shape == (2, 20, 31) and np.allclose(filled[~mask], x8[~mask] / 255.0)
    rgb = _restorer(None, spec="grayscale", shape=(3, 12, 12))
    x = np.random.default_rng(1).random((2, 16, 16, 3)).astype(np.float32)  # channels-last
    col = rgb.colorize(x)
    assert isinstance(col, np.ndarray) and col.shape == (2, 16, 16, 3)
    with pytest.raises(TypeError):
        r.denoise("not images")

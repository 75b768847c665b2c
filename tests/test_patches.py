"""Training on patches (`--patch P`): the grid cut, folders of mixed sizes, splits, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from aekit.cli import main
from aekit.data import load_dataset
from aekit.data.patches import cut_patches, grid_offsets, patch_split, patch_tensor
from aekit.errors import AekitError, ConfigError, DataError


def test_grid_is_centred_and_non_overlapping():
    assert grid_offsets(70, 32) == [3, 35]
    assert grid_offsets(50, 32) == [9]
    assert grid_offsets(31, 32) == []
    img = torch.arange(3 * 70 * 50, dtype=torch.int64).reshape(3, 70, 50)
    p = cut_patches(img, 32)
    assert p.shape == (2, 3, 32, 32)
    assert torch.equal(p[0], img[:, 3:35, 9:41]) and torch.equal(p[1], img[:, 35:67, 9:41])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4), c=st.sampled_from([1, 3]), h=st.integers(4, 23),
       w=st.integers(4, 23), size=st.integers(4, 12), labelled=st.booleans())
def test_one_reshape_equals_the_per_image_cut(n, c, h, w, size, labelled):
    x = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8)
    y = torch.arange(n) * 7 if labelled else None
    if h < size or w < size:
        with pytest.raises(DataError, match=f"no image is at least {size}x{size}"):
            patch_tensor(x, y, size, "set")
        return
    got = patch_tensor(x, y, size, "set")
    want = patch_split(iter(x), y, size, "set")
    assert torch.equal(got[0], want[0])
    assert (got[1] is None) == (y is None)
    if y is not None:
        assert torch.equal(got[1], want[1])
    assert len(got[0]) == n * (h // size) * (w // size)


def _save(path, value: int, size: tuple[int, int], colour: bool = False) -> None:
    """An image whose every pixel is `value`: its patches say which file they came from."""
    a = np.full((*size, 3) if colour else size, value, np.uint8)
    Image.fromarray(a).save(path)


def test_folder_of_mixed_sizes_keeps_each_image_in_its_split(tmp_path):
    for split, values in (("train", (10, 20, 30)), ("test", (200, 210))):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
        for i, v in enumerate(values):
            size = (20 + 9 * i, 17 + 5 * i)
            _save(tmp_path / split / ("a" if i % 2 == 0 else "b") / f"{v}.png", v, size)
    ds = load_dataset(f"folder:{tmp_path}", patch=8)
    assert ds.shape == (1, 8, 8)
    # 20x17 -> 2x2, 29x22 -> 3x2, 38x27 -> 4x3 patches
    assert len(ds.train_x) == 4 + 6 + 12 and len(ds.test_x) == 4 + 6
    assert set(ds.train_x.unique().tolist()) == {10, 20, 30}
    assert set(ds.test_x.unique().tolist()) == {200, 210}
    # each patch keeps its image's label (value 20 sits in class b, the others in a)
    values = ds.train_x.flatten(1)[:, 0]
    assert ds.classes == ["a", "b"]
    assert torch.equal(ds.train_y, (values == 20).long())


def test_patches_of_a_named_dataset_and_bad_requests(tmp_path):
    ds = load_dataset("digits", patch=4)
    whole = load_dataset("digits")
    assert ds.shape == (1, 4, 4) and len(ds.train_x) == 4 * len(whole.train_x)
    assert torch.equal(ds.train_y[:4], whole.train_y[:1].repeat(4))
    with pytest.raises(DataError, match="no image is at least 16x16"):
        load_dataset("digits", patch=16)
    with pytest.raises(ConfigError, match="--patch and --image-size"):
        load_dataset("digits", image_size=(8, 8), patch=4)
    with pytest.raises(DataError, match="at least 4 pixels"):
        load_dataset("digits", patch=2)
    for err in (DataError, ConfigError):
        assert issubclass(err, AekitError) and issubclass(err, ValueError)


def test_mixed_sizes_without_patch_name_both_ways_out(tmp_path, capsys):
    _save(tmp_path / "a.png", 50, (12, 12))
    _save(tmp_path / "b.png", 90, (20, 16))
    code = main(["train", "--dataset", f"folder:{tmp_path}", "--epochs", "1", "--out",
                 str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--patch P" in err[0] and "--image-size" in err[0]
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_train_on_patches_then_use_the_run_on_whole_images(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(12):  # smooth colour images of different sizes
        h, w = 16 + 3 * i, 40 - 2 * i
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([128 + 100 * np.sin((yy + i) / 4.0), 128 + 100 * np.cos(xx / 5.0),
                      np.full((h, w), 40 + 10 * i)], -1)
        Image.fromarray(np.clip(a + rng.normal(0, 4, a.shape), 0, 255).astype(np.uint8)).save(
            data / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--model", "conv", "--latent-dim", "8", "--dataset", f"folder:{data}",
                 "--patch", "12", "--epochs", "2", "--batch-size", "16", "--out", str(run)]) == 0
    out = capsys.readouterr().err
    assert "validation patches (12x12, cut from each image at its own size)" in out
    assert "test patches" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["patch"] == 12 and cfg["model"]["height"] == 12
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["psnr"] > 0
    # eval of the run itself sees the same patches
    assert main(["eval", str(run)]) == 0
    # a whole image goes through tiles and keeps its own size
    big = tmp_path / "big.png"
    Image.open(data / "11.png").save(big)
    assert main(["reconstruct", str(run), str(big), "--out", str(tmp_path / "rec")]) == 0
    assert Image.open(tmp_path / "rec" / "big.png").size == Image.open(big).size


def test_finetune_of_a_patch_run_uses_its_patches(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for c, base in (("dark", 50), ("light", 200)):
            d = tmp_path / "data" / split / c
            d.mkdir(parents=True)
            for i in range(6 if split == "train" else 2):
                h, w = rng.integers(16, 30, 2)
                a = np.clip(base + rng.normal(0, 15, (h, w)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i}.png")
    run = tmp_path / "run"
    data = f"folder:{tmp_path / 'data'}"
    assert main(["train", "--model", "dense", "--latent-dim", "4", "--dataset", data, "--patch",
                 "8", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    n_test = len(load_dataset(data, patch=8).test_x)
    capsys.readouterr()
    assert main(["finetune", str(run), "--labels", "4", "--steps", "3", "--out",
                 str(tmp_path / "ft")]) == 0
    assert f"on {n_test} " in capsys.readouterr().err


def test_patches_are_cut_in_memory_not_streamed(tmp_path, capsys):
    for i in range(3):
        _save(tmp_path / f"{i}.png", 40 * i, (12 + i, 10))
    code = main(["train", "--dataset", f"folder:{tmp_path}", "--patch", "8", "--stream",
                 "always", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--stream always" in err[0] and "--patch" in err[0]


def test_patches_over_the_memory_budget_are_refused_before_decoding(tmp_path, capsys,
                                                                    monkeypatch):
    # 3 grey images of 20x17 (2x2 patches of 8: 256 B) and one RGB of 16x16 (4 patches of 8):
    # every patch is held in RGB, 8 * 8 * 3 * (3 * 4 + 4) = 3,072 bytes
    for i in range(3):
        _save(tmp_path / f"{i}.png", 40 * i, (20, 17))
    _save(tmp_path / "3.png", 90, (16, 16), colour=True)
    from aekit.data import folder as folder_mod
    from aekit.data.stream import folder_patch_bytes

    assert folder_patch_bytes(tmp_path, 8) == 3072
    monkeypatch.setattr(folder_mod, "load_uint8", lambda *a: pytest.fail("decoded an image"))
    run = tmp_path / "run"
    code = main(["train", "--dataset", f"folder:{tmp_path}", "--patch", "8", "--memory-budget",
                 "3000", "--epochs", "1", "--out", str(run), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not run.exists()
    assert "8x8 patches take" in err[0] and "--memory-budget" in err[0]
    monkeypatch.undo()
    code = main(["train", "--dataset", f"folder:{tmp_path}", "--patch", "8", "--memory-budget",
                 "3K", "--epochs", "1", "--out", str(run), "--quiet"])
    assert code == 0 and (run / "model.safetensors").exists()


def test_images_smaller_than_the_patch_are_listed_and_the_run_exits_1(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(10):
        _save(data / f"{i}.png", 20 * i, (6, 30) if i == 3 else (20 + i, 18))
    ds = load_dataset(f"folder:{data}", patch=8)
    assert [p for p, _ in ds.skipped] == [str(data / "3.png")]
    assert "6x30 (HxW) is smaller than the 8x8 patches" in ds.skipped[0][1]
    assert ds.sources == 9
    assert 60 not in ds.train_x.unique().tolist() + ds.test_x.unique().tolist()
    code = main(["train", "--model", "dense", "--latent-dim", "2", "--dataset", f"folder:{data}",
                 "--patch", "8", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "skipped" in err and "3.png" in err and "9 file(s) done, 1 skipped" in err
    assert (tmp_path / "run" / "model.safetensors").exists()
    with pytest.raises(DataError, match=r"no image is at least 32x32 \(the smallest side is 6"):
        load_dataset(f"folder:{data}", patch=32)

"""Streaming `folder:` datasets: same pixels, split, labels and training result as in memory, with
the whole-folder loader forbidden (the memory cap) and bad files reported cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import aekit.data.folder as folder_mod
from aekit.cli import main
from aekit.core.io import load_model
from aekit.data import load_dataset
from aekit.data.stream import (
    StreamingImages,
    iter_batches,
    load_training_dataset,
    open_folder_stream,
    parse_bytes,
)
from aekit.errors import ConfigError, DataError
from tests.conftest import make_blobs


@pytest.fixture
def image_folder(tmp_path):
    """72 grey 12x12 PNGs in two class folders (~10 KiB decoded)."""
    root = tmp_path / "imgs"
    x = make_blobs(72, seed=3)[:, 0]  # (N, H, W)
    for i, img in enumerate(x):
        d = root / ("bright" if i % 3 else "dim")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img if i % 3 else img // 2).save(d / f"im{i:03d}.png")
    return root


def test_stream_matches_the_in_memory_loader(image_folder):
    mem = load_dataset(f"folder:{image_folder}")
    st = open_folder_stream(image_folder)
    assert isinstance(st.train_x, StreamingImages) and st.shape == mem.shape
    assert st.classes == mem.classes
    assert torch.equal(st.train_y, mem.train_y) and torch.equal(st.test_y, mem.test_y)
    assert torch.equal(st.test_x, mem.test_x)
    assert torch.equal(st.train_x.read(), mem.train_x)
    order = torch.randperm(len(mem.train_x), generator=torch.Generator().manual_seed(0))
    streamed = list(iter_batches(st.train_x, order, 8, 3, keep=slice(2, 6), workers=2))
    for i, b in enumerate(streamed):
        assert torch.equal(b, mem.train_x[order[i * 8 : (i + 1) * 8]][2:6])
    resized = open_folder_stream(image_folder, (8, 10))
    assert tuple(resized.shape) == (1, 8, 10)
    assert torch.equal(resized.test_x, load_dataset(f"folder:{image_folder}", (8, 10)).test_x)


def test_auto_streaming_over_a_memory_cap_trains_like_in_memory(image_folder, tmp_path,
                                                                 monkeypatch, capsys):
    args = ["train", "--model", "dense", "--dataset", f"folder:{image_folder}", "--latent-dim",
            "4", "--epochs", "2", "--batch-size", "16", "--quiet", "--device", "cpu",
            "--precision", "fp32"]
    assert main([*args, "--stream", "never", "--out", str(tmp_path / "memory")]) == 0

    # The cap: 4 KiB of budget, and the loader that decodes a whole folder is forbidden.
    def no_bulk_load(*a, **k):
        raise AssertionError("the whole folder was loaded into memory")

    monkeypatch.setattr(folder_mod, "_load_files", no_bulk_load)
    monkeypatch.setenv("AEKIT_MEMORY_BUDGET", "4K")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "streamed")]) == 0  # --stream auto
    a, _ = load_model(tmp_path / "memory")
    b, _ = load_model(tmp_path / "streamed")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k  # bit-identical training


def test_a_file_broken_after_its_header_is_a_clean_error(image_folder, tmp_path, capsys):
    train_files = open_folder_stream(image_folder).train_x.paths
    victim = train_files[5]  # decoded only by a DataLoader worker, mid-epoch
    victim.write_bytes(victim.read_bytes()[:60])  # header intact, pixels gone
    code = main(["train", "--model", "dense", "--dataset", f"folder:{image_folder}",
                 "--epochs", "1", "--batch-size", "8", "--stream", "always", "--quiet",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and victim.name in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_stream_bad_inputs(tmp_path, tiny_npz):
    with pytest.raises(ConfigError, match="folder:DIR datasets only"):
        load_training_dataset(tiny_npz, stream="always")
    with pytest.raises(ConfigError, match="--stream"):
        load_training_dataset(tiny_npz, stream="sometimes")
    with pytest.raises(DataError, match="folder not found"):
        load_training_dataset(f"folder:{tmp_path / 'nope'}", stream="always")
    with pytest.raises(ConfigError, match="memory budget"):
        parse_bytes("lots")
    assert parse_bytes("2G") == 2 << 30 and parse_bytes("512k") == 512 << 10
    # A dataset that fits stays an in-memory tensor.
    assert isinstance(load_training_dataset(tiny_npz).train_x, torch.Tensor)
    assert np.asarray(StreamingImages([], 1, (4, 4)).shape).tolist() == [0, 1, 4, 4]

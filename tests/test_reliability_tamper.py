"""Tampered run folders and model files (extends tests/test_runs.py): every one is a clear
AekitError naming the file, through the API and as one line + exit 2 through the CLI; nothing
pickled is ever executed; a config that lies about the model allocates nothing big."""

from __future__ import annotations

import io
import json
import pickle
import struct
import time
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as st_save

from aekit.cli import main
from aekit.core.io import load_model, read_config
from aekit.errors import AekitError, ConfigError, DataError, RunError
from aekit.io import read_json
from aekit.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from tests.reliability.fuzz import memory_cap
from tests.reliability.seeds import png_with_header, write_run


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run")


class Evil:
    """Unpickling this creates a marker file: proof that something was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _cli_fails_cleanly(argv, capsys, needle: str = "") -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and needle in err
    return err


def _stamp(tensors, cfg: dict) -> bytes:
    return st_save({k: v.contiguous() for k, v in tensors.items()},
                   {"format": "aekit-model/1", "config": json.dumps(cfg, sort_keys=True)})


# --- the model file ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pickle", "torch.save zip", "npz"])
def test_other_formats_renamed_to_safetensors_execute_nothing(run, tmp_path, capsys, kind):
    marker = tmp_path / "executed"
    path = run / "model.safetensors"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(Evil(marker)))
    elif kind == "torch.save zip":
        torch.save({"w": Evil(marker)}, path)  # a zip holding data.pkl
    else:
        np.savez(tmp_path / "x.npz", w=np.zeros(3))
        path.write_bytes((tmp_path / "x.npz").read_bytes())
    with pytest.raises(RunError, match="model.safetensors: not a valid safetensors"):
        load_model(run)
    _cli_fails_cleanly(["reconstruct", str(run), str(tmp_path), "-o", str(tmp_path / "o")],
                       capsys, "model.safetensors")
    assert not marker.exists()


def test_truncated_at_every_kind_of_boundary(run):
    raw = (run / "model.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    for cut in sorted({0, 1, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, len(raw) // 2,
                       len(raw) - 1}):
        (run / "model.safetensors").write_bytes(raw[:cut])
        with pytest.raises(RunError, match="model.safetensors"):
            load_model(run)


def test_weights_file_that_is_a_folder_or_unreadable(run):
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").mkdir()
    with pytest.raises(RunError, match="model.safetensors"):
        load_model(run)


def test_wrong_dtype_is_named(run):
    model, info = load_model(run)
    state = {k: v.double() for k, v in model.state_dict().items()}
    (run / "model.safetensors").write_bytes(_stamp(state, info.model_cfg.to_dict()))
    with pytest.raises(RunError, match="wrong dtype"):
        load_model(run)


def test_embedded_config_not_an_object(run):
    model, _ = load_model(run)
    for text in ("[1, 2]", "7" * 5000, "[" * 50_000):
        (run / "model.safetensors").write_bytes(st_save(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            {"format": "aekit-model/1", "config": text}))
        with pytest.raises(RunError, match="config in the weights file is corrupt"):
            load_model(run)


def test_config_and_weights_both_claiming_a_huge_model_allocate_nothing(run):
    """config.json and the weights' embedded config agree on a model with ~10^13 parameters; the
    shapes are compared on the meta device before anything is built for real."""
    model, info = load_model(run)
    huge = {**info.model_cfg.to_dict(), "in_channels": 4, "height": 4096, "width": 4096,
            "latent_dim": 1 << 20, "widths": [65536]}
    doc = json.loads((run / "config.json").read_text())
    doc["model"] = huge
    (run / "config.json").write_text(json.dumps(doc))
    (run / "model.safetensors").write_bytes(_stamp(model.state_dict(), huge))
    t0 = time.process_time()
    with memory_cap(256 << 20), pytest.raises(RunError, match="do not match the model"):
        load_model(run)
    assert time.process_time() - t0 < 5


def test_config_for_an_unbuildable_model(run):
    model, info = load_model(run)
    bad = {**info.model_cfg.to_dict(), "name": "conv", "height": 1, "width": 1}
    doc = json.loads((run / "config.json").read_text())
    doc["model"] = bad
    (run / "config.json").write_text(json.dumps(doc))
    (run / "model.safetensors").write_bytes(_stamp(model.state_dict(), bad))
    with pytest.raises(AekitError, match="config.json|model.safetensors"):
        load_model(run)


# --- config.json and metrics.json ---------------------------------------------------------------


@pytest.mark.parametrize("model, needle", [
    ({"widths": "abc"}, "widths"),
    ({"height": float("nan")}, "height"),
    ({"height": True}, "height"),
    ({"latent_dim": 2.5}, "latent_dim"),
    ({"name": 5}, "name"),
    ({"options": []}, "options"),
    ({"widths": [None]}, "widths"),
])
def test_config_fields_of_the_wrong_type(run, model, needle):
    doc = json.loads((run / "config.json").read_text())
    doc["model"].update(model)
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(RunError, match=needle):
        read_config(run)


@pytest.mark.parametrize("train", [{"image_size": "ab"}, {"image_size": [1e400, 2]},
                                   {"image_size": [1]}, {"epochs": "x"}, {"lr": float("inf")}])
def test_train_config_fields_of_the_wrong_type(run, train):
    doc = json.loads((run / "config.json").read_text().replace("Infinity", "1"))
    doc["train"].update(train)
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(RunError, match="TrainConfig"):
        read_config(run)


def test_json_with_a_5000_digit_number(run):
    (run / "metrics.json").write_text("{\"mse\": " + "9" * 5000 + "}")
    with pytest.raises(RunError, match="metrics.json"):
        read_json(run / "metrics.json")


def test_json_config_errors_through_the_cli(run, tmp_path, capsys):
    (run / "config.json").write_text("{\"model\": {\"widths\": \"abc\"}, \"train\": {}}")
    _cli_fails_cleanly(["eval", str(run)], capsys, "config.json")
    _cli_fails_cleanly(["train", "--resume", str(run)], capsys, "config.json")


# --- the checkpoint -----------------------------------------------------------------------------


def _rewrite_meta(run, **changes) -> None:
    path = run / "checkpoint" / CHECKPOINT_NAME
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["meta"])
    meta.update(changes)
    header["__metadata__"]["meta"] = json.dumps(meta)
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


@pytest.mark.parametrize("changes", [{"epoch": "2"}, {"epoch": -1}, {"history": None},
                                     {"best_val": None}, {"step": 1.5}])
def test_checkpoint_with_forged_meta(run, changes):
    _rewrite_meta(run, **changes)
    with pytest.raises(RunError, match="checkpoint is corrupt"):
        load_checkpoint(run)


def test_checkpoint_replaced_by_a_pickle_executes_nothing(run, tmp_path, capsys):
    marker = tmp_path / "executed"
    weights = (run / "model.safetensors").read_bytes()
    (run / "checkpoint" / CHECKPOINT_NAME).write_bytes(pickle.dumps(Evil(marker)))
    _cli_fails_cleanly(["train", "--resume", str(run), "--quiet"], capsys, CHECKPOINT_NAME)
    assert not marker.exists()
    assert (run / "model.safetensors").read_bytes() == weights  # nothing already written lost


def test_checkpoint_optimizer_not_matching_the_model(tmp_path, capsys):
    from tests.reliability.killresume import make_npz

    run = write_run(tmp_path / "run", dataset=make_npz(tmp_path / "d.npz", n=96))
    path = run / "checkpoint" / CHECKPOINT_NAME
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    opt = json.loads(header["__metadata__"]["optimizer"])
    opt["param_groups"][0]["params"] = opt["param_groups"][0]["params"][:-1]
    header["__metadata__"]["optimizer"] = json.dumps(opt)
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])
    _cli_fails_cleanly(["train", "--resume", str(run), "--quiet"], capsys, CHECKPOINT_NAME)


def test_checkpoint_that_is_a_folder(run):
    path = run / "checkpoint" / CHECKPOINT_NAME
    path.unlink()
    path.mkdir()
    with pytest.raises(RunError, match=CHECKPOINT_NAME):
        load_checkpoint(run)


# --- data files whose headers lie ----------------------------------------------------------------


def test_png_declaring_9000x9000_is_rejected_before_allocation(tmp_path):
    """Under Pillow's own bomb limit (179 M pixels) but ~320 MB from a 100-byte file."""
    from aekit.data.images import read_image

    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header(9000, 9000, 8, 2, 0, b"\0" * 64))
    with memory_cap(256 << 20), pytest.raises(DataError, match="bomb.png: header declares"):
        read_image(path, channels=3, size=(12, 12))


def test_legit_large_compressible_png_still_loads(tmp_path):
    from aekit.data.images import read_image

    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000), 7).save(path)  # ~9 MB decoded from a ~9 KB file
    img = read_image(path, channels=1, size=(12, 12))
    assert img.shape == (1, 12, 12)


@pytest.mark.parametrize("container", ["npy", "npz"])
def test_npy_header_declaring_10gb_is_rejected_before_allocation(tmp_path, container):
    import io

    from aekit.data import load_dataset
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 2), np.uint8))
    data = buf.getvalue().replace(b"(2, 2)", b"(99999, 99999)")
    path = tmp_path / f"x.{container}"
    if container == "npy":
        path.write_bytes(data)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x_train.npy", data)
    with memory_cap(256 << 20), pytest.raises(DataError, match="declare"):
        load_dataset(f"npz:{path}")


def test_config_error_type_is_a_config_error():
    from aekit.config import ModelConfig

    with pytest.raises(ConfigError, match="widths"):
        ModelConfig.from_dict({"widths": "abc"})


def test_idx_with_a_zero_dim_and_huge_others(tmp_path):
    """Found by the slow fuzz run: 0 x 2**32-1 x 2**32-1 holds no data yet numpy refused the
    shape with a ValueError."""
    from aekit.data.idx import read_idx

    path = tmp_path / "z.idx"
    path.write_bytes(b"\0\0\x08\x03" + struct.pack(">3I", 0, 2**32 - 1, 2**32 - 1))
    with pytest.raises(DataError, match="z.idx: IDX header declares impossible dimensions"):
        read_idx(path)


@pytest.mark.parametrize("head", [b"\x93NUMPY\x00\x00v\x00", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f"])
def test_npy_header_length_lie_is_rejected_before_reading_it(tmp_path, head):
    """Found by the slow fuzz run: numpy reads an .npy header of the stated length (2 GB here)
    before checking it."""
    from aekit.data import load_dataset

    path = tmp_path / "h.npy"
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }\n"
    path.write_bytes(head + header + bytes(4))
    with memory_cap(256 << 20), pytest.raises(DataError, match="h.npy: not a readable"):
        load_dataset(f"npz:{path}")


def test_png_chunk_length_lie_reads_only_what_is_there(tmp_path):
    """Found by the slow fuzz run: an IDAT chunk claiming 0x20000053 bytes made Pillow call
    fp.read(512 MB) on the open file; aekit now hands Pillow the bytes in memory."""
    from aekit.data.images import read_image

    buf = io.BytesIO()
    Image.fromarray(np.arange(63, dtype=np.uint8).reshape(9, 7)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    i = raw.index(b"IDAT") - 4
    raw[i : i + 4] = struct.pack(">I", 0x20000053)
    path = tmp_path / "chunk.png"
    path.write_bytes(bytes(raw))
    with memory_cap(256 << 20):
        try:
            read_image(path, channels=1)
        except DataError as e:
            assert "chunk.png" in str(e)


def test_probe_of_a_lying_palette_png_allocates_nothing(tmp_path):
    """Found by the slow fuzz run's memory figures: probing a 71-byte palette PNG that claims
    10 x 16,777,216 pixels decoded it whole (getpalette() loads the image), ~130 MB."""
    from aekit.data.images import probe_image

    path = tmp_path / "pal.png"
    path.write_bytes(png_with_header(10, 1 << 24, 1, 3, 0, b"\0" * 16))
    with memory_cap(64 << 20), pytest.raises(DataError, match="pal.png: header declares"):
        probe_image(path)


def test_lying_palette_png_through_the_cli_is_one_line(run, tmp_path, capsys):
    """The same file given to a command: Pillow warns about its pixel count before aekit's own
    check refuses it; that warning must not become extra lines before the one error line."""
    path = tmp_path / "in" / "pal.png"
    path.parent.mkdir()
    path.write_bytes(png_with_header(10, 1 << 24, 1, 3, 0, b"\0" * 16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning on the way fails the command
        err = _cli_fails_cleanly(["reconstruct", str(run), str(path), "-o", str(tmp_path / "o")],
                                 capsys, "pal.png: header declares a 10x16777216 image")
    assert err.count("pal.png") == 1, err  # named once, not once more by a wrapper

"""Fuzzing every parser of untrusted files: only AekitError may escape; no crash, no hang (> 5 s
CPU), no allocation sized by a lying header (see tests/reliability/fuzz.py for the bounds).

Each target runs a few dozen cases in CI and ~1,000-2,500 in `make test-slow`
(AEKIT_FUZZ_CASES=N overrides the slow count per target)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from aekit.core.io import load_model, read_config, read_metrics
from aekit.data.idx import read_idx, write_idx
from aekit.data.images import probe_image, read_image, read_images
from aekit.io import read_json
from aekit.train.checkpoint import load_checkpoint
from tests.reliability.fuzz import Tally, call, memory_cap, n_cases
from tests.reliability.record import record
from tests.reliability.seeds import image_samples, png_with_header, set_dims, write_run
from tests.reliability.strategies import config_docs, idx_files, json_texts, mutated

IMAGES = image_samples()
# Pillow warns (corrupt EXIF, oversized tags, bomb-sized images) on exactly the files fed here.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")]


def budget(fast: int, slow: int):
    """Two variants of a test: `ci` (fast, derandomized) and `full` (slow marker)."""
    return pytest.mark.parametrize("n, derandomize", [
        pytest.param(fast, True, id="ci"),
        pytest.param(n_cases(fast, slow, True), False, id="full", marks=pytest.mark.slow),
    ])


def fuzz(tally: Tally, strategy, check, n: int, derandomize: bool) -> None:
    """Run `check(case)` on n generated cases under the memory cap, then record the figures."""
    @settings(max_examples=n, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(case):
        examples[0] += 1
        check(case)

    examples = [0]  # hypothesis examples run (one may make several parser calls)
    with memory_cap():
        run()
    record(f"fuzz:{tally.target}", examples=examples[0], max_examples=n, **tally.as_dict())
    assert tally.cases >= min(n, 20)


# --- IDX -------------------------------------------------------------------------------------


@budget(60, 2000)
def test_fuzz_idx_structured(tmp_path, n, derandomize):
    tally, path = Tally("idx-structured"), tmp_path / "f.idx"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        arr = call(tally, lambda: read_idx(path), len(data))
        if arr is not None:
            assert isinstance(arr, np.ndarray) and arr.nbytes <= 1100 * len(data) + (1 << 20)

    fuzz(tally, idx_files(), check, n, derandomize)


def _idx_samples(tmp: Path) -> dict[str, bytes]:
    out = {}
    for name, arr in {"u8": np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
                      "labels": np.arange(7, dtype=np.uint8),
                      "f32": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
                      "i16": np.arange(-4, 4, dtype=np.int16)}.items():
        for suffix in ("", ".gz"):
            write_idx(tmp / f"{name}{suffix}", arr)
            out[name + suffix] = (tmp / f"{name}{suffix}").read_bytes()
    return out


@budget(40, 1500)
def test_fuzz_idx_mutated_and_idx_dataset(tmp_path, n, derandomize):
    """Mutated IDX files, read alone and as one of the four files of an `idx:DIR` dataset."""
    from aekit.data import load_dataset
    from aekit.data.idx import STANDARD_NAMES

    tally, samples = Tally("idx-mutated"), _idx_samples(tmp_path)
    folder = tmp_path / "ds"
    folder.mkdir()
    good = {"train_x": np.zeros((4, 3, 3), np.uint8), "train_y": np.arange(4, dtype=np.uint8),
            "test_x": np.zeros((2, 3, 3), np.uint8), "test_y": np.arange(2, dtype=np.uint8)}

    def check(case) -> None:
        (_, data), which = case
        for key, base in STANDARD_NAMES.items():
            write_idx(folder / base, good[key])
        (folder / STANDARD_NAMES[which]).write_bytes(data)
        call(tally, lambda: read_idx(folder / STANDARD_NAMES[which]), len(data))
        call(tally, lambda: load_dataset(f"idx:{folder}"), len(data))

    fuzz(tally, st.tuples(mutated(samples), st.sampled_from(sorted(STANDARD_NAMES))), check, n,
         derandomize)


# --- images ----------------------------------------------------------------------------------


def _image_check(tally: Tally, folder: Path):
    good = folder / "good.png"
    good.write_bytes(IMAGES["grey.png"])

    def check(case) -> None:
        (name, data), channels, size = case
        path = folder / f"case{Path(name).suffix}"
        path.write_bytes(data)
        call(tally, lambda: probe_image(path), len(data))
        img = call(tally, lambda: read_image(path, channels=channels, size=size), len(data))
        if img is not None:
            assert img.dtype == torch.float32 and img.shape[0] == channels
            assert bool(torch.isfinite(img).all())
            assert 0 <= float(img.min()) <= float(img.max()) <= 1
            if size is not None:
                assert tuple(img.shape[1:]) == size
        # A batch with the file in it: never raises, the good file is always processed.
        x, ok, bad = call(tally, lambda: read_images([path, good], channels, (12, 12)), len(data))
        assert str(good) in ok and len(ok) + len(bad) == 2
        assert x.shape == (len(ok), channels, 12, 12)

    return check


sizes = st.sampled_from([None, (12, 12), (1, 1), (5, 30)])


@budget(80, 3000)
def test_fuzz_image_loaders_mutated(tmp_path, n, derandomize):
    tally = Tally("images-mutated")
    fuzz(tally, st.tuples(mutated(IMAGES), st.sampled_from([1, 3]), sizes),
         _image_check(tally, tmp_path), n, derandomize)


@st.composite
def lying_headers(draw) -> tuple[str, bytes]:
    """Valid framing whose declared width/height are anything: a 100-byte file claiming
    65535x65535 must be rejected before Pillow allocates the image."""
    dim = st.integers(0, 70) | st.sampled_from([4097, 9000, 30000, 65535, 2**24, 2**31 - 1])
    w, h = draw(dim), draw(dim)
    if draw(st.booleans()):
        depth = draw(st.sampled_from([1, 2, 4, 8, 16, 3]))
        colour = draw(st.sampled_from([0, 2, 3, 4, 6, 1]))
        return "lying.png", png_with_header(w, h, depth, colour, draw(st.sampled_from([0, 1])),
                                            draw(st.binary(max_size=200)))
    name = draw(st.sampled_from([k for k in sorted(IMAGES) if not k.endswith((".tif", ".webp"))]))
    return name, set_dims(name, IMAGES[name], w, h)


@budget(40, 1500)
def test_fuzz_image_loaders_lying_sizes(tmp_path, n, derandomize):
    tally = Tally("images-lying-sizes")
    fuzz(tally, st.tuples(lying_headers(), st.sampled_from([1, 3]), sizes),
         _image_check(tally, tmp_path), n, derandomize)


# --- arrays (npz:) -----------------------------------------------------------------------------


def _npz_samples() -> dict[str, bytes]:
    x = np.arange(4 * 5 * 5, dtype=np.uint8).reshape(4, 5, 5)
    out = {}
    for name, kw in {"a.npz": {"x_train": x, "y_train": np.arange(4)},
                     "b.npz": {"x_train": x / 255.0, "x_test": x[:2] / 255.0}}.items():
        buf = io.BytesIO()
        np.savez(buf, **kw)
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    np.save(buf, x)
    out["c.npy"] = buf.getvalue()
    return out


@budget(30, 1000)
def test_fuzz_npz_loader(tmp_path, n, derandomize):
    from aekit.data import load_dataset

    tally = Tally("npz")

    def check(case) -> None:
        name, data = case
        path = tmp_path / f"case{Path(name).suffix}"
        path.write_bytes(data)
        call(tally, lambda: load_dataset(f"npz:{path}"), len(data))

    fuzz(tally, mutated(_npz_samples()), check, n, derandomize)


# --- JSON: config.json, metrics.json ----------------------------------------------------------


@budget(40, 1500)
def test_fuzz_json_readers(tmp_path, n, derandomize):
    tally = Tally("json")
    run = tmp_path / "run"
    run.mkdir()

    def check(data: bytes) -> None:
        for name, reader in (("config.json", read_config), ("metrics.json", read_metrics)):
            (run / name).write_bytes(data)
            call(tally, lambda r=reader: r(run), len(data))
        call(tally, lambda: read_json(run / "metrics.json"), len(data))

    fuzz(tally, json_texts(), check, n, derandomize)


@budget(40, 1500)
def test_fuzz_config_documents(tmp_path, n, derandomize):
    """config.json with the right keys and values of any type/range, with weights whose embedded
    config says the same (both files tampered): read_config and load_model only raise AekitError
    and never build a model the weights file could not hold."""
    import aekit.models  # noqa: F401
    from aekit.registry import all_models

    tally, run = Tally("config"), write_run(tmp_path / "run")
    tensors = {k: v.contiguous() for k, v in load_model(run)[0].state_dict().items()}

    def check(doc) -> None:
        text = json.dumps(doc)
        (run / "config.json").write_text(text)
        (run / "model.safetensors").write_bytes(st_save(tensors, {
            "format": "aekit-model/1",
            "config": json.dumps(doc.get("model") if isinstance(doc, dict) else doc,
                                 sort_keys=True)}))
        call(tally, lambda: read_config(run), len(text))
        call(tally, lambda: load_model(run), len(text))

    fuzz(tally, config_docs(sorted(all_models())), check, n, derandomize)


# --- model weights and checkpoints --------------------------------------------------------------


@budget(40, 1500)
def test_fuzz_model_file(tmp_path, n, derandomize):
    tally, run = Tally("model-safetensors"), write_run(tmp_path / "run")
    samples = {"model.safetensors": (run / "model.safetensors").read_bytes()}

    def check(case) -> None:
        _, data = case
        (run / "model.safetensors").write_bytes(data)
        model = call(tally, lambda: load_model(run), len(data))
        if model is not None:  # a flip inside tensor data is undetectable; the shapes still hold
            assert not model[0].training

    fuzz(tally, mutated(samples), check, n, derandomize)


@st.composite
def forged_state(draw, names: list[str]) -> bytes:
    """A well-formed safetensors file with the model's tensor names but any shapes/dtypes."""
    tensors = {}
    for name in draw(st.lists(st.sampled_from(names + ["extra.weight"]), unique=True,
                              max_size=len(names) + 1)):
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64,
                                      torch.uint8, torch.bool]))
        tensors[name] = torch.zeros(shape, dtype=dtype)
    return st_save(tensors, draw(st.sampled_from([None, {"format": "aekit-model/1"}])))


@budget(30, 1000)
def test_fuzz_checkpoint_file(tmp_path, n, derandomize):
    from aekit.train.checkpoint import CHECKPOINT_NAME

    tally, run = Tally("checkpoint"), write_run(tmp_path / "run")
    path = run / "checkpoint" / CHECKPOINT_NAME
    good = path.read_bytes()
    n_head = int.from_bytes(good[:8], "little")
    header = json.loads(good[8 : 8 + n_head])

    @st.composite
    def cases(draw) -> bytes:
        if draw(st.booleans()):
            return draw(mutated({"state": good}))[1]
        # Keep the tensors, forge the JSON metadata the loop resumes from.
        meta = dict(header["__metadata__"])
        key = draw(st.sampled_from(["meta", "optimizer"]))
        doc = json.loads(meta[key])
        if draw(st.booleans()) and isinstance(doc, dict) and doc:
            doc[draw(st.sampled_from(sorted(doc)))] = draw(st.sampled_from([None, -1, "x", [], {}]))
        else:
            doc = draw(st.sampled_from([None, [], {}, 1, "x"]))
        meta[key] = json.dumps(doc)
        body = good[8 + n_head :]
        new_header = json.dumps({**header, "__metadata__": meta}).encode()
        return struct.pack("<Q", len(new_header)) + new_header + body

    def check(data: bytes) -> None:
        path.write_bytes(data)
        call(tally, lambda: load_checkpoint(run), len(data))

    fuzz(tally, cases(), check, n, derandomize)


@budget(30, 1000)
def test_fuzz_forged_weights(tmp_path, n, derandomize):
    tally, run = Tally("model-forged-tensors"), write_run(tmp_path / "run")
    names = sorted(load_model(run)[0].state_dict())
    meta_cfg = json.loads(json.dumps(read_config(run).model_cfg.to_dict(), sort_keys=True))

    def check(data: bytes) -> None:
        # Re-stamp the real config into the forged file half of the time so shapes are checked.
        (run / "model.safetensors").write_bytes(data)
        call(tally, lambda: load_model(run), len(data))

    def restamp(data: bytes) -> bytes:
        from safetensors.torch import load

        return st_save(load(data), {"format": "aekit-model/1",
                                    "config": json.dumps(meta_cfg, sort_keys=True)})

    fuzz(tally, forged_state(names).map(restamp) | forged_state(names), check, n, derandomize)


# --- .aez (the codec's decoder, owned by the codec; included here for the counts) --------------


@budget(60, 2000)
def test_fuzz_aez_container(tmp_path, n, derandomize):
    from aekit.codec import io as bitstream

    samples = {}
    for i, shape in enumerate([(1, 4, 4), (3, 8, 6)]):
        f = bitstream.AezFile(**_aez_fields(bitstream, i, shape))
        samples[f"s{i}"] = bitstream.pack(f)
    tally = Tally("aez-container")

    def check(case) -> None:
        (_, data), fix_crc = case
        if fix_crc and len(data) > 4:  # get past the CRC to the fields behind it
            data = data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "big")
        call(tally, lambda: bitstream.unpack(data), len(data))

    raw = st.binary(max_size=200).map(lambda b: ("raw", b))
    fuzz(tally, st.tuples(mutated(samples) | raw, st.booleans()), check, n, derandomize)


def _aez_fields(bitstream, i: int, shape) -> dict:
    """Constructor arguments for a small valid AezFile, from the dataclass's own fields."""
    import dataclasses
    import inspect

    values = {"fingerprint": bytes(range(bitstream.FINGERPRINT_BYTES)), "shape": shape,
              "shapes": (shape,) * (i + 1),
              "payloads": (bytes([i, 1, 2, 3]) * (i + 1),) * (i + 1)}
    out = {}
    for f in dataclasses.fields(bitstream.AezFile):
        if f.name in values:
            out[f.name] = values[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise pytest.skip.Exception(f"AezFile field {f.name!r} unknown to this fuzzer; "
                                        f"signature {inspect.signature(bitstream.AezFile)}")
    return out



@budget(30, 1000)
def test_fuzz_aez_decoder(tmp_path, n, derandomize):
    """Whole decode (container + entropy-coded payloads + decoder network) with a real codec
    model; the CRC is re-stamped on half the cases so corrupt payloads reach the range decoder."""
    from aekit.codec.api import compress, decompress
    from tests.reliability.seeds import untrained_run

    model, _ = load_model(untrained_run(tmp_path / "codec", "codec", size=16))
    rng = np.random.default_rng(0)
    samples = {f"n{k}": compress(model, torch.from_numpy(
        rng.integers(0, 256, (k, 1, 16, 16), dtype=np.uint8))) for k in (1, 3)}
    tally = Tally("aez-decoder")

    def check(case) -> None:
        (_, data), fix_crc = case
        if fix_crc and len(data) > 4:
            data = data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "big")
        x = call(tally, lambda: decompress(data, model, like="torch"), len(data))
        if x is not None:  # any image size decodes; a list when the sizes differ
            for img in (x if isinstance(x, list) else list(x)):
                assert img.shape[0] == 1 and bool(torch.isfinite(img).all())

    fuzz(tally, st.tuples(mutated(samples), st.booleans()), check, n, derandomize)

"""aekit writes safetensors files itself (streamed, sorted metadata); they must be the library's
layout, read back exactly by the library, and the same bytes every time."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from aekit.io import parse_safetensors, write_safetensors

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.float16, torch.bfloat16,
          torch.int32, torch.float32, torch.float64, torch.int64]
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=12).filter(lambda s: s != "__metadata__")


@st.composite
def tensor_dicts(draw) -> dict[str, torch.Tensor]:
    out = {}
    for name in draw(st.lists(NAMES, max_size=6, unique=True)):
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        seed = draw(st.integers(0, 2**16))
        g = torch.Generator().manual_seed(seed)
        out[name] = (torch.randn(shape, generator=g, dtype=torch.float64) * 50).to(dtype)
    return out


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k])
        for k in a)


@settings(max_examples=60, deadline=None)
@given(tensors=tensor_dicts(), key=NAMES, value=st.text(max_size=20))
def test_same_bytes_as_the_library_with_one_metadata_key(tmp_path_factory, tensors, key, value):
    """With one metadata key the library's output is deterministic: the bytes must be equal."""
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    write_safetensors(path, tensors, {key: value})
    assert path.read_bytes() == st_save(tensors, {key: value})


@settings(max_examples=40, deadline=None)
@given(tensors=tensor_dicts(), metadata=st.dictionaries(NAMES, st.text(max_size=10), max_size=5))
def test_library_reads_it_back_and_bytes_repeat(tmp_path_factory, tensors, metadata):
    folder = tmp_path_factory.mktemp("st")
    write_safetensors(folder / "a", tensors, metadata)
    write_safetensors(folder / "b", dict(reversed(list(tensors.items()))), dict(metadata))
    raw = (folder / "a").read_bytes()
    assert raw == (folder / "b").read_bytes()  # insertion order does not matter
    assert _same(st_load(raw), tensors)
    loaded, meta = parse_safetensors(raw)
    assert meta == metadata and _same(loaded, tensors)
    assert [p.name for p in folder.iterdir()] in (["a", "b"], ["b", "a"])  # no temp left

"""Hypothesis strategies for hostile files: byte-level mutations of valid samples and structured
generators that keep a format's framing but lie in its fields (sizes, types, counts)."""

from __future__ import annotations

import gzip
import math
import struct

from hypothesis import strategies as st

INTERESTING_U32 = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                   0xFFFFFFFF]


@st.composite
def mutated(draw, samples: dict[str, bytes]) -> tuple[str, bytes]:
    """(sample name, its bytes after 1-6 random edits: bit flips, interesting 32-bit values,
    truncation, insertion, deletion, duplication)."""
    name = draw(st.sampled_from(sorted(samples)))
    b = bytearray(samples[name])
    for _ in range(draw(st.integers(1, 6))):
        if not b:
            b = bytearray(draw(st.binary(max_size=32)))
            continue
        i = draw(st.integers(0, len(b) - 1))
        op = draw(st.sampled_from(["flip", "byte", "u32", "truncate", "insert", "delete", "dup"]))
        if op == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            b[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF])) if draw(st.booleans()) \
                else draw(st.integers(0, 255))
        elif op == "u32":
            fmt = draw(st.sampled_from([">I", "<I"]))
            b[i : i + 4] = struct.pack(fmt, draw(st.sampled_from(INTERESTING_U32)))
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del b[i : i + draw(st.integers(1, 64))]
        else:
            j = draw(st.integers(0, len(b) - 1))
            b[i:i] = b[j : j + draw(st.integers(1, 256))]
    return name, bytes(b)


IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
IDX_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


@st.composite
def idx_files(draw) -> bytes:
    """IDX framing with lying fields: any type code, 0-6 dims mixing small and huge values,
    payload of the declared size or not, optionally gzipped, optionally cut short."""
    code = draw(st.sampled_from(IDX_CODES + [0x00, 0x07, 0x0A, 0xFF]))
    ndim = draw(st.integers(0, 6))
    dim = st.integers(0, 9) | st.sampled_from([255, 60000, 2**16, 2**31 - 1, 2**32 - 1])
    dims = draw(st.lists(dim, min_size=ndim, max_size=ndim))
    magic = draw(st.sampled_from([b"\0\0", b"\0\0", b"\0\0", b"\0\1", b"\x1f\x8b"]))
    head = magic + bytes([code, ndim]) + struct.pack(f">{ndim}I", *dims)
    declared = math.prod(dims) * IDX_SIZES.get(code, 1)
    if declared <= 2048 and draw(st.booleans()):
        payload = draw(st.binary(min_size=declared, max_size=declared))
    else:
        payload = draw(st.binary(max_size=512))
    data = head + payload
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        data = gzip.compress(data, compresslevel=1, mtime=0)
        if draw(st.integers(0, 3)) == 0:
            data = data[: draw(st.integers(0, len(data)))]
    return data


json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=10,
)


@st.composite
def json_texts(draw) -> bytes:
    """Documents a JSON reader may meet: valid JSON of any shape, deep nesting, very long
    numbers, odd encodings, random bytes, or a valid document cut short."""
    import json

    kind = draw(st.sampled_from(["value", "deep", "longnum", "encoding", "bytes", "cut"]))
    if kind == "deep":
        n = draw(st.integers(100, 200_000))
        return (draw(st.sampled_from(["[", '{"a":'])) * n).encode()
    if kind == "longnum":
        return (draw(st.sampled_from(["", "-", "0."])) + "7" * draw(st.integers(4000, 60_000))
                + draw(st.sampled_from(["", "e999999", "e-999999"]))).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=256))
    text = json.dumps(draw(json_values))
    if kind == "encoding":
        return text.encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig"])),
                           errors="replace")
    if kind == "cut":
        return text.encode()[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text.encode()


def config_docs(model_names: list[str]):
    """config.json documents: the right keys with values of any JSON type and range."""
    def field(good):
        return good | json_values

    model = st.fixed_dictionaries({}, optional={
        "name": field(st.sampled_from(model_names + ["nope"])),
        "in_channels": field(st.integers(-1, 5)),
        "height": field(st.integers(0, 5000)),
        "width": field(st.integers(0, 5000)),
        "latent_dim": field(st.integers(0, 1 << 21)),
        "widths": field(st.lists(st.integers(0, 70000), max_size=4)),
        "options": field(st.dictionaries(st.sampled_from(["beta", "dropout", "x", "keep"]),
                                         json_scalars, max_size=2)),
        "bogus": json_values,
    })
    train = st.fixed_dictionaries({}, optional={
        "dataset": field(st.sampled_from(["digits", "npz:/nonexistent", ""])),
        "epochs": field(st.integers(-1, 200_000)),
        "batch_size": field(st.integers(-1, 1 << 17)),
        "lr": field(st.floats(-1, 20)),
        "image_size": field(st.lists(st.integers(-1, 9000), max_size=3)),
        "precision": field(st.sampled_from(["auto", "fp32", "bf16", "fp8"])),
    })
    return st.fixed_dictionaries({}, optional={"model": model | json_values,
                                               "train": train | json_values,
                                               "aekit": json_values, "extra": json_values})

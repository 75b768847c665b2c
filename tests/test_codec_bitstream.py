"""The `.aez` container: golden bytes (docs/FORMAT.md), round trips, and a fuzzed parser."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.codec.io import AezFile, encode_varint, header_size, pack, unpack
from aekit.errors import FormatError

# The worked example of docs/FORMAT.md, byte by byte.
GOLDEN = AezFile(b"\x01\x02\x03\x04", (1, 28, 28), (b"\xaa\xbb", b"", b"\xcc"))
GOLDEN_HEX = (
    "41455a"  # magic "AEZ"
    "02"  # format version 2
    "01020304"  # model fingerprint
    "03"  # image count 3
    "011c1c"  # C=1, H=28, W=28
    "0200"  # payload lengths 2, 0 (the last payload runs to the CRC)
    "aabbcc"  # payloads
    "f4f5d231"  # CRC-32 of all bytes above, big-endian
)


def test_golden_bytes() -> None:
    assert pack(GOLDEN).hex() == GOLDEN_HEX
    assert unpack(bytes.fromhex(GOLDEN_HEX)) == GOLDEN
    assert zlib.crc32(bytes.fromhex(GOLDEN_HEX)[:-4]) == 0xF4F5D231


def test_golden_multibyte_varints() -> None:
    f = AezFile(b"\xde\xad\xbe\xef", (3, 300, 5), (bytes(range(200)), b"\x01"))
    data = pack(f)
    # H=300 -> ac 02, payload length 200 -> c8 01 (LEB128, least significant group first)
    assert data[:17].hex() == "41455a02deadbeef0203ac0205c8010001"
    assert len(data) == 17 - 2 + 201 + 4
    assert unpack(data) == f
    assert header_size(f) == 19


def test_one_image_file_has_no_length_field() -> None:
    f = AezFile(b"\x01\x02\x03\x04", (1, 28, 28), (bytes(300),))
    data = pack(f)
    assert data[:12].hex() == "41455a020102030401011c1c"  # ... N=1, C, H, W, then the payload
    assert header_size(f) == 16 and unpack(data) == f


@pytest.mark.parametrize("value,hex_", [(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"),
                                        (2**32 - 1, "ffffffff0f")])
def test_varint(value: int, hex_: str) -> None:
    assert encode_varint(value).hex() == hex_


def _body_with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


@pytest.mark.parametrize("data,match", [
    (b"", "wrong magic"),
    (b"PK\x03\x04" + bytes(20), "wrong magic"),
    (b"AEZ", "truncated"),
    (b"AEZ\x01" + bytes(20), "version 1"),
    (b"AEZ\x03" + bytes(20), "version 3"),
    (bytes.fromhex(GOLDEN_HEX)[:10], "truncated"),
    (bytes.fromhex(GOLDEN_HEX)[:-1], "truncated"),
    (bytes.fromhex(GOLDEN_HEX)[:-5], "truncated"),
    (bytes.fromhex(GOLDEN_HEX) + b"\x00", "CRC"),
    # CRC-valid files whose layout is inconsistent (a buggy or hostile writer)
    (_body_with_crc(b"AEZ\x02\x01\x02\x03\x04\x02\x01\x1c\x1c\x05\xaa"), "declares at least"),
    (_body_with_crc(b"AEZ\x02\x01\x02\x03\x04\x00\x01\x1c\x1c"), "count is 0"),
    (_body_with_crc(b"AEZ\x02\x01\x02\x03\x04\xff\xff\xff\xff\x0f\x01\x1c\x1c"), "declares"),
    (_body_with_crc(b"AEZ\x02\x01\x02\x03\x04\x01\x09\x1c\x1c\x00"), "shape"),
    (_body_with_crc(b"AEZ\x02\x01\x02\x03\x04\x81\x00\x01\x1c\x1c\x00"), "non-minimal"),
])
def test_bad_files_raise_one_clear_format_error(data: bytes, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        unpack(data)


def test_every_single_byte_flip_is_detected() -> None:
    data = bytes.fromhex(GOLDEN_HEX)
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(FormatError):
                unpack(bytes(bad))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4), st.integers(1, 4), st.integers(1, 70000),
       st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_roundtrip(fp: bytes, c: int, h: int, payloads: list[bytes]) -> None:
    f = AezFile(fp[:4], (c, min(h, 65536), 7), tuple(payloads))
    assert unpack(pack(f)) == f


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_only_format_errors(data: bytes) -> None:
    for candidate in (data, b"AEZ\x02" + data, _body_with_crc(b"AEZ\x02" + data)):
        try:
            f = unpack(candidate)
        except FormatError:
            continue
        assert unpack(pack(f)) == f  # whatever parses is a canonical file


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_golden_only_format_errors(data) -> None:
    raw = bytearray(bytes.fromhex(GOLDEN_HEX))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[i] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[i:]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    fix_crc = data.draw(st.booleans())
    blob = _body_with_crc(bytes(raw[:-4])) if fix_crc and len(raw) >= 4 else bytes(raw)
    try:
        unpack(blob)
    except FormatError:
        pass

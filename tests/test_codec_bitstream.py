"""The `.aez` container: golden bytes (docs/FORMAT.md), round trips, and a fuzzed parser."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aekit.codec.io import AezFile, encode_varint, header_size, pack, unpack
from aekit.errors import FormatError

# The worked examples of docs/FORMAT.md, byte by byte.
GOLDEN = AezFile.uniform(b"\x01\x02\x03\x04", (1, 28, 28), (b"\xaa\xbb", b"", b"\xcc"))
GOLDEN_HEX = (
    "41455a"  # magic "AEZ"
    "03"  # format version 3
    "01020304"  # model fingerprint
    "06"  # 2N + S: N = 3 images, S = 0 (one shape)
    "011c1c"  # C=1, H=28, W=28
    "0200"  # payload lengths 2, 0 (the last payload runs to the CRC)
    "aabbcc"  # payloads
    "236d7608"  # CRC-32 of all bytes above, big-endian
)
# Images of different sizes: runs of equal shapes.
MIXED = AezFile(b"\x01\x02\x03\x04", ((3, 512, 768), (3, 512, 768), (1, 28, 28)),
                (b"\xaa", b"\xbb", b"\xcc"))
MIXED_HEX = (
    "41455a" "03" "01020304"
    "07"  # 2N + S: N = 3, S = 1 (shape runs follow)
    "02"  # R = 2 runs
    "02" "03" "8004" "8006"  # 2 images of 3 x 512 x 768
    "01" "01" "1c" "1c"  # 1 image of 1 x 28 x 28
    "0101"  # payload lengths 1, 1
    "aabbcc"
)
# The version-2 layout (read, not written): the count as is, one shape.
GOLDEN_V2 = AezFile.uniform(b"\x01\x02\x03\x04", (1, 28, 28), (b"\xaa\xbb", b"", b"\xcc"),
                            version=2)
GOLDEN_V2_HEX = "41455a" "02" "01020304" "03" "011c1c" "0200" "aabbcc" "f4f5d231"


def _body_with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "big")


def test_golden_bytes() -> None:
    assert pack(GOLDEN).hex() == GOLDEN_HEX
    assert unpack(bytes.fromhex(GOLDEN_HEX)) == GOLDEN
    assert zlib.crc32(bytes.fromhex(GOLDEN_HEX)[:-4]) == 0x236D7608


def test_golden_mixed_shapes() -> None:
    data = pack(MIXED)
    assert data == _body_with_crc(bytes.fromhex(MIXED_HEX))
    assert unpack(data) == MIXED and MIXED.pixels == 2 * 512 * 768 + 28 * 28


def test_version_2_golden_file_still_reads() -> None:
    f = unpack(bytes.fromhex(GOLDEN_V2_HEX))
    assert f == GOLDEN_V2 and f.version == 2
    assert pack(GOLDEN_V2).hex() == GOLDEN_V2_HEX


def test_golden_multibyte_varints() -> None:
    f = AezFile.uniform(b"\xde\xad\xbe\xef", (3, 300, 5), (bytes(range(200)), b"\x01"))
    data = pack(f)
    # H=300 -> ac 02, payload length 200 -> c8 01 (LEB128, least significant group first)
    assert data[:17].hex() == "41455a03deadbeef0403ac0205c8010001"
    assert len(data) == 17 - 2 + 201 + 4
    assert unpack(data) == f
    assert header_size(f) == 19


def test_one_image_file_has_no_length_field() -> None:
    f = AezFile.uniform(b"\x01\x02\x03\x04", (1, 28, 28), (bytes(300),))
    data = pack(f)
    assert data[:12].hex() == "41455a030102030402011c1c"  # ... 2N+S=2, C, H, W, the payload
    assert header_size(f) == 16 and unpack(data) == f


@pytest.mark.parametrize("value,hex_", [(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"),
                                        (2**32 - 1, "ffffffff0f")])
def test_varint(value: int, hex_: str) -> None:
    assert encode_varint(value).hex() == hex_


@pytest.mark.parametrize("data,match", [
    (b"", "wrong magic"),
    (b"PK\x03\x04" + bytes(20), "wrong magic"),
    (b"AEZ", "truncated"),
    (b"AEZ\x01" + bytes(20), "made by an older aekit"),
    (b"AEZ\x05" + bytes(20), "version 5"),
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
    # version 3: the count is 2N + S
    (_body_with_crc(b"AEZ\x03\x01\x02\x03\x04\x01\x01\x01\x1c\x1c"), "count is 0"),
    (_body_with_crc(b"AEZ\x03\x01\x02\x03\x04\x05\x02\x01\x01\x1c\x1c"), "truncated"),
    (_body_with_crc(b"AEZ\x03\x01\x02\x03\x04\x05\x02\x01\x01\x1c\x1c"
                    b"\x01\x01\x1c\x1c\x00"), "same shape"),
    (_body_with_crc(b"AEZ\x03\x01\x02\x03\x04\x05\x02\x01\x01\x1c\x1c"
                    b"\x02\x01\x1c\x1d\x00"), "add up"),
    (_body_with_crc(b"AEZ\x03\x01\x02\x03\x04\x05\x09\x01\x01\x1c\x1c"
                    b"\x01\x01\x1c\x1d\x00"), "shape runs"),
])
def test_bad_files_raise_one_clear_format_error(data: bytes, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        unpack(data)


@pytest.mark.parametrize("golden", [GOLDEN_HEX, GOLDEN_V2_HEX])
def test_every_single_byte_flip_is_detected(golden: str) -> None:
    data = bytes.fromhex(golden)
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(FormatError):
                unpack(bytes(bad))


_SHAPES = st.tuples(st.integers(1, 4), st.integers(1, 65536), st.integers(1, 65536))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4, max_size=4),
       st.lists(st.tuples(_SHAPES, st.binary(max_size=300)), min_size=1, max_size=6))
def test_roundtrip(fp: bytes, images: list) -> None:
    f = AezFile(fp, tuple(s for s, _ in images), tuple(p for _, p in images))
    assert unpack(pack(f)) == f


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_only_format_errors(data: bytes) -> None:
    for candidate in (data, b"AEZ\x02" + data, _body_with_crc(b"AEZ\x02" + data),
                      b"AEZ\x03" + data, _body_with_crc(b"AEZ\x03" + data)):
        try:
            f = unpack(candidate)
        except FormatError:
            continue
        assert unpack(pack(f)) == f  # whatever parses is a canonical file


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_golden_only_format_errors(data) -> None:
    golden = data.draw(st.sampled_from([GOLDEN_HEX, GOLDEN_V2_HEX,
                                        pack(MIXED).hex()]))
    raw = bytearray(bytes.fromhex(golden))
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

"""The `.aez` container (docs/FORMAT.md is the byte-by-byte specification).

    magic "AEZ" | version u8 | model fingerprint 4 bytes | varint 2N + S |
    shapes: S = 0: channels, height, width varints shared by every image;
            S = 1: run count R, then R x (run length, channels, height, width) varints |
    payload length varints of images 1..N-1 | payloads | CRC-32 (big-endian u32) of every
    preceding byte

Version 3 stores each image's size (images of different sizes share one file, as runs of
equal shapes); a file whose images all share one shape has exactly version 2's layout after the
version byte, except that the image count is doubled (its low bit says "one shape"), so a
one-image file still costs 16 bytes of header and CRC. Version 2 files (one shape, plain count)
are still read. The last payload runs up to the CRC, so its length is not stored.

Varints are unsigned LEB128 in their shortest form (a non-minimal encoding is rejected, and so
is a shape list that a writer would have written otherwise, so every file has exactly one valid
byte sequence). Parsing checks every declared size against the bytes actually present before
anything is allocated, and every failure is a FormatError.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from aekit.errors import FormatError

MAGIC = b"AEZ"
VERSION = 3  # written by models without an intra predictor
INTRA_VERSION = 4  # written by models with one: version 3's layout, residual payloads
READABLE = (2, 3, 4)  # version 2: one shape per file, the count stored as is
FINGERPRINT_BYTES = 4
CRC_BYTES = 4
MAX_VARINT = (1 << 32) - 1  # every declared number fits in a u32
MAX_CHANNELS = 4
MAX_SIDE = 1 << 16
# magic + version + fingerprint + count + C + H + W + CRC: the smallest possible file
MIN_SIZE = len(MAGIC) + 1 + FINGERPRINT_BYTES + 4 + CRC_BYTES

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class AezFile:
    """A parsed `.aez` file: which model made it, each image's shape (C, H, W) and payload."""

    fingerprint: bytes
    shapes: tuple[Shape, ...]
    payloads: tuple[bytes, ...]
    version: int = VERSION

    @classmethod
    def uniform(cls, fingerprint: bytes, shape: Shape, payloads: tuple[bytes, ...],
                version: int = VERSION) -> AezFile:
        """A file whose images all have one shape."""
        return cls(fingerprint, (tuple(shape),) * len(payloads), tuple(payloads), version)

    @property
    def count(self) -> int:
        return len(self.payloads)

    @property
    def pixels(self) -> int:
        """H*W summed over the images (the denominator of bits per pixel)."""
        return sum(h * w for _, h, w in self.shapes)


def encode_varint(value: int) -> bytes:
    if not 0 <= value <= MAX_VARINT:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def shape_runs(shapes: tuple[Shape, ...]) -> list[tuple[int, Shape]]:
    """[(run length, shape)] of consecutive equal shapes."""
    runs: list[tuple[int, Shape]] = []
    for s in shapes:
        if runs and runs[-1][1] == s:
            runs[-1] = (runs[-1][0] + 1, s)
        else:
            runs.append((1, s))
    return runs


def _check_shape(shape: Shape) -> None:
    c, h, w = shape
    if not (1 <= c <= MAX_CHANNELS and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"image shape {shape} outside the format's limits")


def pack(f: AezFile) -> bytes:
    """Serialise an AezFile (its version: 2, 3 or 4); the inverse of `unpack`."""
    if len(f.fingerprint) != FINGERPRINT_BYTES:
        raise ValueError(f"fingerprint must be {FINGERPRINT_BYTES} bytes")
    if not f.payloads:
        raise ValueError("an .aez file holds at least one image")
    if len(f.shapes) != len(f.payloads):
        raise ValueError("one shape per payload")
    if f.version not in READABLE:
        raise ValueError(f"cannot write .aez version {f.version}")
    for s in f.shapes:
        _check_shape(s)
    runs = shape_runs(tuple(tuple(s) for s in f.shapes))
    n = len(f.payloads)
    if f.version == 2:
        if len(runs) > 1:
            raise ValueError("a version-2 file holds images of one shape")
        parts = [MAGIC, b"\x02", f.fingerprint, encode_varint(n)]
    else:
        parts = [MAGIC, bytes([f.version]), f.fingerprint,
                 encode_varint(2 * n + (len(runs) > 1))]
    if len(runs) == 1:
        parts += [encode_varint(v) for v in runs[0][1]]
    else:
        parts.append(encode_varint(len(runs)))
        for length, shape in runs:
            parts += [encode_varint(length)] + [encode_varint(v) for v in shape]
    parts += [encode_varint(len(p)) for p in f.payloads[:-1]]  # the last one runs to the CRC
    parts += list(f.payloads)
    body = b"".join(parts)
    return body + zlib.crc32(body).to_bytes(CRC_BYTES, "big")


class _Reader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise FormatError(f"truncated: the file ends inside the {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        value, shift = 0, 0
        while True:
            if self.pos >= self.end:
                raise FormatError(f"truncated: the file ends inside the {what}")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:
                    raise FormatError(f"corrupt {what}: non-minimal number encoding")
                break
            shift += 7
            if shift > 28:
                raise FormatError(f"corrupt {what}: number longer than 5 bytes")
        if value > MAX_VARINT:
            raise FormatError(f"corrupt {what}: {value} exceeds 2**32 - 1")
        return value


def read_header(data: bytes) -> tuple[int, bytes]:
    """Check magic and version; returns (version, fingerprint). Cheap, no CRC check."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not an .aez file (wrong magic bytes; expected it to start with 'AEZ')")
    if len(data) < len(MAGIC) + 1:
        raise FormatError("truncated: the file ends before the format version")
    version = data[len(MAGIC)]
    if version < READABLE[0]:
        raise FormatError(f".aez format version {version} was made by an older aekit; this "
                          f"aekit reads versions {READABLE[0]}-{READABLE[-1]} (decode it with the "
                          "aekit release that made it)")
    if version not in READABLE:
        raise FormatError(f"unsupported .aez format version {version}; this aekit reads "
                          f"versions {READABLE[0]}-{READABLE[-1]} (made by a newer aekit?)")
    if len(data) < MIN_SIZE:
        raise FormatError(f"truncated: {len(data)} bytes is shorter than the smallest .aez file "
                          f"({MIN_SIZE} bytes)")
    start = len(MAGIC) + 1
    return version, data[start : start + FINGERPRINT_BYTES]


def unpack(data: bytes) -> AezFile:
    """Parse and verify a whole `.aez` file; raises FormatError with one clear reason."""
    version, fingerprint = read_header(data)
    data = bytes(data)
    body_end = len(data) - CRC_BYTES
    declared, layout_error = _declared_size(data, body_end, version)
    stored_crc = int.from_bytes(data[body_end:], "big")
    if zlib.crc32(data[:body_end]) != stored_crc:
        if declared is not None and declared > len(data):
            raise FormatError(f"truncated: the file has {len(data)} bytes but its header "
                              f"declares at least {declared}")
        raise FormatError("corrupt or truncated: CRC-32 mismatch (the file was damaged or cut "
                          "short)")
    if layout_error is not None:  # CRC is fine, so the writer itself produced this
        raise FormatError(layout_error)
    r = _Reader(data, body_end)
    r.pos = len(MAGIC) + 1 + FINGERPRINT_BYTES
    shapes, lengths = _read_layout(r, version)
    payloads = [r.take(n, "payloads") for n in lengths]
    payloads.append(r.take(body_end - r.pos, "payloads"))  # the last one: up to the CRC
    return AezFile(fingerprint=fingerprint, shapes=shapes, payloads=tuple(payloads),
                   version=version)


def _shape(r: _Reader) -> Shape:
    c, h, w = r.varint("channels"), r.varint("height"), r.varint("width")
    if not (1 <= c <= MAX_CHANNELS and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise FormatError(f"corrupt: image shape {(c, h, w)} outside the format's limits "
                          f"(1-{MAX_CHANNELS} channels, sides 1-{MAX_SIDE})")
    return c, h, w


def _read_layout(r: _Reader, version: int) -> tuple[tuple[Shape, ...], list[int]]:
    """(shape of every image, lengths of payloads 1..N-1)."""
    word = r.varint("image count")
    count, several = (word, 0) if version == 2 else (word >> 1, word & 1)
    if count < 1:
        raise FormatError("corrupt: image count is 0")
    # Each of the N-1 lengths takes at least one byte, so a count beyond the bytes left is a
    # lie; checked before the list of lengths is allocated.
    if count - 1 > r.end - r.pos:
        raise FormatError(f"corrupt or truncated: header declares {count} images but only "
                          f"{r.end - r.pos} bytes follow")
    if not several:
        shapes = (_shape(r),) * count
    else:
        runs = r.varint("shape run count")
        if not 2 <= runs <= count:
            raise FormatError(f"corrupt: {runs} shape runs for {count} images (expected 2 to "
                              f"{count})")
        if 4 * runs > r.end - r.pos:  # each run takes at least 4 bytes
            raise FormatError(f"corrupt or truncated: header declares {runs} shape runs but "
                              f"only {r.end - r.pos} bytes follow")
        out: list[Shape] = []
        previous = None
        for _ in range(runs):
            length = r.varint("shape run length")
            shape = _shape(r)
            if length < 1 or len(out) + length > count:
                raise FormatError(f"corrupt: shape runs do not add up to the {count} images")
            if shape == previous:
                raise FormatError("corrupt: two consecutive shape runs have the same shape")
            out += [shape] * length
            previous = shape
        if len(out) != count:
            raise FormatError(f"corrupt: shape runs do not add up to the {count} images")
        shapes = tuple(out)
    lengths = [r.varint("payload lengths") for _ in range(count - 1)]
    return shapes, lengths


def _declared_size(data: bytes, body_end: int, version: int) -> tuple[int | None, str | None]:
    """The least file size the header implies (the last payload may be empty; None if
    unreadable) and any layout error message."""
    r = _Reader(data, len(data))
    r.pos = len(MAGIC) + 1 + FINGERPRINT_BYTES
    try:
        _, lengths = _read_layout(r, version)
    except FormatError as e:
        return None, str(e)
    declared = r.pos + sum(lengths) + CRC_BYTES
    if declared > len(data):
        return declared, (f"truncated: the file has {len(data)} bytes but its header "
                          f"declares at least {declared}")
    return declared, None


def header_size(f: AezFile) -> int:
    """Bytes of a packed file that are not payload (header + CRC)."""
    return len(pack(f)) - sum(len(p) for p in f.payloads)

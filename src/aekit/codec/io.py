"""The `.aez` container (docs/FORMAT.md is the byte-by-byte specification).

    magic "AEZ" | version u8 | model fingerprint 4 bytes | image count varint N |
    channels, height, width varints | payload length varints of images 1..N-1 |
    payloads | CRC-32 (big-endian u32) of every preceding byte

The last payload runs up to the CRC, so its length is not stored (version 2; version 1 stored
it): a one-image file has no length field at all, which saves 1-2 bytes (0.01-0.02 bits per
pixel at 28x28).

Varints are unsigned LEB128 in their shortest form (a non-minimal encoding is rejected, so every
file has exactly one valid byte sequence). Parsing checks every declared size against the bytes
actually present before anything is allocated, and every failure is a FormatError.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from aekit.errors import FormatError

MAGIC = b"AEZ"
VERSION = 2
FINGERPRINT_BYTES = 4
CRC_BYTES = 4
MAX_VARINT = (1 << 32) - 1  # every declared number fits in a u32
MAX_CHANNELS = 4
MAX_SIDE = 1 << 16
# magic + version + fingerprint + count + C + H + W + CRC: the smallest possible file
MIN_SIZE = len(MAGIC) + 1 + FINGERPRINT_BYTES + 4 + CRC_BYTES


@dataclass(frozen=True)
class AezFile:
    """A parsed `.aez` file: which model made it, the image shape and one payload per image."""

    fingerprint: bytes
    shape: tuple[int, int, int]  # (C, H, W)
    payloads: tuple[bytes, ...]
    version: int = VERSION

    @property
    def count(self) -> int:
        return len(self.payloads)


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


def pack(f: AezFile) -> bytes:
    """Serialise an AezFile; the inverse of `unpack`."""
    if len(f.fingerprint) != FINGERPRINT_BYTES:
        raise ValueError(f"fingerprint must be {FINGERPRINT_BYTES} bytes")
    if not f.payloads:
        raise ValueError("an .aez file holds at least one image")
    c, h, w = f.shape
    if not (1 <= c <= MAX_CHANNELS and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"image shape {f.shape} outside the format's limits")
    parts = [MAGIC, bytes([VERSION]), f.fingerprint, encode_varint(len(f.payloads)),
             encode_varint(c), encode_varint(h), encode_varint(w)]
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
    if version != VERSION:
        raise FormatError(f"unsupported .aez format version {version}; this aekit reads "
                          f"version {VERSION} (made by a different aekit release?)")
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
    declared, layout_error = _declared_size(data, body_end)
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
    count, shape, lengths = _read_layout(r)
    payloads = [r.take(n, "payloads") for n in lengths]
    payloads.append(r.take(body_end - r.pos, "payloads"))  # the last one: up to the CRC
    return AezFile(fingerprint=fingerprint, shape=shape, payloads=tuple(payloads),
                   version=version)


def _read_layout(r: _Reader) -> tuple[int, tuple[int, int, int], list[int]]:
    """(count, shape, lengths of payloads 1..N-1)."""
    count = r.varint("image count")
    if count < 1:
        raise FormatError("corrupt: image count is 0")
    # Each of the N-1 lengths takes at least one byte, so a count beyond the bytes left is a
    # lie; checked before the list of lengths is allocated.
    if count - 1 > r.end - r.pos:
        raise FormatError(f"corrupt or truncated: header declares {count} images but only "
                          f"{r.end - r.pos} bytes follow")
    c, h, w = r.varint("channels"), r.varint("height"), r.varint("width")
    if not (1 <= c <= MAX_CHANNELS and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise FormatError(f"corrupt: image shape {(c, h, w)} outside the format's limits "
                          f"(1-{MAX_CHANNELS} channels, sides 1-{MAX_SIDE})")
    lengths = [r.varint("payload lengths") for _ in range(count - 1)]
    return count, (c, h, w), lengths


def _declared_size(data: bytes, body_end: int) -> tuple[int | None, str | None]:
    """The least file size the header implies (the last payload may be empty; None if
    unreadable) and any layout error message."""
    r = _Reader(data, len(data))
    r.pos = len(MAGIC) + 1 + FINGERPRINT_BYTES
    try:
        _, _, lengths = _read_layout(r)
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

"""Range coding of integer symbols with `constriction` and frozen integer frequency tables.

A `TableCoder` holds one categorical model per table, each built from integer frequencies (a
model's frozen buffers), so encoder and decoder build bit-identical models on any machine. An
image's payload is one range-coder stream: the caller `put`s groups of symbols, each group coded
i.i.d. with one table, and the decoder `get`s the same groups in the same order. Tables with a
single symbol are never coded (the decoder knows the symbol).

Termination. constriction seals a stream with a whole 32-bit word (sometimes two) so that it
could be concatenated with arbitrary data. Our payloads are length-delimited and the decoder
reads zeros past the end, so we end the stream with the point of the final coding interval that
has the most trailing zero bits, write the words big-endian and drop trailing zero bytes: ~2 bytes
saved per image on average, which matters at ~100-byte images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aekit.errors import FormatError

try:
    import constriction
except ImportError as _e:  # pragma: no cover - a declared dependency
    raise ImportError("aekit's codec needs the 'constriction' package: pip install constriction") \
        from _e

_STATE_BITS = 64  # constriction's default range coder: 32-bit words, 64-bit state
_WORD_BITS = 32


class TableCoder:
    """Categorical models for a list of integer frequency tables (each summing to a power of 2
    or not; only ratios matter, and every listed symbol must have frequency >= 1)."""

    def __init__(self, tables: Sequence[np.ndarray]) -> None:
        self.sizes = [len(t) for t in tables]
        # Integer frequencies as float64 are exact, so each model is a deterministic function
        # of the stored integers.
        self.models = [
            constriction.stream.model.Categorical(np.asarray(t, dtype=np.float64), perfect=False)
            if len(t) > 1 else None
            for t in tables
        ]

    def encoder(self) -> Encoder:
        return Encoder(self)

    def decoder(self, payload: bytes) -> Decoder:
        return Decoder(self, payload)


class Encoder:
    def __init__(self, coder: TableCoder) -> None:
        self.coder = coder
        self.enc = constriction.stream.queue.RangeEncoder()

    def put(self, table: int, symbols: np.ndarray) -> None:
        """Code int32 symbols in [0, size of `table`) with that table's model."""
        model = self.coder.models[table]
        if model is not None and len(symbols):
            self.enc.encode(np.ascontiguousarray(symbols, dtype=np.int32), model)

    def finish(self) -> bytes:
        return _terminate(self.enc)


class Decoder:
    def __init__(self, coder: TableCoder, payload: bytes) -> None:
        self.coder = coder
        pad = -len(payload) % 4
        words = np.frombuffer(bytes(payload) + b"\0" * pad, dtype=">u4").astype(np.uint32)
        try:
            self.dec = constriction.stream.queue.RangeDecoder(words)
        except (ValueError, RuntimeError) as e:  # pragma: no cover - any words are accepted
            raise FormatError(f"payload cannot be decoded ({e})") from None

    def get(self, table: int, count: int) -> np.ndarray:
        model = self.coder.models[table]
        if model is None or count == 0:
            return np.zeros(count, dtype=np.int32)
        try:
            return np.asarray(self.dec.decode(model, count), dtype=np.int32)
        # constriction asserts when the words reach a state no symbol maps to (data that no
        # encoder wrote): the CRC catches such corruption first, this is the last line.
        except (ValueError, RuntimeError, OverflowError, AssertionError) as e:
            raise FormatError(f"payload cannot be decoded ({e})") from None


def _terminate(enc) -> bytes:
    """Shortest byte string (the decoder pads zeros) that decodes to what `enc` holds."""
    words = enc.get_compressed()
    if len(words) == 0:
        return b""
    position, (lower, size) = enc.pos()
    # constriction wrote the held-back words assuming its own sealing point did not wrap past
    # 2**64; in that (probability ~2**-32) case keep its termination unchanged.
    if lower + (1 << (_STATE_BITS - _WORD_BITS)) - 1 >= 1 << _STATE_BITS:
        return words.astype(">u4").tobytes().rstrip(b"\0")
    upper = min(lower + size, 1 << _STATE_BITS)  # exclusive
    point = lower
    for t in range(_STATE_BITS, -1, -1):
        v = -(-lower >> t) << t  # smallest multiple of 2**t that is >= lower
        if v < upper:
            point = v
            break
    head = words[:position].astype(">u4").tobytes()
    return (head + point.to_bytes(8, "big")).rstrip(b"\0")

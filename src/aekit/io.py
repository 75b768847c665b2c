"""Atomic file writes: a temp file in the same folder, fsync, then rename over the final name.

A reader (or a kill at any moment) therefore sees either the old complete file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aekit.errors import RunError

# mkstemp creates 0600 files; published files get the usual 0666 & ~umask like open() would.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp file's path in `path`'s folder; when the block ends without an exception the
    file is fsynced and renamed over `path`, otherwise it is removed. For writers that need a
    file name rather than bytes (ONNX export) and may check the result before publishing it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunError(f"disk full at {path}: nothing was replaced (the previous file, if "
                           "any, is intact); free some space and run the command again"
                           ) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files that atomic writes killed mid-way (SIGKILL, power loss) left in
    `folder`; returns what was removed. Only for a folder no live process is writing to."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def read_bytes(path: str | os.PathLike, what: str, missing: str | None = None) -> bytes:
    """Read a whole file; a missing or unreadable one (a folder, no permission) is a RunError
    that names it. `missing` replaces the default "PATH: WHAT not found" message."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RunError(missing or f"{path}: {what} not found") from None
    except OSError as e:
        raise RunError(f"{path}: cannot read {what}: {e.strerror or e}") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a RunError that names the file."""
    path = Path(path)
    raw = read_bytes(path, what)
    try:
        return json.loads(raw.decode("utf-8"))
    # ValueError also covers integers longer than Python's int_max_str_digits (4300).
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise RunError(f"{path}: {what} is not valid JSON ({type(e).__name__})") from None


# --- safetensors with metadata: the one reader and writer of every aekit weights file ----------
# Tensors are stored as tensors, everything else as JSON strings in the header's __metadata__;
# nothing is ever unpickled.

# torch dtype -> safetensors dtype name, in the library's own dtype order: it writes larger
# alignments first (the end of this order first), then names in ascending order; the same layout
# is written here.
_TORCH_ST = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
             "float16": "F16", "bfloat16": "BF16", "int32": "I32", "uint32": "U32",
             "float32": "F32", "float64": "F64", "int64": "I64", "uint64": "U64"}
_ST_RANK = {name: rank for rank, name in enumerate(_TORCH_ST.values())}


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Any],
                      metadata: dict[str, str]) -> None:
    """Write `tensors` and string `metadata` as a safetensors file, atomically.

    Written here rather than by the library's `save`, which builds the whole file as one bytes
    object (a checkpoint — weights, best weights, optimizer state — then sat in memory twice
    more while it was written) and orders `__metadata__` keys at random (the same weights gave
    different bytes). Here each tensor is streamed from its own memory and the metadata keys are
    sorted, so the same tensors always give the same bytes; the layout is the library's (header
    padded with spaces to a multiple of 8, tensors by dtype then name), and the library reads it.
    """
    import torch

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    try:
        kinds = {k: _TORCH_ST[str(v.dtype).removeprefix("torch.")] for k, v in tensors.items()}
    except KeyError as e:
        raise ValueError(f"safetensors cannot store dtype {e}") from None
    names = sorted(tensors, key=lambda k: (-_ST_RANK[kinds[k]], k))
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for k in names:
        size = tensors[k].numel() * tensors[k].element_size()
        header[k] = {"dtype": kinds[k], "shape": list(tensors[k].shape),
                     "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for k in names:
            t = tensors[k]
            if t.numel():  # (N,) bytes of the tensor's memory, no copy
                f.write(t.reshape(-1).view(torch.uint8).numpy().data)


def parse_safetensors(raw: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) from a safetensors file's bytes; raises ValueError (or the library's
    SafetensorError) on anything malformed, for the caller to name the file."""
    from safetensors.torch import load as st_load

    tensors = st_load(raw)
    n = int.from_bytes(raw[:8], "little")
    meta = json.loads(raw[8 : 8 + n]).get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("__metadata__ is not an object")
    return tensors, meta


def read_safetensors(path: str | os.PathLike, what: str, missing: str | None = None
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; every failure is a RunError naming the file."""
    from safetensors import SafetensorError

    path = Path(path)
    raw = read_bytes(path, what, missing)
    try:
        return parse_safetensors(raw)
    except (SafetensorError, ValueError, UnicodeDecodeError, RecursionError):
        raise RunError(f"{path}: not a valid safetensors file (corrupt, truncated or a "
                       "different format); nothing was loaded") from None

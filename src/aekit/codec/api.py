"""Python API of the codec: `compress(model, x) -> bytes`, `decompress(data, model) -> x`.

The model does the tensor work (images <-> integer symbols), `entropy` turns symbols into
payloads and `io` packs payloads into the `.aez` container.
"""

from __future__ import annotations

import hashlib
import weakref

import numpy as np
import torch

from aekit.codec.entropy import TableCoder
from aekit.codec.io import FINGERPRINT_BYTES, AezFile, pack, unpack
from aekit.errors import DataError, FormatError, RunError
from aekit.models.base import AutoencoderModule

DEFAULT_BATCH = 1024
_coders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(model: torch.nn.Module) -> bytes:
    """First 4 bytes of SHA-256 over every tensor of the state dict (name, dtype, shape, data),
    frozen entropy tables included: a file decodes only with the exact weights that made it.
    Cached per model until a tensor changes (PyTorch bumps a tensor's version on every
    in-place write: optimizer steps, load_state_dict, finalize)."""
    state = model.state_dict(keep_vars=True)  # the tensors themselves: stable ids
    key = tuple((name, id(t), t._version) for name, t in state.items())
    cached = _fingerprints.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        a = (t if t.dtype != torch.bfloat16 else t.float()).numpy()
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())  # little-endian
    fp = h.digest()[:FINGERPRINT_BYTES]
    _fingerprints[model] = (key, fp)
    return fp


def _check_codec(model: torch.nn.Module) -> None:
    if not (isinstance(model, AutoencoderModule) and model.entropy_coded):
        name = model.cfg.name if isinstance(model, AutoencoderModule) else type(model).__name__
        raise RunError(f"model {name!r} is not a codec; compression needs a run trained with "
                       "--model codec")
    model._require_frozen()


def _coder(model) -> TableCoder:
    """The model's range coder (table 0: cluster index, 1 + t: scale level t, last: the
    per-image shift), rebuilt only when its frozen tables change."""
    parts = (model.freqs, model.lengths, model.cluster_freqs)
    key = b"".join(t.cpu().numpy().tobytes() for t in parts) + bytes([model.max_shift])
    cached = _coders.get(model)
    if cached is None or cached[0] != key:
        freqs, lengths = model.freqs.cpu().numpy(), model.lengths.cpu().numpy()
        tables = [model.cluster_freqs.cpu().numpy()]
        tables += [freqs[t, : lengths[t]] for t in range(len(lengths))]
        tables.append(model.shift_table())
        cached = (key, TableCoder(tables))
        _coders[model] = cached
    return cached[1]


def as_images(x, model) -> torch.Tensor:
    """uint8 or float [0, 1] images, (C, H, W) or (B, C, H, W), numpy or torch -> float32 batch
    of the model's shape; anything else is a DataError."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    shape = tuple(model.cfg.shape)
    if t.ndim != 4 or tuple(t.shape[1:]) != shape:
        got = "x".join(str(s) for s in t.shape[-3:]) if t.ndim >= 3 else str(tuple(t.shape))
        raise DataError(f"images of shape (C, H, W) = {got.replace('x', ', ')} do not fit this "
                        f"codec, which expects {shape}; resize or use a model trained on this size")
    if len(t) == 0:
        raise DataError("no images to compress")
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    if not t.is_floating_point():
        raise DataError(f"images must be uint8 or float in [0, 1], got {t.dtype}")
    t = t.float()
    if not torch.isfinite(t).all():
        raise DataError("images contain NaN or infinite values")
    if t.min() < 0 or t.max() > 1:
        raise DataError(f"float images must lie in [0, 1] (got {float(t.min()):.3g} to "
                        f"{float(t.max()):.3g}); divide uint8 data by 255")
    return t


def encode_payloads(model, x, batch_size: int = DEFAULT_BATCH) -> list[bytes]:
    """Images -> one entropy-coded payload per image (no container)."""
    _check_codec(model)
    x = as_images(x, model)
    coder, m = _coder(model), model.max_shift
    shift_table = len(coder.sizes) - 1
    device = next(model.parameters()).device
    payloads: list[bytes] = []
    for start in range(0, len(x), batch_size):
        k, s, idx = model.symbols(x[start : start + batch_size].to(device))
        for ki, si, row in zip(k.tolist(), s.tolist(), idx.cpu().numpy(), strict=True):
            enc = coder.encoder()
            enc.put(0, np.array([ki], dtype=np.int32))
            enc.put(shift_table, np.array([si + m], dtype=np.int32))
            for t, dims in model.coding_plan(ki, si):
                enc.put(1 + t, row[dims])
            payloads.append(enc.finish())
    return payloads


def compress(model, x, batch_size: int = DEFAULT_BATCH) -> bytes:
    """Images (B, C, H, W) or (C, H, W) -> one `.aez` container holding all of them."""
    payloads = encode_payloads(model, x, batch_size)
    return pack(AezFile(fingerprint(model), tuple(model.cfg.shape), tuple(payloads)))


def compress_each(model, x, batch_size: int = DEFAULT_BATCH) -> list[bytes]:
    """Images -> one complete single-image `.aez` file per image."""
    payloads = encode_payloads(model, x, batch_size)
    fp, shape = fingerprint(model), tuple(model.cfg.shape)
    return [pack(AezFile(fp, shape, (p,))) for p in payloads]


def check_file_matches(f: AezFile, model) -> None:
    fp = fingerprint(model)
    if f.fingerprint != fp:
        raise FormatError(f"made by a different model (file fingerprint {f.fingerprint.hex()}, "
                          f"this model {fp.hex()}); decompress with the run that compressed it")
    if tuple(f.shape) != tuple(model.cfg.shape):
        raise FormatError(f"holds images of shape {f.shape} but the model makes "
                          f"{tuple(model.cfg.shape)}")


def decompress(data: bytes, model, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """`.aez` bytes -> float32 images (N, C, H, W) in [0, 1]: exactly the model's quantized
    reconstruction of what was compressed."""
    _check_codec(model)
    f = unpack(data)
    check_file_matches(f, model)
    return decode_payloads(model, f.payloads, batch_size)


def decode_payloads(model, payloads, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Payloads -> images; the symbols are decoded bit-exactly from the integer tables."""
    coder, m = _coder(model), model.max_shift
    shift_table = len(coder.sizes) - 1
    d = model.cfg.latent_dim
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(payloads), batch_size):
        chunk = payloads[start : start + batch_size]
        ks = np.zeros(len(chunk), dtype=np.int64)
        ss = np.zeros(len(chunk), dtype=np.int64)
        idx = np.zeros((len(chunk), d), dtype=np.int32)
        for i, payload in enumerate(chunk):
            dec = coder.decoder(payload)
            ks[i] = dec.get(0, 1)[0]
            ss[i] = dec.get(shift_table, 1)[0] - m
            for t, dims in model.coding_plan(int(ks[i]), int(ss[i])):
                idx[i, dims] = dec.get(1 + t, len(dims))
        x = model.reconstruct_symbols(torch.from_numpy(ks).to(device),
                                      torch.from_numpy(ss).to(device),
                                      torch.from_numpy(idx).to(device))
        out.append(x.cpu())
    return torch.cat(out)


def info(data: bytes) -> dict:
    """What `aekit codec-info` shows: the parsed header and where the bytes go."""
    f = unpack(data)
    c, h, w = f.shape
    payload = sum(len(p) for p in f.payloads)
    return {"version": f.version, "fingerprint": f.fingerprint.hex(), "images": f.count,
            "shape": list(f.shape), "bytes": len(data), "payload_bytes": payload,
            "header_bytes": len(data) - payload,
            "bits_per_pixel": len(data) * 8.0 / (f.count * h * w),
            "payload_bits_per_pixel": payload * 8.0 / (f.count * h * w)}

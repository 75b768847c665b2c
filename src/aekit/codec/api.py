"""Python API of the codec: `compress(model, x) -> bytes`, `decompress(data, model) -> x`.

`model` is a codec: an `aekit.Autoencoder(model="codec")` fitted on images (its pixel units
apply), a run folder trained with `--model codec`, or the codec network itself. Images are numpy
or torch, (N, H, W), (N, C, H, W), (N, H, W, C) or one image (C, H, W) of the model's shape;
uint8/integers 0..255 or floats 0..1 (0..`pixel_max_` for an Autoencoder).

The bytes carry no array library, so `decompress` returns numpy unless `like` asks otherwise:
`like="torch"` for a tensor, or `like=x` (e.g. the images that were compressed) for x's library
and layout. Without `like` the result is float32 (N, C, H, W).

The model does the tensor work (images <-> integer symbols), `entropy` turns symbols into
payloads and `io` packs payloads into the `.aez` container.
"""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.codec.entropy import TableCoder
from aekit.codec.io import FINGERPRINT_BYTES, AezFile, pack, unpack
from aekit.data.units import as_images as read_images
from aekit.data.units import layout_of, like_input, read_array, to_layout, to_unit
from aekit.errors import (
    AekitTypeError,
    ConfigError,
    DataError,
    FormatError,
    Param,
    check_params,
)
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
        raise ConfigError(f"model: {name!r} is not a codec; compression needs one trained with "
                          "--model codec (or aekit.Autoencoder(model='codec'))")
    if not model.frozen:
        raise ConfigError("model: the codec has no frozen entropy tables; call model.finalize() "
                          "after training (aekit's training loop does this)")


def resolve(model: Any) -> tuple[torch.nn.Module, float, float]:
    """(codec network, value of white for integer images, for float images) of `model`: a
    fitted aekit.Autoencoder, a run folder or the network itself."""
    if isinstance(model, str | Path):
        from aekit.core.io import load_model

        model, _ = load_model(model)
    if isinstance(model, torch.nn.Module):
        _check_codec(model)
        return model, 255.0, 1.0
    if hasattr(model, "get_params") and hasattr(model, "transform"):  # an aekit.Autoencoder
        from aekit.errors import check_fitted

        check_fitted(model, "call fit(X) or aekit.load(dir)")
        _check_codec(model.module_)
        pixel_max = model.get_params().get("pixel_max")
        return model.module_, 255.0 if pixel_max is None else float(pixel_max), \
            float(model.pixel_max_)
    raise AekitTypeError(f"model: expected a codec (a fitted aekit.Autoencoder(model='codec'), "
                         f"a run folder or the codec network), got {type(model).__name__}")


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


def as_images(x: Any, model: torch.nn.Module, int_white: float = 255.0,
              float_white: float = 1.0) -> torch.Tensor:
    """Images in any layout (or one image (C, H, W) of the model's shape), numpy or torch ->
    float32 (N, C, H, W) in [0, 1]; anything else is a DataError or AekitTypeError naming x."""
    shape = tuple(model.cfg.shape)
    t = read_array(x, "x")
    if tuple(t.shape) == shape:  # one image (C, H, W)
        t = t.unsqueeze(0)
    t, _ = read_images(t, "x", shape, owner="this codec", int_white=int_white,
                       float_white=float_white)
    return to_unit(t)


_BATCH = {"batch_size": Param("int", 1, 1 << 20)}


def encode_payloads(model, x, batch_size: int = DEFAULT_BATCH) -> list[bytes]:
    """Images -> one entropy-coded payload per image (no container)."""
    return _encode(*_inputs(model, x, batch_size), batch_size)


def _inputs(model, x, batch_size: int) -> tuple[torch.nn.Module, torch.Tensor]:
    check_params("compress", {"batch_size": batch_size}, _BATCH)
    net, int_white, float_white = resolve(model)
    return net, as_images(x, net, int_white, float_white)


def _encode(model, x: torch.Tensor, batch_size: int) -> list[bytes]:
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
    """Images (N, H, W), (N, C, H, W), (N, H, W, C) or one (C, H, W) -> one `.aez` container
    holding all of them."""
    net, x = _inputs(model, x, batch_size)
    payloads = _encode(net, x, batch_size)
    return pack(AezFile(fingerprint(net), tuple(net.cfg.shape), tuple(payloads)))


def compress_each(model, x, batch_size: int = DEFAULT_BATCH) -> list[bytes]:
    """Images -> one complete single-image `.aez` file per image."""
    net, x = _inputs(model, x, batch_size)
    payloads = _encode(net, x, batch_size)
    fp, shape = fingerprint(net), tuple(net.cfg.shape)
    return [pack(AezFile(fp, shape, (p,))) for p in payloads]


def check_file_matches(f: AezFile, model) -> None:
    fp = fingerprint(model)
    if f.fingerprint != fp:
        raise FormatError(f"made by a different model (file fingerprint {f.fingerprint.hex()}, "
                          f"this model {fp.hex()}); decompress with the run that compressed it")
    if tuple(f.shape) != tuple(model.cfg.shape):
        raise FormatError(f"holds images of shape {f.shape} but the model makes "
                          f"{tuple(model.cfg.shape)}")


def read_data(data: Any) -> bytes:
    """`.aez` bytes as given (bytes, bytearray, memoryview) or read from a file path."""
    if isinstance(data, str | Path):
        try:
            return Path(data).read_bytes()
        except OSError as e:
            raise DataError(f"data: cannot read {data} ({e.strerror or e})") from None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise AekitTypeError(f"data: expected the bytes of an .aez file (or its path), got "
                         f"{type(data).__name__}")


LIKES = ("numpy", "torch")


def decompress(data: Any, model, batch_size: int = DEFAULT_BATCH, like: Any = None) -> Any:
    """`.aez` bytes (or a path) -> the images: exactly the model's quantized reconstruction of
    what was compressed, float32 in [0, 1] (0..`pixel_max_` for an Autoencoder).

    like: None or "numpy" (numpy (N, C, H, W)), "torch" (a tensor (N, C, H, W)), or an array
    or tensor of images of the model's shape (e.g. the compressed ones): its library and layout.
    """
    check_params("decompress", {"batch_size": batch_size}, _BATCH)
    if isinstance(like, str) and like not in LIKES:
        raise ConfigError(f"decompress: like={like!r} is not allowed; expected 'numpy', "
                          "'torch', an array or a tensor")
    data = read_data(data)
    net, _, float_white = resolve(model)
    layout = "nchw" if like is None or isinstance(like, str) else \
        layout_of(like, tuple(net.cfg.shape), "like", "this codec")
    f = unpack(data)
    check_file_matches(f, net)
    x = decode_payloads(net, f.payloads, batch_size)
    if float_white != 1.0:
        x = x * float_white
    x = to_layout(x, layout)
    if isinstance(like, str) and like == "torch":
        return x
    return like_input(x, np.empty(0, np.float32) if like is None or isinstance(like, str)
                      else like)


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


def info(data: Any) -> dict:
    """What `aekit codec-info` shows: the parsed header and where the bytes go. `data`: the
    bytes of an `.aez` file or its path."""
    data = read_data(data)
    f = unpack(data)
    c, h, w = f.shape
    payload = sum(len(p) for p in f.payloads)
    return {"version": f.version, "fingerprint": f.fingerprint.hex(), "images": f.count,
            "shape": list(f.shape), "bytes": len(data), "payload_bytes": payload,
            "header_bytes": len(data) - payload,
            "bits_per_pixel": len(data) * 8.0 / (f.count * h * w),
            "payload_bits_per_pixel": payload * 8.0 / (f.count * h * w)}

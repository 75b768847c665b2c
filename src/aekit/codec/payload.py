"""An image's entropy-coded payload (docs/FORMAT.md, "Payload of one image"): the symbol order
of its blocks, the range coder over the model's frozen tables, and per-image rate control.

The model does the tensor work (images <-> integer symbols per block); this module orders the
symbols of all blocks of one image into one range-coder stream and back.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch

from aekit.codec import intra, side
from aekit.codec.blocks import grid
from aekit.codec.entropy import TableCoder
from aekit.codec.io import INTRA_VERSION, VERSION
from aekit.codec.steps import MAX_STEP, N_LEVELS, step_table
from aekit.data.units import to_unit

_coders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Images are encoded this many blocks at a time (memory stays bounded for any image size).
BLOCKS_PER_CALL = 8192
StepSpec = int | tuple  # a fixed step, or ("psnr", dB) / ("bpp", bits per pixel)


def coder_of(model) -> TableCoder:
    """The model's range coder (table 0: cluster index, 1 + t: scale level t, then the
    per-block shift, the per-image rate-control step, the intra residuals' escape, then with a
    predictor the cluster given the left one's and the shift difference: `_table_ids`),
    rebuilt only when its frozen tables change."""
    parts = (model.freqs, model.lengths, model.cluster_freqs, model.cluster_context,
             model.shift_delta)
    key = b"".join(t.cpu().numpy().tobytes() for t in parts) + bytes([model.max_shift])
    cached = _coders.get(model)
    if cached is None or cached[0] != key:
        freqs, lengths = model.freqs.cpu().numpy(), model.lengths.cpu().numpy()
        tables = [model.cluster_freqs.cpu().numpy()]
        tables += [freqs[t, : lengths[t]] for t in range(len(lengths))]
        tables.append(model.shift_table())
        tables.append(step_table())
        tables.append(intra.escape_table())
        tables += list(model.cluster_context.cpu().numpy())  # (empty without a predictor)
        if model.shift_delta.numel():
            tables.append(model.shift_delta.cpu().numpy())
        cached = (key, TableCoder(tables))
        _coders[model] = cached
    return cached[1]


def _symbols(model, x: torch.Tensor, step: int):
    """Per block symbols of images x (n, C, H, W), at most BLOCKS_PER_CALL blocks at a time
    through the transforms (a large image is cut into blocks once, then coded in chunks)."""
    device = next(model.parameters()).device
    n = max(1, BLOCKS_PER_CALL // blocks_per_image(model, x.shape))
    parts = []
    for i in range(0, len(x), n):
        rows = model.blocks(to_unit(x[i : i + n]).to(device))
        parts += [model.block_symbols(rows[j : j + BLOCKS_PER_CALL], step)
                  for j in range(0, len(rows), BLOCKS_PER_CALL)]
    return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
            torch.cat([p[2] for p in parts]))


def blocks_per_image(model, shape) -> int:
    gh, gw = grid(shape[-2], shape[-1], *model.block_hw)
    return gh * gw


def file_version(model) -> int:
    """The .aez version a model writes: 4 with an intra predictor, else 3."""
    return INTRA_VERSION if model.intra.numel() else VERSION


def _table_ids(model) -> dict[str, int]:
    """Where each kind of table sits in `coder_of(model)`."""
    k = model.level_index.shape[0]
    return {"cluster": 0, "level": 1, "shift": 1 + N_LEVELS, "step": 2 + N_LEVELS,
            "escape": 3 + N_LEVELS, "cluster_context": 4 + N_LEVELS,
            "shift_delta": 4 + N_LEVELS + k}


def _predicted(model, gh: int, gw: int) -> np.ndarray | None:
    """Flat mask of the coefficients coded as intra residuals (None: the model has no
    predictor, or the image is one block)."""
    if not model.intra.numel() or gh * gw == 1:
        return None
    return intra.predicted_mask(model, gh, gw).ravel()


def encode_one(model, coder: TableCoder, k: np.ndarray, s: np.ndarray, idx: np.ndarray,
               step: int, version: int | None = None,
               grid_hw: tuple[int, int] | None = None) -> bytes:
    """One image's payload from its blocks' symbols (version: the file's, by default the
    one the model writes; grid_hw: its grid of blocks, needed when the model predicts;
    default one row)."""
    version = file_version(model) if version is None else version
    m, ids = model.max_shift, _table_ids(model)
    gh, gw = grid_hw or (1, len(k))
    enc = coder.encoder()
    if version >= 3:
        enc.put(ids["step"], np.array([step + MAX_STEP], dtype=np.int32))
    if version >= INTRA_VERSION:  # the side information with its neighbours as context
        side.encode(model, enc, k, s, intra.layout(gh, gw), ids)
    else:
        enc.put(ids["cluster"], k.astype(np.int32))
        enc.put(ids["shift"], (s + m).astype(np.int32))
    skip = _predicted(model, gh, gw)
    order, groups = model.coding_order(k, s, step, skip)
    flat = idx.ravel()[order]
    for t, a, b in groups:
        enc.put(1 + t, flat[a:b])
    if skip is not None:
        intra.encode(model, enc, k, s, idx, step, gh, gw, ids)
    return enc.finish()


def encode_images(model, x: torch.Tensor, batch_size: int, step: StepSpec
            ) -> tuple[list[bytes], list[int]]:
    """Images x (n, C, H, W) of one shape -> (payloads, the rate-control step of each)."""
    coder = coder_of(model)
    nb = blocks_per_image(model, x.shape)
    gh_gw = grid(x.shape[-2], x.shape[-1], *model.block_hw)
    payloads, steps = [], []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        if isinstance(step, int):
            k, s, idx = _symbols(model, xb, step)
            k, s, idx = k.cpu().numpy(), s.cpu().numpy(), idx.cpu().numpy()
            for i in range(len(xb)):
                sl = slice(i * nb, (i + 1) * nb)
                payloads.append(encode_one(model, coder, k[sl], s[sl], idx[sl], step,
                                           grid_hw=gh_gw))
                steps.append(step)
            continue
        for i in range(len(xb)):  # a target: each image searches its own step
            p, st = _search_step(model, coder, xb[i : i + 1], step)
            payloads.append(p)
            steps.append(st)
    return payloads, steps


def _search_step(model, coder: TableCoder, x: torch.Tensor, target: tuple[str, float]
                 ) -> tuple[bytes, int]:
    """The payload of the fewest bits whose PSNR reaches target ("psnr", dB), or of the most
    bits within target ("bpp", bits per pixel, payload only): a bisection over the steps
    (PSNR and rate rise with the step)."""
    kind, value = target
    cache: dict[int, tuple[bytes, float]] = {}

    def point(step: int) -> tuple[bytes, float]:
        if step not in cache:
            k, s, idx = (t.cpu().numpy() for t in _symbols(model, x, step))
            payload = encode_one(model, coder, k, s, idx, step,
                                 grid_hw=grid(x.shape[-2], x.shape[-1], *model.block_hw))
            if kind == "bpp":
                cache[step] = (payload, len(payload) * 8 / (x.shape[-2] * x.shape[-1]))
            else:
                y = model.reconstruct_symbols(torch.from_numpy(k), torch.from_numpy(s),
                                              torch.from_numpy(idx), tuple(x.shape[1:]), step)
                ref = to_unit(x).cpu()
                mse = float(((y * 255).round() / 255 - ref).double().square().mean())
                cache[step] = (payload, 10 * math.log10(1 / max(mse, 1e-12)))
        return cache[step]

    ok = (lambda v: v >= value) if kind == "psnr" else (lambda v: v <= value)
    lo, hi = -MAX_STEP, MAX_STEP
    if kind == "psnr":  # the lowest step that reaches the PSNR (else the highest step)
        if not ok(point(hi)[1]):
            return point(hi)[0], hi
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(point(mid)[1]) else (mid + 1, hi)
        return point(lo)[0], lo
    if not ok(point(lo)[1]):  # bpp: the highest step within the rate (else the lowest step)
        return point(lo)[0], lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(point(mid)[1]) else (lo, mid - 1)
    return point(lo)[0], lo


def decode_payloads(model, payloads, shape=None, version: int | None = None) -> torch.Tensor:
    """Payloads of images of one `shape` (C, H, W; default the model's training size) ->
    images (n, C, H, W); the symbols are decoded bit-exactly from the integer tables. The
    synthesis runs once per rate-control step over every image at that step (one batched
    matmul, not one per image: at 28x28 the per-call overhead would dominate)."""
    coder, m, ids = coder_of(model), model.max_shift, _table_ids(model)
    version = file_version(model) if version is None else version
    shape = tuple(shape or model.cfg.shape)
    nb, d = blocks_per_image(model, shape), model.cfg.latent_dim
    gh, gw = grid(shape[-2], shape[-1], *model.block_hw)
    device = next(model.parameters()).device
    by_step: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for i, payload in enumerate(payloads):
        dec = coder.decoder(payload)
        step = int(dec.get(ids["step"], 1)[0]) - MAX_STEP if version >= 3 else 0
        if version >= INTRA_VERSION:
            k, s = side.decode(model, dec, nb, intra.layout(gh, gw), ids)
        else:
            k = dec.get(ids["cluster"], nb).astype(np.int64)
            s = dec.get(ids["shift"], nb).astype(np.int64) - m
        skip = _predicted(model, gh, gw)
        order, groups = model.coding_order(k, s, step, skip)
        flat = np.zeros(nb * d, dtype=np.int32)
        for t, a, b in groups:
            flat[order[a:b]] = dec.get(1 + t, b - a)
        if skip is not None:
            intra.decode(model, dec, k, s, flat.reshape(nb, d), step, gh, gw, ids)
        by_step.setdefault(step, []).append((i, k, s, flat.reshape(nb, d)))
    out = None
    for step, items in by_step.items():
        k, s, idx = (torch.from_numpy(np.concatenate([it[j] for it in items])).to(device)
                     for j in (1, 2, 3))
        images = model.reconstruct_symbols(k, s, idx, shape, step).cpu()  # (n, C, H, W)
        if out is None:
            out = torch.empty(len(payloads), *shape, dtype=images.dtype)
        out[torch.tensor([it[0] for it in items])] = images
    return out

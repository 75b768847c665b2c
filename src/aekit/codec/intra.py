"""The codec's intra prediction: a block's first coefficients predicted from its decoded
neighbours, so that only the prediction's residual is entropy-coded.

Blocks are transformed independently, but neighbouring blocks of a photo share their colour,
brightness and gradients: the leading coefficients of a block (its mean colour and slow ramps)
are largely predictable from the pixels just left of and above it. After training, `fit` codes
a sample of the training images at the rate-control steps FIT_STEPS and solves, per
neighbourhood case (left only, above only, both) and cluster, a linear least-squares predictor
of the first PREDICTED coefficients (in the step-0 quantizer's units) from the neighbours'
decoded border pixels (the BORDER columns of the left block nearest to this one, the BORDER
rows of the block above); then, per case, cluster and coefficient, the table level offset that
codes the residuals in the fewest bits. Coding the residual instead of the coefficient leaves
the quantized coefficients, and so the decoded image, unchanged: it only changes the bits.

The decoder learns a block's coefficients only after its neighbours': it decodes the blocks
anti-diagonal by anti-diagonal (a "wave": blocks (i, j) with i + j = w), every block of a wave
at once. The format is docs/FORMAT.md, "Intra prediction".

Exactness: border pixels come from the same order-independent float64 synthesis as decoding,
are rounded to a grid of 2**-FEATURE_BITS, and the predictor's weights to a grid fine enough
that every product and partial sum of the prediction is exact; so a prediction, and the
integer it rounds to, is the same on every thread count, BLAS and device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aekit.codec import side
from aekit.codec.blocks import grid
from aekit.codec.steps import FIT_STEPS, N_LEVELS, step_factor
from aekit.data.stream import to_tensor
from aekit.data.units import to_unit

PREDICTED = 24  # leading coefficients predicted (at most the model's D; with 16 the held-out
# photos' files were 0.1-0.4% larger)
BORDER = 2  # decoded columns of the left block / rows of the upper block used
CASES = 3  # 1: a left neighbour only, 2: an upper one only, 3: both (0, neither: no prediction)
FEATURE_BITS = 12  # border pixels are rounded to multiples of 2**-12 before predicting
FIT_BLOCKS = 32768  # training blocks coded per fitted step (4x the filter's: the fit has
# 48 predictors of 193 x 16 weights to learn, and more blocks kept paying: 8,192 -> 32,768
# lowered the photo files by 1-3%, 40,000 by 0.1-0.6% more)
OFFSETS = tuple(range(-16, 3))  # residual table level offsets tried per coefficient
ESCAPE_BITS = 13  # a residual beyond its table's support: the excess as 13 uniform bits
_CHUNK = 1024  # blocks through the encoder at a time while fitting
_RIDGE = 1e-3  # relative ridge of the least-squares fit (not on the bias)
_GATHER = 256  # predictions of at most this many blocks gather their weights (else grouped)


def n_predicted(model) -> int:
    return min(PREDICTED, model.cfg.latent_dim)


def n_features(model) -> int:
    (bh, bw), c = model.block_hw, model.cfg.in_channels
    return c * bh * BORDER + c * BORDER * bw + 1


def escape_table() -> np.ndarray:
    """Integer frequencies of the escape symbol (the excess of a residual over its table's
    support, 0 .. 2**ESCAPE_BITS - 1): uniform."""
    return np.ones(1 << ESCAPE_BITS, dtype=np.int32)


def layout(gh: int, gw: int) -> dict[str, np.ndarray]:
    """Per block of a gh x gw grid in row-major order: its neighbourhood `case`, the index of
    its `left` and `up` neighbours (-1: none) and its `wave` (i + j)."""
    i, j = np.divmod(np.arange(gh * gw), gw)
    return {"case": (j > 0).astype(np.int64) + 2 * (i > 0), "wave": i + j,
            "left": np.where(j > 0, np.arange(gh * gw) - 1, -1),
            "up": np.where(i > 0, np.arange(gh * gw) - gw, -1)}


def _border_columns(model) -> torch.Tensor:
    """Indices into a block row (C, bh, bw channel-major) of the pixels its right and lower
    neighbours read: its last BORDER columns (C, bh, BORDER), then its last BORDER rows
    (C, BORDER, bw)."""
    (bh, bw), c = model.block_hw, model.cfg.in_channels
    ch, y, x = torch.meshgrid(torch.arange(c), torch.arange(bh), torch.arange(bw - BORDER, bw),
                              indexing="ij")
    right = (ch * bh * bw + y * bw + x).flatten()
    ch, y, x = torch.meshgrid(torch.arange(c), torch.arange(bh - BORDER, bh), torch.arange(bw),
                              indexing="ij")
    return torch.cat([right, (ch * bh * bw + y * bw + x).flatten()])


def _border_weights(model):
    """The exact synthesis weights restricted to the border pixels (cached with them)."""
    def build():
        w, mean = model._exact_synthesis_weights()
        cols = _border_columns(model).to(w[0].device)
        return (tuple(wc[:, cols].contiguous() for wc in w),
                tuple(m[cols].contiguous() for m in mean))
    return model._cached("intra-border", (model.synthesis_p, model.log_gain, model.mean_p),
                         build)


def _border_sums(model, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The synthesis matmul's part of the border pixels, (B, borders) float64: exact sums
    (grid weights), so they can be split over coefficients and added back exactly."""
    w, _ = _border_weights(model)
    dev = w[0].device
    return model._grouped(q.to(dev, torch.float64), k.to(dev), lambda r, c: r @ w[c])


def _finish(model, sums: torch.Tensor, k: torch.Tensor, step: int) -> torch.Tensor:
    """Exact border sums -> the decoded border pixels (as model._synthesise: times the step
    factor when not 0, plus the mean, float32, clipped) on the 2**-FEATURE_BITS grid."""
    _, mean = _border_weights(model)
    m = torch.stack(mean)[k.to(mean[0].device)]
    x = sums + m if step == 0 else sums * step_factor(step) + m
    x = x.float().clamp(0, 1).double()
    return torch.round(x * 2.0**FEATURE_BITS) / 2.0**FEATURE_BITS


def borders(model, q: torch.Tensor, k: torch.Tensor, step: int) -> torch.Tensor:
    """Integer coefficients q (B, D) of clusters k (B,) -> the decoded border pixels of each
    block (B, C*bh*BORDER + C*BORDER*bw), float64 on the 2**-FEATURE_BITS grid: the same
    arithmetic as the decoder's synthesis (model._synthesise), on those pixels only."""
    return _finish(model, _border_sums(model, q, k), k, step).cpu()


def features(model, border: torch.Tensor, lay: dict, blocks: np.ndarray) -> torch.Tensor:
    """(n, F) predictor inputs of `blocks` (indices into one image's grid) from the border
    pixels of every block of the image (nb, ...) (rows of blocks not yet decoded unused):
    the left neighbour's last columns, the upper neighbour's last rows (zeros where there is
    no such neighbour), then 1."""
    n_right = model.cfg.in_channels * model.block_hw[0] * BORDER
    out = torch.zeros(len(blocks), n_features(model), dtype=torch.float64)
    out[:, -1] = 1.0
    left, up = lay["left"][blocks], lay["up"][blocks]
    has = torch.from_numpy(left >= 0)
    out[has, :n_right] = border[torch.from_numpy(left[left >= 0]), :n_right].cpu()
    has = torch.from_numpy(up >= 0)
    out[has, n_right:-1] = border[torch.from_numpy(up[up >= 0]), n_right:].cpu()
    return out


def exact_weights(model) -> torch.Tensor:
    """The predictor weights (CASES, K, F, P) rounded to the grid 2**-g that makes every
    prediction exact: |features| <= 1 on a 2**-FEATURE_BITS grid, so each product is a
    multiple of 2**-(FEATURE_BITS + g) and every partial sum stays below 2**52 of those."""
    def build():
        w = model.intra.detach().to("cpu", torch.float64)
        bound = w.shape[2] * max(float(w.abs().max()), 2.0**-20)
        g = min(40, 52 - FEATURE_BITS - math.ceil(math.log2(bound)))
        return torch.round(w * 2.0**g) / 2.0**g
    return model._cached("intra-weights", (model.intra,), build)


def predict(model, feats: torch.Tensor, case: np.ndarray, k: torch.Tensor, step: int,
            lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Predicted integer coefficients (n, P) of blocks with features (n, F), cases (n,) >= 1
    and clusters (n,): the exact prediction divided by the step factor, rounded (half to
    even) and clamped to each coefficient's table support [lo, hi] (n, P)."""
    w, cell = exact_weights(model), torch.from_numpy(case - 1) * model.intra.shape[1] + k.cpu()
    if len(feats) <= _GATHER:  # a decoder's wave: one batched product of gathered weights
        pred = torch.bmm(feats[:, None, :], w.flatten(0, 1)[cell])[:, 0]
    else:  # a whole image: one product per (case, cluster); exact either way
        pred = model._grouped(feats, cell, lambda r, c: r @ w.flatten(0, 1)[c])
    if step:
        pred = pred / step_factor(step)
    pred = torch.round(pred.clamp(-1e9, 1e9))
    return torch.minimum(torch.maximum(pred, lo.cpu().double()), hi.cpu().double()).long()


def residual_levels(model, t: torch.Tensor, case: np.ndarray, k: torch.Tensor,
                    offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Table levels (n, P) of the residuals of blocks with unpredicted levels t (n, P)
    (`offsets`: the model's `intra_levels` unless given)."""
    off = model.intra_levels if offsets is None else offsets
    off = off.cpu().long()[torch.from_numpy(case - 1), k.cpu()]
    return (t.cpu().long() + off).clamp(0, N_LEVELS - 1)


def support(model, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest value (int64, like `levels`) the tables of `levels` can code."""
    lo = model.offsets.cpu().long()[levels]
    return lo, lo + model.lengths.cpu().long()[levels] - 1


def split(model, r: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals r and their levels u -> (table symbols, escapes): the residual clamped to its
    table's support as a symbol, and, where that sits on an end of the support (an escape is
    coded exactly there), the excess |r - clamped| (on a one-symbol table, both ends at once:
    the signed excess zigzagged, 0, -1, 1, -2, ... -> 0, 1, 2, 3, ...); -1 elsewhere."""
    lo, hi = support(model, u)
    c = torch.minimum(torch.maximum(r, lo), hi)
    x = r - c
    esc = torch.where(lo == hi, 2 * x.abs() - (x < 0).long(), x.abs())
    return c - lo, torch.where((c == lo) | (c == hi), esc, torch.full_like(r, -1))


def join(model, sym: torch.Tensor, esc: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The inverse of `split`: residuals from symbols, escapes (ignored off the ends), levels."""
    lo, hi = support(model, u)
    c, e = sym + lo, esc.clamp_min(0)
    signed = torch.where(e % 2 == 1, -(e + 1) // 2, e // 2)  # zigzag back
    return torch.where(lo == hi, c + signed,
                       torch.where(c == hi, c + e, torch.where(c == lo, c - e, c)))


# --- fitting -----------------------------------------------------------------------------------


@torch.inference_mode()
def fit(model, x, seed: int = 0) -> tuple[dict[str, torch.Tensor], int]:
    """({"intra": weights (CASES, K, F, P) float64, "intra_levels": level offsets
    (CASES, K, P) int32, and side.py's "cluster_context" (K, K) and "shift_delta" (4m + 1,)
    integer tables}, images used) for a frozen codec, fitted on a seeded sample of its
    training images x (uint8 (N, C, H, W), or streamed); ({}, 0) when the images are one block
    each."""
    bh, bw = model.block_hw
    gh, gw = grid(x.shape[-2], x.shape[-1], bh, bw)
    kk, p, nf = model.level_index.shape[0], n_predicted(model), n_features(model)
    if gh * gw == 1:
        return {}, 0
    lay = layout(gh, gw)
    gen = torch.Generator().manual_seed(seed + 3)
    order = torch.randperm(len(x), generator=gen)[: max(1, math.ceil(FIT_BLOCKS / (gh * gw)))]
    per_chunk = max(1, _CHUNK // (gh * gw))
    # the sampled images as given (uint8: a quarter of their float rows), cut per step
    chunks = [to_tensor(x[order[i : i + per_chunk]]) for i in range(0, len(order), per_chunk)]
    device = next(model.parameters()).device
    gram = torch.zeros(CASES, kk, nf, nf, dtype=torch.float64)
    cross = torch.zeros(CASES, kk, nf, p, dtype=torch.float64)
    coded = []  # per step and chunk: (features, q, t, case, k) of the predicted blocks
    side_pairs, side_deltas = [], []  # (left cluster, cluster) pairs, shift differences
    for step in FIT_STEPS:
        for part in chunks:
            k_np, s_np, idx = (v.cpu().numpy() for v in model.block_symbols(
                model.blocks(to_unit(part)).to(device), step))
            k, t, q = _values(model, k_np, s_np, idx, step)
            border = borders(model, q, k, step)
            n_img = len(k) // (gh * gw)
            blocks = np.arange(len(k))
            case = np.tile(lay["case"], n_img)
            glay = {key: np.where(np.tile(v, n_img) >= 0,
                                  np.tile(v, n_img) + np.repeat(np.arange(n_img), gh * gw)
                                  * gh * gw, -1)
                    for key, v in lay.items() if key in ("left", "up")}
            feats = features(model, border, glay, blocks)
            has_left = glay["left"] >= 0
            side_pairs.append((k_np[glay["left"][has_left]], k_np[has_left]))
            side_deltas.append(side.shift_deltas(s_np, {**glay, "case": case}))
            keep = case > 0
            # (slice, then index: copies of the first P columns only, not views that would
            # keep every coefficient of the sample alive in `coded`)
            f_, q_, t_, c_, k_ = (feats[keep], q[:, :p][keep], t[:, :p][keep], case[keep],
                                  k[keep])
            target = q_.double() * step_factor(step)  # in step-0 units
            flat = torch.from_numpy(c_ - 1) * kk + k_
            for cell in torch.unique(flat).tolist():  # (no (n, F, F) outer products: memory)
                rows = flat == cell
                gram.view(-1, nf, nf)[cell] += f_[rows].T @ f_[rows]
                cross.view(-1, nf, p)[cell] += f_[rows].T @ target[rows]
            coded.append((step, f_.float(), q_, t_, c_, k_))  # float32 holds the grid exactly
    counts = torch.zeros(CASES * kk, dtype=torch.long)
    for _, _, _, _, c_, k_ in coded:
        counts += torch.bincount(torch.from_numpy(c_ - 1) * kk + k_, minlength=CASES * kk)
    counts = counts.view(CASES, kk) // len(FIT_STEPS)
    ridge = _RIDGE * torch.eye(nf, dtype=torch.float64)
    ridge[-1, -1] = 0.0
    weights = torch.zeros(CASES, kk, nf, p, dtype=torch.float64)
    for c in range(CASES):
        for j in range(kk):
            if counts[c, j] < 2 * nf:  # too few blocks: no prediction (weights 0, offsets 0)
                continue
            n = float(gram[c, j, -1, -1])  # samples (the bias feature is 1)
            weights[c, j] = torch.linalg.solve(gram[c, j] + ridge * n, cross[c, j])
    # The offsets are chosen for the predictions the coder will make: with these weights.
    with torch.inference_mode(False):  # a normal tensor (its version counter keys caches)
        model.intra = weights.clone().to(model.intra.device)
    model._cache = {}  # (a new tensor may repeat the old one's version counter)
    offsets = _level_offsets(model, coded, counts)
    cluster_context, shift_delta = side.fit(side_pairs, side_deltas, kk, model._max_shift)
    return {"intra": weights, "intra_levels": offsets, "cluster_context": cluster_context,
            "shift_delta": shift_delta}, len(order)


def _level_offsets(model, coded: list, counts: torch.Tensor) -> torch.Tensor:
    """Per (case, cluster, coefficient) the level offset in OFFSETS whose tables code the
    fitted predictor's residuals on the sample in the fewest bits (escapes included)."""
    kk, p = counts.shape[1], coded[0][2].shape[1]
    bits_table = (16 - torch.log2(model.freqs.cpu().double().clamp_min(1))).flatten()
    size = model.freqs.shape[1]
    one = model.lengths.cpu().long() <= 1
    total = torch.zeros(len(OFFSETS), CASES * kk * p, dtype=torch.float64)
    for step, f_, q_, t_, c_, k_ in coded:
        r = q_ - predict(model, f_.double(), c_, k_, step, *support(model, t_))
        cell = ((torch.from_numpy(c_ - 1) * kk + k_)[:, None] * p
                + torch.arange(p)).flatten()
        for i, o in enumerate(OFFSETS):
            u = (t_.long() + o).clamp(0, N_LEVELS - 1)
            sym, esc = split(model, r, u)
            b = torch.where(one[u], 0.0, bits_table[u * size + sym])
            b = b + torch.where(esc >= 0, float(ESCAPE_BITS), 0.0)
            total[i].index_add_(0, cell, b.flatten())
    best = torch.tensor(OFFSETS)[total.argmin(0)].view(CASES, kk, p)
    best[counts < 2 * coded[0][1].shape[1]] = 0  # no predictor: the unpredicted levels
    return best.to(torch.int32)


# --- the payload's residual section (payload.py codes the rest) ---------------------------------


def predicted_mask(model, gh: int, gw: int) -> np.ndarray:
    """(nb, D) bool: the coefficients an image of gh x gw blocks codes as residuals."""
    mask = np.zeros((gh * gw, model.cfg.latent_dim), dtype=bool)
    mask[layout(gh, gw)["case"] > 0, : n_predicted(model)] = True
    return mask


def _wave_plan(blocks_wave: np.ndarray, u: torch.Tensor):
    """Coding order of residuals with levels u (n, P) of blocks in waves `blocks_wave` (n,):
    by wave, then table level, then block, then coefficient. Returns (flat positions in that
    order, {wave: [(level, a, b)]}) with order[a:b] the positions coded with level's table."""
    p = u.shape[1]
    key = np.repeat(blocks_wave, p) * N_LEVELS + u.flatten().numpy()
    if len(key) and key.max() < 1 << 16:  # numpy sorts 16-bit keys stably with a radix sort
        key = key.astype(np.uint16)  # (~10^5 residuals: 0.4 ms, torch's int64 sort 1.4 ms)
    order = np.argsort(key, kind="stable")
    sk = key[order].astype(np.int64)
    bounds = (np.flatnonzero(sk[1:] != sk[:-1]) + 1).tolist()
    plan: dict[int, list] = {}
    for a, b in zip([0] + bounds, bounds + [len(sk)], strict=True):
        w, level = divmod(int(sk[a]), N_LEVELS)
        plan.setdefault(w, []).append((level, a, b))
    return torch.from_numpy(order), plan


def _values(model, k: np.ndarray, s: np.ndarray, idx: np.ndarray, step: int):
    """One image's clusters (nb,) as a tensor, every coefficient's table level t (nb, D) and
    its integer value q = idx + offsets[t] (the not yet decoded ones: their table's lowest)."""
    kt, st = torch.from_numpy(k).long(), torch.from_numpy(s).long()
    dev = model.offsets.device
    t = model._shifted_levels(kt.to(dev), st.to(dev), step).cpu()
    return kt, t, torch.from_numpy(idx).long() + model.offsets.cpu().long()[t]


def encode(model, enc, k: np.ndarray, s: np.ndarray, idx: np.ndarray, step: int,
           gh: int, gw: int, table: dict) -> None:
    """Put the residuals of one image's predicted coefficients (blocks in row-major order:
    clusters k, shifts s, table indices idx (nb, D)), wave by wave; `table` maps "level" ->
    its first table id and "escape" -> the escape table's id."""
    lay, p = layout(gh, gw), n_predicted(model)
    kt, t, q = _values(model, k, s, idx, step)
    border = torch.cat([borders(model, q[i : i + 8192], kt[i : i + 8192], step)
                        for i in range(0, len(q), 8192)])
    blocks = np.nonzero(lay["case"] > 0)[0]
    if len(blocks) == 0:
        return
    tb, kb, case = t[blocks, :p], kt[blocks], lay["case"][blocks]
    pred = predict(model, features(model, border, lay, blocks), case, kb, step,
                   *support(model, tb))
    u = residual_levels(model, tb, case, kb)
    sym, esc = split(model, q[blocks, :p] - pred, u)
    order, plan = _wave_plan(lay["wave"][blocks], u)
    sym = sym.flatten()[order].numpy().astype(np.int32)
    esc = esc.flatten()[order].numpy().astype(np.int32)
    for _, groups in sorted(plan.items()):
        for level, a, b in groups:
            enc.put(table["level"] + level, sym[a:b])
        e = esc[groups[0][1] : groups[-1][2]]  # the wave's escapes, in the same order
        enc.put(table["escape"], e[e >= 0])


def decode(model, dec, k: np.ndarray, s: np.ndarray, idx: np.ndarray, step: int,
           gh: int, gw: int, table: dict) -> None:
    """Fill the predicted coefficients of idx (nb, D) (table indices; the rest already
    decoded) from the residuals, wave by wave: a wave's predictions read the border pixels
    of the wave before it. Any bytes decode to coefficients inside their tables."""
    lay, p = layout(gh, gw), n_predicted(model)
    kt, t, q = _values(model, k, s, idx, step)
    offsets, lengths = model.offsets.cpu().long(), model.lengths.cpu().long()
    # The border pixels' sums split in two exact parts: the coefficients already decoded, of
    # every block at once (large efficient products), and per wave the predicted ones.
    predicted = torch.from_numpy(lay["case"] > 0)
    rest = q.clone()
    rest[predicted, :p] = 0
    rest_sums = _border_sums(model, rest, kt).cpu()
    w_head = torch.stack(_border_weights(model)[0])[:, :p].cpu()  # (K, P, borders)
    border = torch.zeros(gh * gw, n_features(model) - 1, dtype=torch.float64)
    waves = lay["wave"]
    for w in range(1, gh + gw - 1):
        prev = torch.from_numpy(np.nonzero(waves == w - 1)[0])
        head = torch.bmm(q[prev, None, :p].double(), w_head[kt[prev]])[:, 0]
        sums = rest_sums[prev] + torch.where(predicted[prev, None], head, 0.0)
        border[prev] = _finish(model, sums, kt[prev], step).cpu()
        cur = np.nonzero(waves == w)[0]
        tb, kb, case = t[cur, :p], kt[cur], lay["case"][cur]
        lo, hi = support(model, tb)
        pred = predict(model, features(model, border, lay, cur), case, kb, step, lo, hi)
        u = residual_levels(model, tb, case, kb)
        order, plan = _wave_plan(waves[cur], u)
        got = np.zeros(len(order), dtype=np.int64)  # the symbols in coding order
        for level, a, b in plan.get(w, []):
            got[a:b] = dec.get(table["level"] + level, b - a)
        sym = torch.zeros(len(order), dtype=torch.long)
        sym[order] = torch.from_numpy(got)
        ends = (sym[order] == 0) | (sym[order] == lengths[u.flatten()[order]] - 1)
        esc = torch.full_like(sym, -1)
        esc[order[ends]] = torch.from_numpy(dec.get(table["escape"], int(ends.sum()))).long()
        r = join(model, sym.view(-1, p), esc.view(-1, p), u)
        q[cur, :p] = torch.minimum(torch.maximum(pred + r, lo), hi)
    idx[:] = (q - offsets[t]).numpy()

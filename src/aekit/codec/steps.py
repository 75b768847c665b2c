"""The codec's inference-time coding steps: per-image scale shift, symbols, coding plans.

Per-image scale shift (a one-number "hyperprior"). The factorized prior gives coefficient d of
cluster k one fixed scale, but images differ in how much detail they hold: a plain T-shirt and a
patterned one of the same cluster put very different energy in the same coefficients. The encoder
therefore picks, per image, an integer shift s in [-m, m] (option `shifts` = m) of every
coefficient's table level (levels are log-spaced by a factor ~1.16, so s scales every
coefficient's density by ~1.16**s) that minimises the image's bits, and codes s with a uniform
table (log2(2m + 1) bits). Shift 0 is the plain factorized model. The shift changes only the
entropy coding (and rate-distortion optimized rounding), never the decoder's transform.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

N_LEVELS = 64  # scale levels of the frozen tables
# Rate control: an image may be coded with a quantizer step factor f = STEP_RATIO**step instead
# of the run's own (step 0); STEP_RATIO is the ratio of neighbouring table levels (LEVEL_MIN..
# LEVEL_MAX over 64 levels), so a step moves every coefficient's distribution by one level and
# the per-image shift search follows it. Each step is ~1.2 dB at high rates.
MAX_STEP = 16
STEP_RATIO = 10000.0 ** (1 / 63)
_STEP_GRID = 2.0**20
# The rate-control steps whose codes of the training images finalize() fits on (a deblocking
# filter for each, the intra predictor): the working range of --quality.
FIT_STEPS = (-8, -4, 0, 4, 8)


def step_table() -> np.ndarray:
    """Integer frequencies of an image's step symbol step + MAX_STEP: step 0 (the run's own
    rate point) costs ~0.001 bits, any other step ~15 bits once per image."""
    table = np.ones(2 * MAX_STEP + 1, dtype=np.int32)
    table[MAX_STEP] = (1 << 16) - 2 * MAX_STEP
    return table


def step_factor(step: int) -> float:
    """The decoder's step factor for `step`, on a 2**-20 grid so that it is the same float64
    on every machine (a libm's last-bit differences in pow cannot move it to another value)."""
    return round(STEP_RATIO ** (-step) * _STEP_GRID) / _STEP_GRID


_SYNTH_CHUNK = 8192  # blocks synthesised at a time when decoding
_FIXED = 1024.0  # shift search in 1/1024 bits: integer sums are exact in float32 (< 2**24)


class CodecSteps:
    """Mixin of CodecAE (which provides the frozen tables, `select` and `_synthesise`)."""

    @property
    def max_shift(self) -> int:
        return self._max_shift if self._use_tables() else 0

    def shift_table(self) -> np.ndarray:
        """Integer frequencies of the shift symbol s + m (uniform)."""
        return np.ones(2 * self._max_shift + 1, dtype=np.int32)

    def _shifted_levels(self, k: torch.Tensor, s: torch.Tensor, step: int = 0) -> torch.Tensor:
        """(B,) clusters, (B,) shifts -> (B, D) table level of every coefficient."""
        return (self.base_levels(step)[k] + s[:, None]).clamp_(0, N_LEVELS - 1)

    def _level_bits(self, q: torch.Tensor, lvl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bits of integer coefficients q under table levels lvl (both (B, D)) and whether each
        q lies in its table's support."""
        t = self._tables()
        lo, n = self.offsets.long()[lvl], self.lengths.long()[lvl]
        j = q.long() - lo
        ok = (j >= 0) & (j < n)
        bits = t["bits"][lvl * self.freqs.shape[1] + j.clamp(0, self.freqs.shape[1] - 1)]
        return torch.where(n > 1, bits, torch.zeros_like(bits)), ok

    def _shift_bits(self) -> torch.Tensor:
        """(N_LEVELS * S, 2m + 1) float32 table: row `level * S + v + S // 2`, column `sh + m`
        holds the cost (1/1024 bits, rounded) of the coefficient value v of a coefficient whose
        base level is `level`, under shift sh; inf where v is outside the shifted table."""
        t = self._tables()
        if "shift_bits" not in t:  # cached with the tables (t is a merged copy of the cache)
            m, size = self._max_shift, self.freqs.shape[1]
            dev = self.offsets.device
            lv = (torch.arange(N_LEVELS, device=dev)[:, None]
                  + torch.arange(-m, m + 1, device=dev)).clamp_(0, N_LEVELS - 1)  # (L, M)
            v = torch.arange(-(size // 2), size - size // 2, device=dev)
            j = v[None, :, None] - self.offsets.long()[lv][:, None, :]  # (L, S, M)
            n = self.lengths.long()[lv][:, None, :]
            bits = t["bits"].view(N_LEVELS, size)[lv[:, None, :], j.clamp(0, size - 1)]
            bits = torch.where(n > 1, torch.round(bits * _FIXED), torch.zeros_like(bits))
            bits = torch.where((j >= 0) & (j < n), bits, torch.full_like(bits, float("inf")))
            self._cache["shift_bits"] = bits.reshape(N_LEVELS * size, 2 * m + 1).contiguous()
            return self._cache["shift_bits"]
        return t["shift_bits"]

    @torch.no_grad()
    def choose_shift(self, k: torch.Tensor, y: torch.Tensor, q: torch.Tensor,
                     step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image the shift that codes q in the fewest bits (shift 0 always fits; ties go
        to the lowest shift), then q re-rounded (rdoq) under the chosen tables:
        (shifts (B,) int64, q (B, D))."""
        m = self.max_shift
        if m == 0:
            return torch.zeros(len(q), dtype=torch.long, device=q.device), q
        table, size = self._shift_bits(), self.freqs.shape[1]
        base = self.base_levels(step)[k] * size + size // 2  # (B, D)
        # One bag per image: the sum over its coefficients of every shift's cost, (B, 2m + 1).
        col = F.embedding_bag(base + q.long(), table, mode="sum").argmin(1)
        s = col - m
        if not self.rdoq:
            return s, q
        g = (-2 * self.log_gain).exp() / self.pixels  # (K, D) distortion per unit error
        if step:  # the decoder multiplies the coefficients by the step factor
            g = g * step_factor(step) ** 2
        rate = self.lmbda / (self.block_area * _FIXED)
        # A coefficient rounded to 0 with |y| < 0.5 stays 0 unless -1 or +1 is cheaper by
        # more than its extra error: with the tables' largest such saving (`_zero_margin`,
        # 1/1024 bits; wide tables are flat up to rounding) that needs |y| >= limit, so only
        # the others (~5% of a photo's coefficients) are re-rounded, with the same result.
        limit = 0.5 - rate * (self._zero_margin() + 1) / (2 * float(g.min()))
        b, d = torch.nonzero((y.abs() >= limit) | (q != 0), as_tuple=True)
        yy, gg, bb, cc = y[b, d], g[k[b], d], base[b, d], col[b]
        flat, best, best_cost = table.view(-1), q[b, d], None
        for c in (best, torch.floor(yy), torch.floor(yy) + 1):  # q itself always fits
            inside = (c >= -(size // 2)) & (c < size - size // 2)
            row = bb + c.long().clamp(-(size // 2), size - size // 2 - 1)
            bits = torch.where(inside, flat[row * (2 * m + 1) + cc], float("inf"))
            cost = (yy - c).square() * gg + rate * bits
            if best_cost is None:
                best_cost = cost
                continue
            better = cost < best_cost  # (elementwise where, not argmin over a stacked dim:
            best = torch.where(better, c, best)  # ~20x faster on CPU)
            best_cost = torch.where(better, cost, best_cost)
        out = q.clone()
        out[b, d] = best
        return s, out

    def _zero_margin(self) -> float:
        """The most bits (1/1024) that -1 or +1 saves over 0 under any table level and shift
        (0 for unimodal tables; inf if some shifted table cannot code 0). Cached with them."""
        if "zero_margin" not in self._cache:
            size, table = self.freqs.shape[1], self._shift_bits()
            rows = torch.arange(N_LEVELS, device=table.device) * size + size // 2
            zero = table[rows]  # (L, 2m + 1)
            saving = zero - torch.minimum(table[rows - 1], table[rows + 1])
            self._cache["zero_margin"] = (max(0.0, float(saving.max()))
                                          if bool(zero.isfinite().all()) else math.inf)
        return self._cache["zero_margin"]

    def _coded_likelihood(self, q: torch.Tensor, k: torch.Tensor,
                          s: torch.Tensor) -> torch.Tensor:
        """Probability the range coder gives each integer coefficient (frozen tables)."""
        bits, _ = self._level_bits(q, self._shifted_levels(k, s))
        return torch.exp2(-bits)

    def _require_eval(self) -> None:
        self._require_frozen()
        if self.training:
            from aekit.errors import RunError

            raise RunError("codec: call model.eval() before compressing")

    @torch.inference_mode()
    def symbols(self, x: torch.Tensor, step: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) of any size -> per block, image by image in row-major block
        order: (cluster (n,) int64, shift (n,) int64 in [-m, m], table indices (n, D) int32 in
        [0, length of the coefficient's table))."""
        return self.block_symbols(self.blocks(x), step)

    @torch.inference_mode()
    def block_symbols(self, rows: torch.Tensor, step: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`symbols` of block rows (n, C*bh*bw) in [0, 1]."""
        self._require_eval()
        k, y, q = self.select(rows, step=step)
        s, q = self.choose_shift(k, y, q, step)
        lo = self.offsets[self._shifted_levels(k, s, step)]
        return k, s, (q - lo).to(torch.int32)

    @torch.inference_mode()
    def reconstruct_symbols(self, k: torch.Tensor, s: torch.Tensor, idx: torch.Tensor,
                            shape=None, step: int = 0, deblocked: bool = True) -> torch.Tensor:
        """Per block (cluster (n,), shift (n,), table indices (n, D)) of images of `shape`
        (C, H, W; default the training size) -> images (B, C, H, W) in [0, 1], deblocked
        with the model's filter unless `deblocked` is False."""
        self._require_frozen()
        k = k.long()
        rows = []
        for i in range(0, len(k), _SYNTH_CHUNK):  # float64 work in bounded chunks of blocks
            kc, sc = k[i : i + _SYNTH_CHUNK], s[i : i + _SYNTH_CHUNK].long()
            q = idx[i : i + _SYNTH_CHUNK].to(torch.float32) \
                + self.offsets[self._shifted_levels(kc, sc, step)]
            rows.append(self._synthesise(q, kc, step))
        return self._assemble(torch.cat(rows), -1, shape or self.cfg.shape, step, deblocked)

    def coding_order(self, k: np.ndarray, s: np.ndarray, step: int = 0,
                     skip: np.ndarray | None = None):
        """Coding order of one image's coefficients, its blocks' clusters k (nb,) and shifts s
        (nb,): for each table level t in ascending order among those with more than one symbol
        (the decoder knows the only symbol of the others), the coefficients at level t in
        block order, then coefficient order (for one block exactly the version-2 order).
        Returns (flat positions, [(t, a, b)]) with positions[a:b] coded with table t.
        `skip` (nb * D,) bool leaves coefficients out (intra.py codes them).

        A one-block image (28x28 at the training size) has few distinct (cluster, shift,
        step): its order is cached with the frozen tables (cleared whenever they change)."""
        key = (int(k[0]), int(s[0]), step) if len(k) == 1 and skip is None else None
        if key is not None and key in self._plans:  # filled only while frozen
            return self._plans[key]
        self._require_frozen()
        base = self.base_levels(step).cpu().numpy()
        # (nb * D,) as uint8 (N_LEVELS <= 256): numpy sorts 8-bit keys stably with a radix
        # sort, ~15% faster than its merge sort of int64 on a photo's ~10^6 coefficients.
        lv = np.clip(base[k] + s[:, None], 0, N_LEVELS - 1).astype(np.uint8).ravel()
        if skip is not None:
            lv[skip] = N_LEVELS  # sorts last, never coded here
        order = np.argsort(lv, kind="stable")
        if skip is not None:
            order = order[: len(order) - int(skip.sum())]
        sorted_lv = lv[order]
        levels, starts = np.unique(sorted_lv, return_index=True)
        ends = np.append(starts[1:], len(sorted_lv))
        lengths = self.lengths.cpu().numpy()
        plan = order, [(int(t), int(a), int(b))
                       for t, a, b in zip(levels, starts, ends, strict=True) if lengths[t] > 1]
        if key is not None:
            self._plans[key] = plan
        return plan

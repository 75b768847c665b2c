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

import numpy as np
import torch

N_LEVELS = 64  # scale levels of the frozen tables


class CodecSteps:
    """Mixin of CodecAE (which provides the frozen tables, `select` and `_synthesise`)."""

    @property
    def max_shift(self) -> int:
        return self._max_shift if self._use_tables() else 0

    def shift_table(self) -> np.ndarray:
        """Integer frequencies of the shift symbol s + m (uniform)."""
        return np.ones(2 * self._max_shift + 1, dtype=np.int32)

    def _shifted_levels(self, k: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(B,) clusters, (B,) shifts -> (B, D) table level of every coefficient."""
        return (self.level_index.long()[k] + s[:, None]).clamp_(0, N_LEVELS - 1)

    def _level_bits(self, q: torch.Tensor, lvl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bits of integer coefficients q under table levels lvl (both (B, D)) and whether each
        q lies in its table's support."""
        t = self._tables()
        lo, n = self.offsets.long()[lvl], self.lengths.long()[lvl]
        j = q.long() - lo
        ok = (j >= 0) & (j < n)
        bits = t["bits"][lvl * self.freqs.shape[1] + j.clamp(0, self.freqs.shape[1] - 1)]
        return torch.where(n > 1, bits, torch.zeros_like(bits)), ok

    @torch.no_grad()
    def choose_shift(self, k: torch.Tensor, y: torch.Tensor,
                     q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image the shift that codes q in the fewest bits (shift 0 always fits), then
        q re-rounded (rdoq) under the chosen tables: (shifts (B,) int64, q (B, D))."""
        m = self.max_shift
        s = torch.zeros(len(q), dtype=torch.long, device=q.device)
        if m == 0:
            return s, q
        best = torch.full((len(q),), float("inf"), device=q.device)
        for shift in range(-m, m + 1):
            cand = torch.full_like(s, shift)
            bits, ok = self._level_bits(q, self._shifted_levels(k, cand))
            total = torch.where(ok.all(1), bits.sum(1), torch.full_like(best, float("inf")))
            better = total < best
            best = torch.where(better, total, best)
            s = torch.where(better, cand, s)
        if not self.rdoq:
            return s, q
        lvl = self._shifted_levels(k, s)
        g = ((-2 * self.log_gain).exp() / self.pixels)[k]  # distortion per unit error
        rate = self.lmbda / (self.cfg.height * self.cfg.width)
        costs, cands = [], (q, torch.floor(y), torch.floor(y) + 1)
        for c in cands:
            bits, ok = self._level_bits(c, lvl)
            cost = (y - c).square() * g + rate * bits
            costs.append(torch.where(ok, cost, torch.full_like(cost, float("inf"))))
        pick = torch.stack(costs).argmin(0)  # q itself always fits, so some cost is finite
        return s, torch.stack(cands).gather(0, pick[None]).squeeze(0)

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
    def symbols(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images -> (cluster (B,) int64, shift (B,) int64 in [-m, m], table indices (B, D)
        int32 in [0, length of the coefficient's table))."""
        self._require_eval()
        k, y, q = self.select(x.flatten(1))
        s, q = self.choose_shift(k, y, q)
        lo = self.offsets[self._shifted_levels(k, s)]
        return k, s, (q - lo).to(torch.int32)

    @torch.inference_mode()
    def reconstruct_symbols(self, k: torch.Tensor, s: torch.Tensor,
                            idx: torch.Tensor) -> torch.Tensor:
        """(cluster (B,), shift (B,), table indices (B, D)) -> images (B, C, H, W) in [0, 1]."""
        self._require_frozen()
        k = k.long()
        q = idx.to(torch.float32) + self.offsets[self._shifted_levels(k, s.long())]
        return self._synthesise(q, k).view(-1, *self.cfg.shape)

    def coding_plan(self, k: int, s: int) -> list[tuple[int, np.ndarray]]:
        """[(table level, coefficient indices)] in coding order for cluster k and shift s;
        levels whose table has one symbol are left out (the decoder knows that symbol)."""
        self._require_frozen()
        plans = self._plans
        if (k, s) not in plans:
            row = np.clip(self.level_index[k].cpu().numpy().astype(np.int64) + s, 0,
                          N_LEVELS - 1)
            lengths = self.lengths.cpu().numpy()
            plans[(k, s)] = [(int(t), np.flatnonzero(row == t)) for t in np.unique(row)
                             if lengths[t] > 1]
        return plans[(k, s)]

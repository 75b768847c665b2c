"""The codec encoder's decisions: which cluster codes a block, and how its coefficients round.

Any cluster k is a valid code for any block (the decoder only reads k), so the search decides
the file's size and quality but never its validity. The cost of coding block x with cluster k
is D + lambda * R: squared error per value plus the rate weight times the bits of the cluster
index and of the rounded coefficients under the factorized model.

Trying every cluster exactly costs a K x D x P matmul per block and a K x D table lookup, most
of the encoder's time. With frozen tables and option `fast_select` (the default for coding)
the search runs in two passes:

1. Every cluster, only its SEARCH_COEFFS largest-scale coefficients (those that carry most of
   the energy and the bits), in bfloat16: their rounding cost, the bits of the others rounded
   to zero, and the squared error, in pixels, of the block rebuilt from those coefficients
   alone (one more small matmul through the synthesis). Measuring that last part in pixels
   matters: estimated instead as the block's energy minus what the kept coefficients explain,
   which assumes orthonormal transforms (trained ones are not quite), the shortlist missed the
   exact search's choice on half of a photo's blocks, and leaving it out cost 0.9 dB on
   Fashion-MNIST at high rates.
2. The SEARCH_KEEP cheapest clusters of pass 1, exactly in float32; the winner's coefficients
   are the ones coded, so nothing is computed twice.

Training and unfrozen models (and `fast_select=False`) score every cluster exactly, in float32.
Rate-distortion optimized rounding then picks floor or ceil of each coefficient.
"""

from __future__ import annotations

import torch

from aekit.codec.steps import step_factor

SEARCH_COEFFS = 128
SEARCH_KEEP = 2


class CodecSearch:
    """Mixin of CodecAE: `select` (the encoder's cluster choice and rounding)."""

    def _block_cost(self, y: torch.Tensor, lo, hi, g2, table, base) -> torch.Tensor:
        """(..., D) coefficients -> (...,) distortion + rate of plain rounding (no cluster
        bits, no out-of-subspace energy)."""
        q = torch.clamp(torch.round(y), lo, hi)
        cost = (y - q).square_().mul_(g2).sum(-1)
        return cost.add_(table[q.long().add_(base)].sum(-1), alpha=self.lmbda / self.block_area)

    def _support(self, step: int, like: torch.Tensor):
        """(lo, hi) (K, D) of the coefficients' tables (unbounded grid before finalize)."""
        if self._use_tables():
            t = self._tables(step)
            return t["lo"], t["hi"]
        half = self.freqs.shape[1] // 2
        return torch.full_like(like, -half), torch.full_like(like, half - 1)

    @torch.no_grad()
    def select(self, xf: torch.Tensor, chunk: int = 128, step: int = 0):
        """Encoder decisions for blocks (B, P) -> (cluster k (B,), continuous coefficients
        (B, D), quantized coefficients (B, D)).

        step: a rate-control step (steps.py; frozen tables only): the coefficients are divided
        by the step factor f, the decoder multiplies them by f, so a unit error in them costs
        f**2 times the distortion, and the tables move by `step` levels."""
        kk, d = self.log_gain.shape
        inv_f = 1.0 / step_factor(step)
        g2 = (-2 * self.log_gain).exp() / self.pixels / inv_f**2  # (K, D) cost per unit error
        table, base = self._bit_table(xf.dtype, step)
        lo, hi = self._support(step, g2)
        const = self.lmbda / self.block_area * self._cluster_bits()  # (K,)
        two_pass = self.fast_select and self._use_tables() and kk > SEARCH_KEEP
        if two_pass:
            cand = self._shortlist(xf, chunk, step, g2, table, base, lo, hi, const)
        else:
            cand = torch.arange(kk, device=xf.device).expand(len(xf), kk)
        wk, bk = self._cluster_analysis()
        best_cost, k, y = None, None, None
        for t in range(cand.shape[1]):  # exact cost of each candidate, float32
            kt = cand[:, t]
            if two_pass:
                yt = self._grouped(xf, kt, lambda r, c: torch.addmm(bk[c], r, wk[c]))
            else:  # candidate t is cluster t for every block
                yt = torch.addmm(bk[t], xf, wk[t])
            if step:
                yt = yt * inv_f
            cost = self._block_cost(yt, lo[kt], hi[kt], g2[kt], table, base[kt]) + const[kt]
            if d < self.pixels:  # energy outside the D-dim subspace
                cost += ((xf - self.mean[kt]).square().sum(-1) / self.pixels
                         - (yt.square() * g2[kt]).sum(-1))
            if best_cost is None:
                best_cost, k, y = cost, kt, yt
                continue
            better = cost < best_cost  # ties keep the earlier candidate
            best_cost = torch.where(better, cost, best_cost)
            k = torch.where(better, kt, k)
            y = torch.where(better[:, None], yt, y)
        lo, hi, g, base = lo[k], hi[k], g2[k], base[k]
        if not (self.rdoq and not self.training):
            return k, y, torch.clamp(torch.round(y), lo, hi)
        rate = self.lmbda / self.block_area
        q0 = torch.clamp(torch.floor(y), lo, hi)
        q1 = torch.clamp(q0 + 1, lo, hi)
        c0 = (y - q0).square_().mul_(g).add_(table[q0.long().add_(base)], alpha=rate)
        c1 = (y - q1).square_().mul_(g).add_(table[q1.long().add_(base)], alpha=rate)
        return k, y, torch.where(c1 < c0, q1, q0)

    def _shortlist(self, xf, chunk, step, g2, table, base, lo, hi, const) -> torch.Tensor:
        """Pass 1: (B, SEARCH_KEEP) clusters with the lowest approximate cost."""
        kk, d = self.log_gain.shape
        m = min(d, SEARCH_COEFFS)
        w, b, head, synth, mean = self._head_analysis(m)  # (P, K*m), (K*m,), (K, m), (K, m, P)
        inv_f = 1.0 / step_factor(step)
        zero_bits = table[torch.clamp(torch.zeros_like(lo), lo, hi).long() + base]  # (K, D)
        # The rest rounded to zero: the bits of those zeros (their error is `rest` below).
        tail = self.lmbda / self.block_area * (zero_bits.sum(1) - zero_bits.gather(1, head).sum(1))
        lo, hi, g2, base = (t.gather(1, head) for t in (lo, hi, g2, base))  # (K, m) each
        picks = []
        for start in range(0, len(xf), chunk):
            xc = xf[start : start + chunk].to(torch.bfloat16)
            y = (xc @ w).float().add_(b).view(-1, kk, m)  # (c, K, m)
            # What the head alone leaves out of the block, in pixels: (K, c, P), in bfloat16
            # (one fused product, half the memory traffic of float32: this tensor was most of
            # the search's time; the pixels' rounding is the same for every cluster).
            rest = torch.baddbmm(xc[None] - mean[:, None], y.transpose(0, 1).to(torch.bfloat16),
                                 synth, alpha=-1)
            if step:
                y = y * inv_f
            cost = self._block_cost(y, lo, hi, g2, table, base)
            cost += rest.float().square_().sum(-1).T.div_(self.pixels)
            picks.append((cost + tail + const).topk(SEARCH_KEEP, 1, largest=False).indices)
        return torch.cat(picks).sort(1).values  # (B, SEARCH_KEEP), ascending cluster index

    def _head_analysis(self, m: int):
        """The m largest-scale coefficients of every cluster: analysis rows as one (P, K*m)
        bfloat16 matrix, a float32 bias (gains folded in), their indices (K, m), the
        matching synthesis columns (K, m, P) bfloat16 (inverse gains folded in) and the
        clusters' means (K, P) bfloat16."""
        def build():
            order = torch.argsort(self.log_scale.detach(), dim=1, descending=True, stable=True)
            head = order[:, :m]
            w, b = self._analysis_weights()  # (K, D, P), (K, D)
            w = w.gather(1, head[..., None].expand(-1, -1, w.shape[2]))  # (K, m, P)
            s = torch.stack(self._synthesis_weights()[0])  # (K, D, P)
            s = s.gather(1, head[..., None].expand(-1, -1, s.shape[2]))  # (K, m, P)
            return (w.flatten(0, 1).T.contiguous().to(torch.bfloat16), b.gather(1, head).flatten(),
                    head, s.contiguous().to(torch.bfloat16), self.mean.detach().to(torch.bfloat16))
        return self._cached(f"head-{m}", (self.analysis_p, self.synthesis_p, self.log_gain,
                                          self.mean_p, self.log_scale), build)

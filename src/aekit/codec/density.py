"""The entropy model's building blocks: a learned univariate CDF and integer probability tables.

`UnitDensity` is the monotone cumulative network of Ballé et al. 2018 (appendix 6.1) with one
channel; the codec stretches it by a learned scale per coefficient. `integer_table` turns a float
pmf into the frozen integer frequencies the range coder uses.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aekit.codec.card import TABLE_PRECISION

# Integer tables sum to 2**16; every symbol of a support has frequency >= 1.
PRECISION = TABLE_PRECISION


class UnitDensity(nn.Module):
    """A learned univariate CDF F(v) = sigmoid(f(v)), f monotone (Ballé et al. 2018)."""

    def __init__(self, filters=(3, 3, 3), init_scale: float = 1.0) -> None:
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        gen = torch.Generator().manual_seed(0)
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(dims[i + 1], 1, generator=gen) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(dims[i + 1], 1)))

    def logits_cdf(self, v: torch.Tensor) -> torch.Tensor:
        h = v.reshape(1, -1)  # (1, N)
        for i, (m, b) in enumerate(zip(self.matrices, self.biases, strict=True)):
            h = F.softplus(m.to(h.dtype)) @ h + b.to(h.dtype)
            if i < len(self.factors):
                h = h + torch.tanh(self.factors[i].to(h.dtype)) * torch.tanh(h)
        return h.reshape(v.shape)

    def bin_probability(self, y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """P(unit bin centred on y) when the density is stretched by `scale` (broadcast)."""
        lower = self.logits_cdf((y - 0.5) / scale)
        upper = self.logits_cdf((y + 0.5) / scale)
        sign = -torch.sign(lower + upper).detach()  # evaluate in the sigmoid's accurate tail
        return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()


def integer_table(p: np.ndarray) -> np.ndarray:
    """Float pmf -> int32 frequencies, each >= 1, summing to 2**PRECISION."""
    total = 1 << PRECISION
    p = np.maximum(np.nan_to_num(np.asarray(p, dtype=np.float64)), 0.0)
    p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
    f = np.maximum(1, np.floor(p * total + 0.5)).astype(np.int64)
    diff, order, i = total - int(f.sum()), np.argsort(-f, kind="stable"), 0
    while diff:  # the rounding error goes to/from the most probable symbols (they lose least)
        j, step = order[i % len(f)], (1 if diff > 0 else -1)
        if f[j] + step >= 1:
            f[j] += step
            diff -= step
        i += 1
    return f.astype(np.int32)

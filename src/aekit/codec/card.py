"""The codec's catalogue card and typed options (no torch: see aekit.models.cards)."""

from __future__ import annotations

from dataclasses import dataclass

from aekit.options import ModelOptions, option
from aekit.registry import ModelCard, register_card

# Integer probability tables sum to 2**PRECISION (density.py); a support needs at least 2
# symbols and at most half the table.
TABLE_PRECISION = 16


@dataclass(frozen=True)
class CodecOptions(ModelOptions):
    rate_weight: float = option(0.002, "rate weight of the rd loss (larger: smaller files)",
                                low=1e-7, high=1e3, key="lambda")
    clusters: int = option(16, "K learned transforms; each image uses the rate-distortion-best "
                               "one", low=1, high=256)
    max_symbols: int = option(4096, "support cap of the frozen probability tables", low=2,
                              high=1 << (TABLE_PRECISION - 1))
    rdoq: bool = option(True, "rate-distortion optimized rounding in the encoder")
    fast_select: bool = option(True, "bfloat16 cluster search in the encoder")
    shifts: int = option(8, "per-image scale shift in [-m, m] of the frozen tables (0 = off)",
                         low=0, high=31)


register_card(ModelCard(
    "codec", "aekit.codec.model",
    "Learned image codec: mixture of learned transforms, factorized prior, integer tables.",
    CodecOptions, loss="rd"))

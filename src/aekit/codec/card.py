"""The codec's catalogue card and typed options (no torch: see aekit.models.cards)."""

from __future__ import annotations

from dataclasses import dataclass

from aekit.options import ModelOptions, option
from aekit.registry import ModelCard, register_card

# Integer probability tables sum to 2**PRECISION (density.py); a support needs at least 2
# symbols and at most half the table.
TABLE_PRECISION = 16
# block=0: a training image of at most AUTO_WHOLE values (28x28 grey) is one block; larger ones
# (photo patches) are coded in AUTO_BLOCK x AUTO_BLOCK blocks, so the transform's size, memory
# and time do not grow with the image size.
AUTO_WHOLE = 1024
AUTO_BLOCK = 16


def block_size(channels: int, height: int, width: int, block: int) -> tuple[int, int]:
    """(bh, bw) of the codec's blocks for training images (C, H, W) and the `block` option."""
    if block:
        return block, block
    if channels * height * width <= AUTO_WHOLE:
        return height, width
    return AUTO_BLOCK, AUTO_BLOCK


@dataclass(frozen=True)
class CodecOptions(ModelOptions):
    rate_weight: float = option(0.002, "rate weight of the rd loss (larger: smaller files)",
                                low=1e-7, high=1e3, key="lambda")
    clusters: int = option(16, "K learned transforms; each image uses the rate-distortion-best "
                               "one", low=1, high=256)
    max_symbols: int = option(4096, "support cap of the frozen probability tables", low=2,
                              high=1 << (TABLE_PRECISION - 1))
    rdoq: bool = option(True, "rate-distortion optimized rounding in the encoder")
    fast_select: bool = option(True, "two-pass cluster search in the encoder (search.py; "
                                     "off: every cluster scored exactly)")
    block: int = option(0, "side of the square blocks the transform codes; images of any size "
                           "are coded as a grid of blocks (0 = the whole training image when "
                           f"it has at most {AUTO_WHOLE} values, else {AUTO_BLOCK})", low=0,
                        high=256)
    shifts: int = option(8, "per-image scale shift in [-m, m] of the frozen tables (0 = off)",
                         low=0, high=31)


register_card(ModelCard(
    "codec", "aekit.codec.model",
    "Learned image codec: mixture of learned transforms, factorized prior, integer tables.",
    CodecOptions, loss="rd"))

"""Restoration: denoise, inpaint and colorize images with a model trained to undo a corruption
(`aekit train --corrupt ...`), at any image size by overlapping tiles.

    algorithm  restorer.py   Restorer (tiling, masks, luma-preserving colorization)
    commands   cli.py        denoise, inpaint, colorize
"""

from aekit.lazy import exports

__all__ = ["Restorer", "read_mask"]

__getattr__ = exports(__name__, {"Restorer": "aekit.restore.restorer",
                                 "read_mask": "aekit.restore.restorer"})

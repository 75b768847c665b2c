"""The learned codec: compress images to `.aez` files and back, bit-exactly on any machine.

    algorithm  model.py      CodecAE, the `codec` model (registered by name like every model)
               steps.py      its quantisation / integer coding steps, rate-control steps
               blocks.py     images of any size as a grid of the model's blocks
               deblock.py    the filter across block boundaries, fitted after training
               mixture.py    the closed-form start (a mixture of PCAs)
               density.py    integer probability tables
               entropy.py    range coding of the symbols (constriction)
               payload.py    one image's payload: block symbols in one range-coder stream
               api.py        compress / decompress / info
               baselines.py  JPEG, WebP, PNG and PCA+quantisation on the same images
    files      io.py         the `.aez` container (docs/FORMAT.md)
    commands   cli.py        compress, decompress, codec-info
"""

from aekit.lazy import exports

__all__ = ["compress", "compress_each", "decompress", "info"]

__getattr__ = exports(__name__, {name: "aekit.codec.api" for name in __all__})

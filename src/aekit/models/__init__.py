"""The model families behind one contract (base.py) and one catalogue (cards.py).

    contract   base.py       AutoencoderModule: encode, decode -> logits, forward dict, hooks;
                             EncoderDecoderModule when they are two plain submodules
    catalogue  cards.py      a card per model name and each family's typed options (no torch)
    building   build.py      build_model, default_config, resolve_options,
                             saved_options
    families   dense.py deep.py conv.py unet.py variational.py swap.py seeds.py
    parts      layers.py     shared layers; summary.py  the Keras-style layer table (summary());
               rewrite.py    an exact faster inference copy of a model (used by aekit.infer)

Importing this package imports no model (and no torch); a model's module is imported when its
name is first looked up (aekit.registry).
"""

from aekit.lazy import exports

__all__ = ["AutoencoderModule", "build_model", "default_config", "resolve_options",
           "saved_options"]

__getattr__ = exports(__name__, {
    "AutoencoderModule": "aekit.models.base",
    "build_model": "aekit.models.build",
    "default_config": "aekit.models.build",
    "resolve_options": "aekit.models.build",
    "saved_options": "aekit.models.build",
})

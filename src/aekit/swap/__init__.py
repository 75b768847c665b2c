"""Domain translation: draw images of one domain in the look of another with a two-domain
`swap` run (one shared encoder, one decoder per domain: the face-swap design).

    algorithm  translate.py  Translator (load, translate at any size), translate_files
    commands   cli.py        swap
"""

from aekit.lazy import exports

__all__ = ["Translator", "translate_files"]

__getattr__ = exports(__name__, {"Translator": "aekit.swap.translate",
                                 "translate_files": "aekit.swap.translate"})

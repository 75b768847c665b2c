"""Argument types and groups that every command shares, declared once.

Each capability's `cli.py` builds its subcommands from these: the argument types (sizes, widths,
key=value options), the `--threads`, `--device`, `--seed`, `-q/-v` and `--resize` flags, the
flags generated from a config dataclass, and how a batch command reports the files it skipped.
Nothing here imports torch: building the parser must stay fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Mapping, Sequence

from aekit.errors import AekitError


def parse_size(text: str) -> tuple[int, int]:
    """argparse type for 'HxW' / 'N' image sizes (the rule lives in aekit.data.units)."""
    from aekit.data.units import parse_image_size

    try:
        return parse_image_size(text)
    except AekitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_option(text: str) -> tuple[str, object]:
    """'key=value' with value parsed as JSON when possible (numbers, true/false), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected key=value")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_widths(text: str) -> tuple[int, ...]:
    """argparse type for '32,64,128' (empty: the model's default widths)."""
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated positive integers, e.g. 32,64") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be positive")
    return widths




# --- shared groups -------------------------------------------------------------------------------

def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")


def add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", default=default)


def add_seed(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--seed", type=int, default=0, help=help)


def add_verbosity(p: argparse.ArgumentParser) -> None:
    """-q/--quiet and -v/--verbose; aekit.cli sets aekit.console's level from them."""
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress: only warnings, errors and the result")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more detail (e.g. how long each phase took)")


def add_resize(p: argparse.ArgumentParser, keeps_size: bool = False) -> None:
    """--resize: convert images that do not match the model's channels (and, unless the command
    keeps each image's own size, its size) instead of skipping them (aekit.data.files)."""
    what = "channel count" if keeps_size else "channel count or size"
    p.add_argument("--resize", action="store_true",
                   help=f"convert images of another {what} than the model's instead of "
                        "skipping them")










def add_config_flags(p: argparse.ArgumentParser, config_cls: type,
                     deferred: Sequence[str] = (),
                     defaults: Mapping[str, object] | None = None) -> list[str]:
    """One flag per user-facing dataclass field (`--batch-size` for `batch_size`): the fields
    whose metadata holds a "help" text. Type, default, choices and help come from the field, so
    a setting has exactly one source of truth: the config class. Returns the field names.

    bool fields become switches (`negate="--no-x"` for one that defaults to True); `deferred`
    fields default to None on the command line, for a caller that fills them from elsewhere
    (a seed preset's own recipe) before falling back to the dataclass default. `defaults`
    replaces some fields' defaults for this command (a task's recorded recipe); a bool field
    that it turns on gets both `--x` and `--no-x`.
    """
    defaults = defaults or {}
    hints = typing.get_type_hints(config_cls)
    names = []
    for f in dataclasses.fields(config_cls):
        meta = f.metadata
        if "help" not in meta:
            continue
        names.append(f.name)
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            if defaults.get(f.name) is True and not meta.get("negate"):
                p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=True, help=meta["help"] + " (default: on)")
            elif meta.get("negate"):
                p.add_argument(meta["negate"], dest=f.name, action="store_false",
                               help=meta["help"])
            else:
                p.add_argument(flag, dest=f.name, action="store_true", help=meta["help"])
            continue
        default = None if f.name in deferred else defaults.get(f.name, f.default)
        if f.name in deferred:
            shown = f" (default: {meta.get('default_text', f.default)})"
        elif f.name in defaults:
            shown = f" (default: {defaults[f.name]})"
        else:
            shown = ""
        parse = parse_size if kind == (tuple[int, int] | None) else kind
        p.add_argument(flag, dest=f.name, type=parse, default=default,
                       choices=meta.get("choices"), metavar=meta.get("metavar"),
                       help=meta["help"] + shown)
    return names


def config_from_args(config_cls: type, args: argparse.Namespace, **override):
    """`config_cls` from the flags `add_config_flags` declared; None (a deferred flag the user
    did not give) falls back to the dataclass default; `override` wins over both."""
    values = {}
    for f in dataclasses.fields(config_cls):
        if "help" in f.metadata and getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return config_cls(**{**values, **override})


# --- batch outcome -------------------------------------------------------------------------------

"""Argument types and groups that every command shares, declared once.

Each capability's `cli.py` builds its subcommands from these, so `--threads`, `--device`,
`--seed`, `--out`, `--dataset` and the batch inputs mean the same thing (and read the same in
`--help`) everywhere. Nothing here imports torch: building the parser must stay fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from aekit.errors import AekitError, ConfigError


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


def existing_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{path}: no such folder")
    return p


# --- shared groups -------------------------------------------------------------------------------

def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")


def add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", default=default)


def add_seed(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--seed", type=int, default=0, help=help)


def add_out(p: argparse.ArgumentParser, help: str, required: bool = True, short: bool = True,
            default: str | None = None) -> None:
    """The output of a command: `-o/--out` (commands that only read take `--out` alone when it
    names a folder they create)."""
    names = ("-o", "--out") if short else ("--out",)
    p.add_argument(*names, required=required, default=default, help=help)


def add_dataset(p: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    p.add_argument("--dataset", default=default, help=help)


def add_run(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("run", help=help)


def add_images(p: argparse.ArgumentParser, required: bool = True,
               help: str = "image files or folders") -> None:
    """Batch inputs: files and folders (expanded recursively by aekit.data.files)."""
    p.add_argument("images", nargs="+" if required else "*", help=help)


def add_config_flags(p: argparse.ArgumentParser, config_cls: type, fields: Sequence[str],
                     helps: dict[str, str] | None = None) -> None:
    """One flag per dataclass field (`--batch-size` for `batch_size`), its default taken from the
    dataclass, so a setting's default has exactly one source of truth: the config class.

    bool fields become store_true switches; the help text comes from `helps`.
    """
    helps = helps or {}
    hints = typing.get_type_hints(config_cls)
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    for name in fields:
        flag = "--" + name.replace("_", "-")
        kind = hints[name]
        if kind is bool:
            p.add_argument(flag, action="store_true", help=helps.get(name))
            continue
        p.add_argument(flag, type=kind, default=defaults[name], help=helps.get(name))


def config_from_args(config_cls: type, args: argparse.Namespace, fields: Sequence[str],
                     **extra):
    """Build `config_cls` from the flags `add_config_flags` declared (plus `extra` fields)."""
    values = {name: getattr(args, name) for name in fields}
    return config_cls(**values, **extra)


# --- batch outcome -------------------------------------------------------------------------------

def report_bad(bad: Sequence[tuple], processed: int) -> int:
    """Print skipped files on stderr; exit code 1 if any, else 0."""
    for path, reason in bad:
        print(f"aekit: skipped {path}: {reason}", file=sys.stderr)
    if bad:
        print(f"aekit: {processed} file(s) done, {len(bad)} skipped", file=sys.stderr)
        return 1
    return 0

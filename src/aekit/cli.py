"""The `aekit` command line. Every subcommand runs in-process through `main(argv)`.

Bad input ends as one line on stderr and exit code 2 (never a traceback); a batch command that
processed every good file but skipped some bad ones exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from aekit.errors import AekitError, ConfigError

# Feature modules add their own subcommands through `add_parsers(subparsers)`.
COMMAND_MODULES = ("aekit.commands_core",)
# Each feature owns its command module; a module not present in this build is skipped.
OPTIONAL_COMMAND_MODULES = (
    "aekit.codec.commands",  # compress, decompress, codec-info
    "aekit.tasks.restore_cli",  # denoise, inpaint, colorize
    "aekit.tasks.anomaly_cli",  # anomaly fit / score
    "aekit.tasks.represent_cli",  # embed, finetune, classify, sample, interpolate
    "aekit.tools_cli",  # report, export
)


def parse_size(text: str) -> tuple[int, int]:
    """'28x28' or '32' -> (H, W)."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        h = w = 0
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"image size {text!r}: expected HxW, e.g. 28x28")
    return h, w


def parse_option(text: str) -> tuple[str, object]:
    """'key=value' with value parsed as JSON when possible (numbers, true/false), else a string."""
    import json

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected key=value")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    from aekit import __version__

    parser = argparse.ArgumentParser(
        prog="aekit", description="Autoencoders for images: train, evaluate and put them to work.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    for name in OPTIONAL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real import error inside an existing module is a bug
                raise
            continue
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and argparse's own usage errors (code 2)
        return int(e.code or 0)
    try:
        from aekit.device import setup_threads

        setup_threads(getattr(args, "threads", None))
        code = args.func(args)
        return int(code or 0)
    except AekitError as e:
        print(f"aekit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aekit: interrupted (the last completed checkpoint is kept)", file=sys.stderr)
        return 130
    except MemoryError:
        print("aekit: error: out of memory; try a smaller --batch-size", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions: the user's environment, not a bug
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"aekit: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


def existing_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{path}: no such folder")
    return p


if __name__ == "__main__":
    sys.exit(main())

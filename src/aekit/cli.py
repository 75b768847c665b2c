"""The `aekit` command line: the one command registry. Every subcommand runs in-process through
`main(argv)`.

Each capability declares its own subcommands in its `cli.py` (`add_parsers`); this file lists
them once, in `--help` order, sets what goes to stderr (aekit.console, from -q/-v) and turns
errors into one line on stderr. Bad input exits 2 (never a traceback); a batch command that
processed every good file but skipped some bad ones exits 1. `aekit train` stopped by SIGTERM
or SIGINT writes a checkpoint, says how to resume and exits 75 (aekit.train.preempt).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from aekit import __version__, console
from aekit.anomaly import cli as anomaly_cli
from aekit.codec import cli as codec_cli
from aekit.core import cli as core_cli
from aekit.errors import AekitError
from aekit.report import cli as report_cli
from aekit.represent import cli as represent_cli
from aekit.restore import cli as restore_cli
from aekit.swap import cli as swap_cli

# The registry: each module's add_parsers(sub) adds its subcommands.
COMMANDS = (
    core_cli,  # train, eval, reconstruct, models, datasets, summary
    codec_cli,  # compress, decompress, codec-info
    restore_cli,  # denoise, inpaint, colorize
    swap_cli,  # swap (domain translation)
    anomaly_cli,  # anomaly fit / score
    represent_cli,  # embed, finetune, classify, sample, interpolate, traverse
    report_cli,  # report, export
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aekit", description="Autoencoders for images: train, evaluate and put them to work.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parsers(sub)
    return parser


def _commands(parser: argparse.ArgumentParser, prefix: str = "aekit"):
    """(name, parser, one-line help) of every leaf command, in --help order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                leaves = list(_commands(sub, f"{prefix} {name}"))
                yield from leaves or [(f"{prefix} {name}", sub, helps.get(name) or "")]


def reference() -> tuple[str, str]:
    """(README's command table, docs/CLI.md's full --help texts), generated from the parser so
    the documentation lists exactly the flags the command line has."""
    table = ["| command | what it does | flags |", "| --- | --- | --- |"]
    pages = ["# Command reference", "", "Every `aekit` command's `--help`, generated from the "
             "command line itself. Progress output, `-q/-v`, skipped files, `--resize` and exit "
             "codes: [Output and exit codes](../README.md#output-and-exit-codes).", ""]
    for name, sub, help_ in _commands(build_parser()):
        flags = sorted({o for a in sub._actions if a.help != argparse.SUPPRESS
                        for o in a.option_strings} - {"-h", "--help"},
                       key=lambda f: f.lstrip("-"))
        table.append(f"| `{name}` | {help_} | {' '.join(f'`{f}`' for f in flags)} |")
        # argparse wraps help to the terminal's width: fix it so the text is reproducible.
        saved = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"
        try:
            usage = sub.format_help().rstrip()
        finally:
            os.environ.pop("COLUMNS") if saved is None else os.environ.update(COLUMNS=saved)
        pages += [f"## {name}", "", "```", usage, "```", ""]
    return "\n".join(table) + "\n", "\n".join(pages)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and argparse's own usage errors (code 2)
        return int(e.code or 0)
    # -q/-v hold for this command only (main may run again in the same process).
    previous = console.set_level(console.level_from(getattr(args, "quiet", False),
                                                    getattr(args, "verbose", 0)))
    try:
        return _run(args)
    finally:
        console.set_level(previous)


def _run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "uses_torch", True):  # listings say False: they start without torch
            from aekit.device import setup_threads

            setup_threads(getattr(args, "threads", None))
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return int(code or 0)
    except AekitError as e:
        print(f"aekit: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`aekit models | head -2`): not an error of ours. Point stdout at
        # devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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


if __name__ == "__main__":
    sys.exit(main())

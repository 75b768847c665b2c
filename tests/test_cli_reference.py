"""README's command table and docs/CLI.md are generated from the parser: they list exactly the
commands and flags `--help` shows. Regenerate with `python tests/test_cli_reference.py`."""

from __future__ import annotations

import sys
from pathlib import Path

from aekit.cli import reference

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def _readme_with(table: str) -> str:
    text = (ROOT / "README.md").read_text()
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{table}{END}{rest.split(END, 1)[1]}"


def test_readme_and_cli_md_list_every_command_and_flag():
    table, pages = reference()
    assert (ROOT / "README.md").read_text() == _readme_with(table), \
        "README's command table is stale: run `python tests/test_cli_reference.py`"
    assert (ROOT / "docs" / "CLI.md").read_text() == pages + "\n", \
        "docs/CLI.md is stale: run `python tests/test_cli_reference.py`"
    for flag in ("--baseline", "--memory-budget", "--lp-cmn", "--heatmaps", "--mask-spec"):
        assert f"`{flag}`" in table


if __name__ == "__main__":
    table, pages = reference()
    (ROOT / "README.md").write_text(_readme_with(table))
    (ROOT / "docs" / "CLI.md").write_text(pages + "\n")
    sys.exit(0)

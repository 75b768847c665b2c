"""`make demo` (aekit.demo): the training command it runs, and a failed run said last."""

from __future__ import annotations

import json

import pytest

from aekit import demo


@pytest.mark.parametrize("warnings", [[], ["the output collapsed to a near-constant image"]])
def test_demo_trains_conv_and_repeats_a_warning_last(tmp_path, monkeypatch, capsys, warnings):
    calls = []

    def fake_main(argv):
        calls.append(argv)
        out = tmp_path / "runs" / "demo"
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        (out / "metrics.json").write_text(json.dumps({"warnings": warnings}))
        return 0

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("aekit.cli.main", fake_main)
    assert demo.main() == 0
    argv = calls[0]
    assert argv[:3] == ["train", "--model", "conv"] and argv[argv.index("--out") + 1] == \
        "runs/demo"
    lines = capsys.readouterr().out.strip().splitlines()
    if warnings:
        assert lines[-1] == f"NOTE: this run did not train well: {warnings[0]}"
    else:
        assert not any(line.startswith("NOTE") for line in lines)

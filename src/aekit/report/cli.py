"""Subcommands that take a finished run to other tools: `report` (one HTML file) and `export`
(ONNX / TorchScript)."""

from __future__ import annotations

import argparse
import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML report of one or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders, shown side by side")
    p.add_argument("-o", "--out", default="report.html", help="HTML file to write")
    p.add_argument("--no-latent", action="store_true",
                   help="skip the latent picture (it loads each run's dataset)")
    p.add_argument("--title", default="", help="page title")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="export a run's encoder, decoder or model to ONNX or "
                                      "TorchScript (dynamic batch axis)")
    p.add_argument("run")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--part", default="model", choices=["encoder", "decoder", "model"],
                   help="encoder: image -> z; decoder: z -> image in [0, 1]; model: image -> "
                        "reconstruction")
    p.add_argument("-o", "--out", required=True, help="file to write (.onnx or .pt)")
    p.set_defaults(func=cmd_export)


def cmd_report(args: argparse.Namespace) -> int:
    from aekit.report.html import write_report

    path, notes = write_report(args.runs, args.out, latent=not args.no_latent,
                               title=args.title)
    for note in notes:
        print(f"aekit: note: {note}", file=sys.stderr)
    print(f"report: {path} ({path.stat().st_size / 1024:,.0f} KiB, {len(args.runs)} run(s))")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from aekit.report.export import export_run

    info = export_run(args.run, args.format, args.part, args.out)
    shape = "x".join(str(s) for s in info["input_shape"])
    print(f"exported {args.part} of {args.run} to {info['path']} ({info['format']}, "
          f"{info['exporter']}; input {info['input']} {shape}, output {info['output']}); "
          f"checked on a new batch: max |diff| vs PyTorch = {info['max_abs_diff']:.2g}")
    return 0

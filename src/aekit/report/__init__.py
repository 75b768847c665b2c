"""Reports and export: one self-contained HTML page of one or more runs, and ONNX/TorchScript
export of a run's encoder, decoder or whole model.

    algorithm  html.py       build_report / write_report
               export.py     export_run (checked against PyTorch on a new batch)
    commands   cli.py        report, export
"""

from aekit.lazy import exports

__all__ = ["export_run", "write_report"]

__getattr__ = exports(__name__, {"export_run": "aekit.report.export",
                                 "write_report": "aekit.report.html"})

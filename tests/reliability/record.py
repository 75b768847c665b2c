"""Optional figures for docs/RELIABILITY.md: with AEKIT_RELIABILITY_LOG=FILE set, tests append one
JSON line per finding (trials, cases, files, failures) to FILE."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def record(test: str, **figures: Any) -> None:
    path = os.environ.get("AEKIT_RELIABILITY_LOG")
    if not path:
        return
    row = {"test": test, "at": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")

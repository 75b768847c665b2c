"""Pilot: what the automatic budget's early stop would have done to finished runs.

A run keeps its best validation epoch, and stopping only cuts epochs off the end (every earlier
epoch is computed the same), so a finished run's validation history tells exactly where a given
patience would have stopped it and whether the epoch it keeps would change. For each run folder
(metrics.json `history`): the planned epochs, the epoch the rule stops at, the epoch kept and
whether it is the run's own best.

    python -m bench.pilots.auto_patience                       # runs/matrix/*, today's rule
    python -m bench.pilots.auto_patience --share 0.2 RUN ...

Writes bench/results/pilots/auto_patience.json (auto_patience_SHARE.json for another share).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from aekit.train.budget import AUTO_PATIENCE_MIN, AUTO_PATIENCE_SHARE
from bench.common import write_result


def simulate(val: list[float], patience: int) -> tuple[int, int]:
    """(epoch the run stops at, epoch it keeps) for a validation history and a patience."""
    best, kept = math.inf, 0
    for epoch, v in enumerate(val, 1):
        if v < best:
            best, kept = v, epoch
        elif epoch - kept >= patience:
            return epoch, kept
    return len(val), kept


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="run folders (default: runs/matrix/*, not *-quick)")
    p.add_argument("--share", type=float, default=AUTO_PATIENCE_SHARE)
    p.add_argument("--min", type=int, default=AUTO_PATIENCE_MIN)
    args = p.parse_args(argv)
    runs = [Path(r) for r in args.runs] or sorted(
        r for r in Path("runs/matrix").iterdir() if not r.name.endswith("-quick"))
    rows = []
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        val = [r["val_loss"] for r in metrics["history"]]
        if not val or val[0] is None:
            continue
        patience = max(args.min, math.ceil(args.share * len(val)))
        stop, kept = simulate(val, patience)
        best = min(range(len(val)), key=val.__getitem__) + 1
        rows.append({"run": run.name, "epochs": len(val), "patience": patience, "stops_at": stop,
                     "keeps": kept, "best": best, "same": kept == best})
        print(f"{run.name:24s} {len(val):5d} epochs  patience {patience:4d}  stops at {stop:5d}"
              f"  keeps {kept:4d}  best {best:4d}  {'same' if kept == best else 'CHANGED'}")
    name = "auto_patience" + ("" if args.share == AUTO_PATIENCE_SHARE else f"_{args.share:g}")
    write_result(name, {"share": args.share, "min": args.min, "rows": rows},
                 Path("bench/results/pilots"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

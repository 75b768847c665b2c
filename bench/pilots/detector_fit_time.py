"""Pilot: how long the default detector takes to fit one MNIST digit class, and how many of its
networks collapsed from the plain start and were trained again.

On sparse digits the plain start collapses some networks to a constant output; the detector
trains those again from the mean-output start. This times `Detector().fit` on the training
images of one class of `idx:../shared/data/mnist` (AEKIT_DATA or ../shared/data), so that a
change to how a lost run is handled can be compared on the same work.

    python -m bench.pilots.detector_fit_time --digit 1 --threads 2
    PYTHONPATH=.:OTHER/src python -m bench.pilots.detector_fit_time --name NAME  # another tree

Writes bench/results/pilots/detector_fit_time.json (or NAME.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RESULTS = Path("bench/results/pilots")


def main(argv: list[str] | None = None) -> int:
    from aekit.anomaly.detector import Detector
    from aekit.data import load_dataset
    from bench.common import write_result

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--digit", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dataset", default="idx:../shared/data/mnist")
    p.add_argument("--name", default="detector_fit_time")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset)
    x = ds.train_x[ds.train_y == args.digit]
    t0 = time.perf_counter()
    det = Detector().fit(x)
    row = {"dataset": args.dataset, "digit": args.digit, "images": len(x),
           "threads": args.threads, "fit_seconds": round(time.perf_counter() - t0, 1),
           "restarts": det.restarts_}
    print(json.dumps(row))
    write_result(args.name, row, RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

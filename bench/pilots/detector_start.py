"""Pilot: which start should the anomaly detector's networks train from?

`aekit train` starts a model's output at the training images' mean (aekit.train.health), which
keeps sparse images from collapsing to a constant output. The detector's scores were measured
with networks started plain (output at sigmoid(0)). This pilot fits the default `Detector()` on
one-class Fashion-MNIST classes 0 and 6 (the benchmark's weakest) for three seeds, once with each
start forced for every network, and reports the test AUROC (the other nine classes are the
anomalies).

    python -m bench.pilots.detector_start --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import ROOT, print_table, write_result

CLASSES, SEEDS = (0, 6), (0, 1, 2)


def main(argv: list[str] | None = None) -> int:
    import aekit.train.objective as objective
    from aekit.anomaly.detector import Detector
    from aekit.data import load_dataset
    from aekit.eval.metrics import auroc
    from aekit.train.health import start_from_data

    def mean_start(model: torch.nn.Module, x) -> bool:
        model.output_init_pending = True  # the detector asks for a plain start first
        return start_from_data(model, x)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dataset", default="fashion-mnist")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset)
    rows, t0 = [], time.perf_counter()
    for seed in SEEDS:
        for k in CLASSES:
            row = {"seed": seed, "class": k}
            for start in ("mean", "plain"):
                # forced for every network the detector trains (its own rule is left out)
                objective.start_from_data = mean_start if start == "mean" else \
                    (lambda model, x: False)
                det = Detector(random_state=seed)
                det.fit(ds.train_x[ds.train_y == k])
                scores = det.score_samples(ds.test_x)
                row[start] = round(100 * auroc(scores, (ds.test_y != k).numpy()), 2)
            objective.start_from_data = start_from_data
            row["plain - mean"] = round(row["plain"] - row["mean"], 2)
            rows.append(row)
            print(row, flush=True)
    print_table(list(rows[0]), [list(r.values()) for r in rows])
    write_result("detector_start", {"dataset": args.dataset, "rows": rows,
                                    "seconds": round(time.perf_counter() - t0)},
                 ROOT / "bench" / "results" / "pilots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

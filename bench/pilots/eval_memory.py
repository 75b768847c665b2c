"""Peak memory of end-of-training evaluation: the whole test set held as float copies
(`reconstruct_all` + `measure`, how evaluation ran before) vs the streamed `evaluate_set`
(pixel-budgeted batches, exact metric sums). Each measurement runs in a fresh process; the
figure is the growth of peak RSS (VmHWM, reset once the uint8 set and the model are loaded) over
the RSS at that moment. The model is a seeded, untrained `dense` autoencoder (memory does not
depend on the weights' values); 1 thread.

    python -m bench.pilots.eval_memory [--sets 10000x1x28,30000x1x28,1000x3x64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.common import print_table, write_result

_CHILD = """
import json, re, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from aekit.config import ModelConfig
from aekit.eval.evaluate import evaluate_set, measure, reconstruct_all
from aekit.models import build_model
n, ch, size, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
model = build_model(ModelConfig(name="dense", in_channels=ch, height=size, width=size,
                                latent_dim=32))
x8 = torch.randint(0, 256, (n, ch, size, size), dtype=torch.uint8)
def status(key):
    return int(re.search(rf"^{key}:\\s+(\\d+) kB", Path("/proc/self/status").read_text(),
                         re.M).group(1))
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the current RSS
base = status("VmRSS")
t = time.perf_counter()
if mode == "in-memory":
    _, x_hat = reconstruct_all(model, x8)
    m = measure(x_hat, x8.float() / 255.0)
else:
    m = evaluate_set(model, x8).test
peak = status("VmHWM")
print(json.dumps({"growth_mb": (peak - base) / 1024, "seconds": time.perf_counter() - t,
                  "metrics": m}))
"""


def measure_one(n: int, ch: int, size: int, mode: str) -> dict:
    env = {"OMP_NUM_THREADS": "1", "AEKIT_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(ch), str(size), mode],
                          capture_output=True, text=True, env=env, check=True, timeout=600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="10000x1x28,30000x1x28,1000x3x64",
                    help="N x channels x side, comma-separated")
    args = ap.parse_args(argv)
    rows, results = [], []
    for spec in args.sets.split(","):
        n, ch, size = (int(v) for v in spec.split("x"))
        got = {mode: measure_one(n, ch, size, mode) for mode in ("in-memory", "streamed")}
        same = got["in-memory"]["metrics"] == got["streamed"]["metrics"]
        results.append({"n": n, "shape": [ch, size, size], **got, "identical_metrics": same})
        rows.append([f"{n:,} x {ch}x{size}x{size}", round(got["in-memory"]["growth_mb"], 1),
                     round(got["streamed"]["growth_mb"], 1), "yes" if same else "NO"])
    print_table(["test set", "in-memory MB", "streamed MB", "identical metrics"], rows)
    write_result("pilots/eval_memory", {
        "command": "python -m bench.pilots.eval_memory --sets " + args.sets,
                                 "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Inference speed: PyTorch eager vs ONNX Runtime for `conv` encode+decode on 2 CPU threads.

The whole model (image -> reconstruction) is exported with `aekit.report.export` (the same code as
`aekit export --part model`), then both run the same float32 batches. Rounds of the two runtimes
alternate (A B A B ...) so machine load hits both alike; the median round is reported. The
weights are seeded, not trained: speed does not depend on their values.

Each configuration runs in a fresh process, because OpenMP reads OMP_WAIT_POLICY only at start:
the default (threads spin while waiting, fastest on an idle machine) and PASSIVE (threads sleep,
which on a CPU shared with other jobs avoids PyTorch's spinning threads starving each other).
ONNX Runtime uses its own thread pool and is not affected.

    python -m bench.inference [--threads 1,2] [--batches 1,64,256] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, print_table, write_result


def rate(fn, x, seconds: float) -> float:
    """Images per second of fn(x), calling it for about `seconds`."""
    fn(x)  # warm-up (allocations, first-run kernels)
    n, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n * len(x) / elapsed


def measure(threads: int, batches: list[int], seconds: float, rounds: int, latent: int) -> dict:
    """One configuration, in this process: img/s of both runtimes per batch size."""
    import onnxruntime as ort
    import torch

    from aekit.config import ModelConfig
    from aekit.models import build_model
    from aekit.report.export import export_model, max_abs_diff, part_module

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = ModelConfig(name="conv", in_channels=1, height=28, width=28, latent_dim=latent)
    model = build_model(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conv.onnx"
        info = export_model(model, "model", "onnx", path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    module = part_module(model, "model")

    def run_torch(x):
        with torch.inference_mode():
            return module(x)

    def run_ort(x):
        return sess.run(None, {name: x.numpy()})[0]

    results = []
    for b in batches:
        x = torch.rand(b, *cfg.shape, generator=torch.Generator().manual_seed(b))
        diff = max_abs_diff(torch.from_numpy(run_ort(x)), run_torch(x))
        pt, ox = [], []
        for _ in range(rounds):
            pt.append(rate(run_torch, x, seconds))
            ox.append(rate(run_ort, x, seconds))
        results.append({"batch": b, "pytorch_img_s": round(statistics.median(pt), 1),
                        "onnxruntime_img_s": round(statistics.median(ox), 1),
                        "max_abs_diff": diff})
    return {"threads": threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "exporter": info["exporter"], "onnxruntime": ort.__version__,
            "parameters": model.num_parameters(), "model": cfg.to_dict(), "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--seconds", type=float, default=1.0, help="per round and runtime")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(v) for v in args.batches.split(",")]
    if args.worker:
        print(json.dumps(measure(int(args.threads), batches, args.seconds, args.rounds,
                                 args.latent_dim)))
        return
    configs, rows = [], []
    for threads in (int(t) for t in args.threads.split(",")):
        for policy in (None, "PASSIVE") if threads > 1 else (None,):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            env.update({"OMP_WAIT_POLICY": policy} if policy else {})
            cmd = [sys.executable, "-m", "bench.inference", "--worker", "--threads",
                   str(threads), "--batches", args.batches, "--seconds", str(args.seconds),
                   "--rounds", str(args.rounds), "--latent-dim", str(args.latent_dim)]
            out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout
            cfg = json.loads(out.strip().splitlines()[-1])
            configs.append(cfg)
            for r in cfg["results"]:
                rows.append([threads, cfg["omp_wait_policy"], r["batch"], r["pytorch_img_s"],
                             r["onnxruntime_img_s"],
                             round(r["onnxruntime_img_s"] / r["pytorch_img_s"], 2),
                             f"{r['max_abs_diff']:.1e}"])
    print(f"conv 1x28x28, latent {args.latent_dim}, encode+decode; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(["threads", "OMP wait", "batch", "PyTorch img/s", "ONNX Runtime img/s",
                 "ORT/PyTorch", "max |diff|"], rows)
    path = write_result("inference", {"load_average": list(os.getloadavg()),
                                      "seconds_per_round": args.seconds, "rounds": args.rounds,
                                      "configs": configs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Inference speed: PyTorch eager vs ONNX Runtime for `conv` encode+decode on 2 CPU threads.

The whole model (image -> reconstruction) is exported with `aekit.export` (the same code as
`aekit export --part model`), then both run the same float32 batches. Rounds of the two runtimes
alternate (A B A B ...) so machine load hits both alike; the median round is reported. The
weights are seeded, not trained: speed does not depend on their values.

    python -m bench.inference [--threads 2] [--batches 1,64,256] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from aekit.config import ModelConfig
from aekit.export import export_model, max_abs_diff, part_module
from aekit.models import build_model
from bench.common import print_table, write_result


def rate(fn, x: torch.Tensor, seconds: float) -> float:
    """Images per second of fn(x), calling it for about `seconds`."""
    fn(x)  # warm-up (allocations, first-run kernels)
    n, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n * len(x) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--seconds", type=float, default=1.0, help="per round and runtime")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latent-dim", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    torch.manual_seed(0)
    cfg = ModelConfig(name="conv", in_channels=1, height=28, width=28, latent_dim=args.latent_dim)
    model = build_model(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conv.onnx"
        info = export_model(model, "model", "onnx", path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    module = part_module(model, "model")

    def run_torch(x):
        with torch.inference_mode():
            return module(x)

    def run_ort(x):
        return sess.run(None, {name: x.numpy()})[0]

    rows, results = [], []
    for b in (int(v) for v in args.batches.split(",")):
        x = torch.rand(b, *cfg.shape, generator=torch.Generator().manual_seed(b))
        diff = max_abs_diff(torch.from_numpy(run_ort(x)), run_torch(x))
        pt, ox = [], []
        for _ in range(args.rounds):
            pt.append(rate(run_torch, x, args.seconds))
            ox.append(rate(run_ort, x, args.seconds))
        r = {"batch": b, "pytorch_img_s": round(statistics.median(pt), 1),
             "onnxruntime_img_s": round(statistics.median(ox), 1), "max_abs_diff": diff}
        r["speedup"] = round(r["onnxruntime_img_s"] / r["pytorch_img_s"], 2)
        results.append(r)
        rows.append([b, r["pytorch_img_s"], r["onnxruntime_img_s"], r["speedup"], f"{diff:.1e}"])
    print(f"conv 1x28x28, latent {args.latent_dim}: encode+decode, {args.threads} threads "
          f"(onnxruntime {ort.__version__}, exporter {info['exporter']})")
    print_table(["batch", "PyTorch img/s", "ONNX Runtime img/s", "ratio", "max |diff|"], rows)
    path = write_result("inference", {
        "model": cfg.to_dict(), "parameters": model.num_parameters(),
        "threads": args.threads, "onnxruntime": ort.__version__, "exporter": info["exporter"],
        "load_average": list(os.getloadavg()), "seconds_per_round": args.seconds,
        "rounds": args.rounds, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

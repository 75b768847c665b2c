"""Inference speed: PyTorch eager vs every fast-path candidate for `conv` encode+decode on CPU.

What `aekit.infer` chooses between (the rewrite: NHWC weights + each nearest-2x-resize + 3x3 conv
computed on the low-resolution input; ONNX Runtime on that rewrite; one-thread variants for
small batches) plus what was tried and not kept as a candidate (eager in channels-last layout
without the rewrite; torch.jit trace + freeze, with and without optimize_for_inference; ONNX
Runtime on the model as written). Then the path `aekit.infer` picks itself (`infer.select`
measures the candidates on the batch, `infer.run` uses the choice): "fast path".

The weights are seeded, not trained: speed does not depend on their values. Every variant's
output is compared with eager's on the timed batch (max |diff|; the fast path accepts <= 1e-5).
Rounds alternate between the variants (A B C ... A B C ...) so machine load hits them alike;
the median round is reported, and the load average before and after each configuration.

Each configuration runs in a fresh process, because OpenMP reads OMP_WAIT_POLICY only at start:
the default (threads spin while waiting, fastest on an idle machine) and, with 2 threads,
PASSIVE (threads sleep, which on a CPU shared with other jobs avoids PyTorch's spinning threads
starving each other). ONNX Runtime uses its own thread pool and is not affected.

    python -m bench.inference [--threads 1,2] [--batches 1,256] [--seconds 0.5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

from bench.common import ROOT, print_table, write_result

PART = "reconstruct"


def rate(fn, x, seconds: float) -> float:
    """Images per second of fn(x), calling it for about `seconds` (at least twice)."""
    fn(x)  # warm-up (allocations, first-run kernels)
    n, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 2:
            return n * len(x) / elapsed


def tried_variants(model, x, threads: int) -> dict:
    """The variants measured here but not fast-path candidates: {name: callable or error}."""
    import torch

    from aekit import infer
    from aekit.infer import onnx as infer_onnx

    out: dict = {}
    cl = torch.channels_last

    def guard(name, make):
        try:
            out[name] = make()
        except Exception as e:  # noqa: BLE001  reported, not fatal
            out[name] = f"{type(e).__name__}: {str(e)[:120]}"

    def channels_last():
        m = copy.deepcopy(model).to(memory_format=cl)
        return lambda b: m(b.contiguous(memory_format=cl))["x_hat"]

    def jit(optimize: bool):
        def make():
            rw = infer.rewrite(model)
            ex = x[:2].clone() if len(x) >= 2 else torch.cat([x, x])
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(infer_onnx._Part(rw, PART).eval(),
                                         (ex.contiguous(memory_format=cl),), check_trace=False)
                frozen = torch.jit.freeze(traced)
                if optimize:
                    frozen = torch.jit.optimize_for_inference(frozen)
            return lambda b: frozen(b.contiguous(memory_format=cl))
        return make

    def ort_unrewritten():
        onnx, n_out = infer_onnx._onnx_bytes(model, PART, x)
        return infer_onnx._ort_call(infer_onnx._ort_session(onnx, threads), n_out)

    guard("tried: eager, channels-last, no rewrite", channels_last)
    guard("tried: jit trace+freeze, rewrite", jit(False))
    guard("tried: jit trace+freeze+optimize_for_inference, rewrite", jit(True))
    if infer.onnxruntime_available():
        guard("tried: onnxruntime, no rewrite", ort_unrewritten)
    return out


def measure(threads: int, batches: list[int], seconds: float, rounds: int, latent: int) -> dict:
    """One configuration, in this process: img/s of every variant per batch size."""
    import torch

    from aekit import infer
    from aekit.config import ModelConfig
    from aekit.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = ModelConfig(name="conv", in_channels=1, height=28, width=28, latent_dim=latent)
    model = build_model(cfg).eval()
    results = []
    for b in batches:
        load_before = os.getloadavg()[0]
        x = torch.rand(b, *cfg.shape, generator=torch.Generator().manual_seed(b))
        infer.clear(model)
        _, choice = infer.select(model, PART, x)  # the fast path's own measurement
        variants: dict = {}
        for name, factory in infer.candidates(model, PART, x, threads).items():
            try:
                variants[name] = factory()
            except Exception as e:  # noqa: BLE001
                variants[name] = f"{type(e).__name__}: {str(e)[:120]}"
        variants.update(tried_variants(model, x, threads))
        variants[f"fast path (chose {choice['chosen']})"] = lambda v: infer.run(model, PART, v)
        with torch.inference_mode():
            ref = infer.eager(model, PART)(x)
            runnable = {k: v for k, v in variants.items() if callable(v)}
            diffs = {k: infer.max_abs_diff(v(x), ref) for k, v in runnable.items()}
            speeds: dict[str, list[float]] = {k: [] for k in runnable}
            for _ in range(rounds):
                for k, v in runnable.items():
                    speeds[k].append(rate(v, x, seconds))
        rows = []
        for k, v in variants.items():
            if callable(v):
                rows.append({"variant": k, "img_s": round(statistics.median(speeds[k]), 1),
                             "max_abs_diff": diffs[k]})
            else:
                rows.append({"variant": k, "error": v})
        results.append({"batch": b, "chosen": choice["chosen"],
                        "selection": choice["candidates"], "variants": rows,
                        "load_average_before": round(load_before, 2),
                        "load_average_after": round(os.getloadavg()[0], 2)})
    import onnxruntime as ort

    return {"threads": threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "onnxruntime": ort.__version__, "parameters": model.num_parameters(),
            "model": cfg.to_dict(), "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--seconds", type=float, default=0.5, help="per round and variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latent-dim", type=int, default=32)
    ap.add_argument("--no-passive", action="store_true",
                    help="skip the OMP_WAIT_POLICY=PASSIVE configurations")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(v) for v in args.batches.split(",")]
    if args.worker:
        print(json.dumps(measure(int(args.threads), batches, args.seconds, args.rounds,
                                 args.latent_dim)))
        return
    configs, rows = [], []
    load_start = os.getloadavg()
    for threads in (int(t) for t in args.threads.split(",")):
        policies = (None, "PASSIVE") if threads > 1 and not args.no_passive else (None,)
        for policy in policies:
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
                eager = next(v["img_s"] for v in r["variants"] if v["variant"] == "eager")
                for v in r["variants"]:
                    if "error" in v:
                        rows.append([threads, cfg["omp_wait_policy"], r["batch"], v["variant"],
                                     "-", "-", v["error"][:40]])
                        continue
                    rows.append([threads, cfg["omp_wait_policy"], r["batch"], v["variant"],
                                 v["img_s"], round(v["img_s"] / eager, 2),
                                 f"{v['max_abs_diff']:.1e}"])
    print(f"conv 1x28x28, latent {args.latent_dim}, encode+decode; load average "
          f"{load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, on "
          f"{os.cpu_count()} cores")
    print_table(["threads", "OMP wait", "batch", "variant", "img/s", "x eager", "max |diff|"],
                rows)
    path = write_result("inference", {"load_average_start": list(load_start),
                                      "load_average_end": list(os.getloadavg()),
                                      "seconds_per_round": args.seconds, "rounds": args.rounds,
                                      "configs": configs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Denoising benchmark (docs/DESIGN.md seed protocol) for restoration runs vs classical baselines.

Protocol: Fashion-MNIST test set (10,000 images); noisy = clip(x + 0.5 * N(0, 1), 0, 1) drawn
once with a fixed seed, the same noisy images for every method; PSNR (10 log10(1 / MSE), MSE over
the whole set) and SSIM of each output against the clean image. Classical baselines (Gaussian
blur, TV Chambolle, non-local means, BM3D when `bm3d` is installed) are slow (BM3D ~1 img/s), so
they run on a fixed subset (the first --subset test images) with their one parameter tuned on
--tune noisy *training* images (BM3D: 20); aekit runs are measured on the subset and the full set.
Speed: images/second of model inference (forward pass, batches of 1,000) with --threads threads,
best of 3; wall clock, and also per CPU-second x threads, which is what the same work would get
on otherwise idle cores (the machine may be shared; its load average is recorded).

Train the runs first, e.g.
    aekit train --model unet --widths 32,64,128 --option shuffle=2 --option depth=2
                --corrupt gaussian:0.5 --epochs 16 --out runs/denoise-unet3d2   (one command)
then: python bench/denoise.py --runs runs/denoise-unet3d2 [runs/...]
Writes bench/results/denoise.json and docs/img/denoise_grid.png; prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SIGMA = 0.5
NOISE_SEED = 2024  # test noise
TUNE_SEED = 7  # noise on the training images used to tune the baselines
BM3D_TUNE = 20  # BM3D (~1 img/s) is tuned on the first 20 of them only


def noisy_copy(clean: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (clean + SIGMA * torch.randn(clean.shape, generator=gen)).clamp(0, 1)


def quality(out: torch.Tensor, clean: torch.Tensor) -> dict:
    from aekit.eval.evaluate import measure

    m = measure(out, clean)
    return {"psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 4), "mse": round(m["mse"], 6)}


@torch.inference_mode()
def run_model(model, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([model(b)["x_hat"].float() for b in x.split(batch)])


@torch.inference_mode()
def speed(model, x: torch.Tensor, batch: int = 1000, reps: int = 3) -> dict:
    """Best-of-`reps` inference throughput: wall clock and CPU-time based (images/s)."""
    run_model(model, x[:batch], batch)  # warm-up
    best_wall, best_cpu = 0.0, 0.0
    threads = torch.get_num_threads()
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        run_model(model, x, batch)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        best_wall = max(best_wall, len(x) / wall)
        best_cpu = max(best_cpu, len(x) / (cpu / threads))
    return {"images_per_second_wall": round(best_wall, 1),
            "images_per_second_cpu_time": round(best_cpu, 1)}


def baselines(noisy_sub, clean_sub, tune_noisy, tune_clean, skip: set[str]) -> dict:
    from aekit.eval import classical

    results = {"noisy input": {**quality(noisy_sub, clean_sub), "param": None}}
    outputs = {}
    for name in classical.available_denoisers():
        if name in skip:
            continue
        d = classical.DENOISERS[name]
        t0 = time.perf_counter()
        k = min(len(tune_noisy), BM3D_TUNE) if name == "bm3d" else len(tune_noisy)
        best, scores = classical.tune(name, tune_noisy[:k], tune_clean[:k])
        out, rate = classical.denoise(name, noisy_sub, best)
        outputs[name] = out
        results[name] = {**quality(out, clean_sub), "param": {d.param: best},
                         "tuning_psnr": {str(k): round(v, 3) for k, v in scores.items()},
                         "images_per_second": round(rate, 2)}
        print(f"  {name}: {d.param}={best} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    if "bm3d" not in results and "bm3d" not in skip:
        results["bm3d"] = {"skipped": "the optional `bm3d` package is not installed"}
    return results, outputs


def reused_baselines(path: Path, subset: int, tune: int) -> dict | None:
    """The baselines of an earlier run of this script with the same subset and tuning set."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if old.get("subset") != subset or old.get("tune_images") != tune:
        return None
    return old.get("baselines")


def evaluate_run(run_dir: str, noisy, clean, subset: int) -> tuple[dict, torch.Tensor]:
    from aekit.core.io import load_model, read_metrics

    model, run = load_model(run_dir)
    if run.train_cfg.corrupt != f"gaussian:{SIGMA:g}":
        print(f"  note: {run_dir} was trained with --corrupt {run.train_cfg.corrupt!r}",
              file=sys.stderr)
    out = run_model(model, noisy)
    try:
        trained = read_metrics(run_dir)
    except Exception:  # a bench must still report a run whose metrics file is missing
        trained = {}
    res = {
        "run": str(run_dir), "model": run.model_cfg.name, "widths": list(run.model_cfg.widths),
        "options": run.model_cfg.options, "parameters": model.num_parameters(),
        "corrupt": run.train_cfg.corrupt, "epochs": run.train_cfg.epochs,
        "limit": run.train_cfg.limit, "train_seconds": trained.get("train_seconds"),
        "full_test": quality(out, clean), "subset": quality(out[:subset], clean[:subset]),
        **speed(model, noisy),
    }
    return res, out


def figure(path: Path, rows: list[tuple[str, torch.Tensor]]) -> None:
    if str(ROOT) not in sys.path:  # run as a script: make `bench` importable
        sys.path.insert(0, str(ROOT))
    from bench.common import image_rows_figure

    image_rows_figure(path, rows, cell=(0.9, 1.0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="*", default=[], help="restoration run folders to measure")
    p.add_argument("--subset", type=int, default=200, help="test images for the baselines")
    p.add_argument("--tune", type=int, default=50, help="training images to tune baselines on")
    p.add_argument("--skip", nargs="*", default=[], help="baselines to skip (e.g. bm3d)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse-baselines", action="store_true",
                   help="take the baselines from --out's earlier result (same subset/tuning)")
    p.add_argument("--out", default=str(ROOT / "bench/results/denoise.json"))
    p.add_argument("--figure", default=str(ROOT / "docs/img/denoise_grid.png"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aekit.data import load_dataset

    ds = load_dataset("fashion-mnist")
    clean = ds.test_x.float() / 255.0
    noisy = noisy_copy(clean, NOISE_SEED)
    tune_clean = ds.train_x[: args.tune].float() / 255.0
    tune_noisy = noisy_copy(tune_clean, TUNE_SEED)
    n = args.subset
    print(f"baselines on the first {n} test images (tuned on {args.tune} train images)",
          file=sys.stderr)
    base = reused_baselines(Path(args.out), n, args.tune) if args.reuse_baselines else None
    fresh = None
    if base is None:
        base, outputs = baselines(noisy[:n], clean[:n], tune_noisy, tune_clean, set(args.skip))
        fresh = base
    else:  # only the figure's 10 BM3D images are recomputed, with the stored parameter
        print("  reusing the baselines stored in", args.out, file=sys.stderr)
        outputs = {}
        if "psnr" in base.get("bm3d", {}):
            from aekit.eval.classical import denoise

            outputs["bm3d"], _ = denoise("bm3d", noisy[:10], base["bm3d"]["param"]["sigma_psd"])
    runs, run_out = [], {}
    for r in args.runs:
        print(f"measuring {r}", file=sys.stderr)
        res, out = evaluate_run(r, noisy, clean, n)
        runs.append(res)
        run_out[r] = out

    result = {
        "protocol": "Fashion-MNIST test; noisy = clip(x + 0.5 N(0,1), 0, 1), noise seed "
                    f"{NOISE_SEED}; PSNR = 10 log10(1/MSE) over the set; SSIM as skimage",
        "subset": n, "tune_images": args.tune, "baselines": base,
        "baselines_reused": base is not fresh, "runs": runs,
        "environment": {"threads": args.threads, "cpus": os.cpu_count(),
                        "load_average": [round(v, 2) for v in os.getloadavg()],
                        "torch": torch.__version__, "machine": platform.machine()},
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")

    if runs:
        best = max(runs, key=lambda r: r["full_test"]["psnr"])
        rows = [("noisy", noisy[:10]), (f"aekit {best['model']}", run_out[best["run"]][:10])]
        if "bm3d" in outputs:
            rows.append(("BM3D", outputs["bm3d"][:10]))
        figure(Path(args.figure), [*rows, ("clean", clean[:10])])

    print(f"\n{'method':<34}{'PSNR sub':>9}{'SSIM sub':>9}{'PSNR 10k':>9}{'SSIM 10k':>9}"
          f"{'img/s':>9}{'img/s cpu':>10}")
    for name, r in base.items():
        if "psnr" in r:
            rate = r.get("images_per_second")
            print(f"{name:<34}{r['psnr']:>9.2f}{r['ssim']:>9.3f}{'':>18}"
                  f"{'' if rate is None else f'{rate:.1f}':>9}")
    for r in runs:
        label = f"aekit {r['model']} {Path(r['run']).name}"[:33]
        print(f"{label:<34}{r['subset']['psnr']:>9.2f}{r['subset']['ssim']:>9.3f}"
              f"{r['full_test']['psnr']:>9.2f}{r['full_test']['ssim']:>9.3f}"
              f"{r['images_per_second_wall']:>9.0f}{r['images_per_second_cpu_time']:>10.0f}")
    print(f"\nload average during the run: {result['environment']['load_average']}; "
          f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

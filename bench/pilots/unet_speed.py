"""Throughput pilot for choosing a restoration U-Net's size (untrained models, no data needed).

For each candidate: fp32 inference images/s (eval mode, BatchNorm folded, batches of 1,000, best
of 2) and training images/s (bf16 autocast as `aekit train --precision auto` on CPUs with native
bf16, batch 128, MSE, Adam). Run it with the machine otherwise idle:
    python bench/pilots/unet_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

CANDIDATES = (
    ((32, 64), {"shuffle": 2}),
    ((32, 64, 128), {"shuffle": 2}),
    ((32, 64, 128), {"shuffle": 2, "depth": 2}),
    ((48, 96, 192), {"shuffle": 2}),
    ((64, 128), {"shuffle": 2}),
    ((48, 96), {"shuffle": 2, "depth": 2}),
)


def measure(widths: tuple, options: dict, n_infer: int, steps: int) -> dict:
    from aekit.config import ModelConfig
    from aekit.models import build_model

    cfg = ModelConfig(name="unet", in_channels=1, height=28, width=28, latent_dim=32,
                      widths=widths, options=options)
    model = build_model(cfg).eval()
    x = torch.rand(n_infer, 1, 28, 28)
    with torch.inference_mode():
        model(x[:1000])  # warm-up (and BatchNorm folding)
        best = 0.0
        for _ in range(2):
            t = time.perf_counter()
            for b in x.split(1000):
                model(b)
            best = max(best, n_infer / (time.perf_counter() - t))
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xb = torch.rand(128, 1, 28, 28)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(xb)
        loss = ((out["x_hat"].float() - xb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return {"parameters": model.num_parameters(), "inference": best,
            "training": steps * 128 / (time.perf_counter() - t)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=5000, help="images for the inference timing")
    p.add_argument("--steps", type=int, default=15, help="training steps timed")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{'widths':<16}{'options':<28}{'params':>9}{'infer img/s':>12}{'train img/s':>12}")
    for widths, options in CANDIDATES:
        r = measure(widths, options, args.images, args.steps)
        print(f"{','.join(map(str, widths)):<16}{str(options):<28}{r['parameters']:>9}"
              f"{r['inference']:>12.0f}{r['training']:>12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

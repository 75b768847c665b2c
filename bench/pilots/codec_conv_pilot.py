"""Feasibility pilot: a *convolutional* analysis/synthesis codec on this machine.

Ballé-style transform (analysis conv5x5/2 - GDN - conv3x3/2 - GDN - conv3x3 -> 32 x 7 x 7 latent;
synthesis mirror with inverse GDN and 4x4/2 transposed convs), factorized prior: the codec's
shared unit CDF (aekit.codec.density.UnitDensity) stretched by a learned scale per latent
element. Training: additive uniform noise for the rate, straight-through rounding for the
decoder, D + lambda * R, Adam with a cosine schedule. After each epoch it reports, on the first
1,000 Fashion-MNIST test images, the *estimated* rate of the rounded latents under the continuous
model (no file is written; add 16 bytes for a one-image `.aez`) and the pooled PSNR.

It is not a shipped model: it answers "would a conv transform beat the mixture codec at the
compute available here?" (docs/BENCHMARKS.md, learned compression).

    python -m bench.pilots.codec_conv_pilot --lmbda 0.003 --epochs 6 --width 64 --threads 1
    python -m bench.pilots.codec_conv_pilot --summary   # BD-rate vs WebP of every saved lambda
    python -m bench.pilots.codec_conv_pilot --lmbda 0.003 --epochs 24 --threads 1 --tag _e24
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from aekit.codec.density import UnitDensity
from aekit.data import load_dataset
from aekit.device import setup_threads
from aekit.eval import metrics
from bench.common import write_result

LATENT_CHANNELS = 32
HEADER_BITS = 16 * 8  # a one-image .aez file: header + CRC


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al. 2016); `inverse` multiplies instead."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = self.gamma.abs()[:, :, None, None]  # (C, C, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, self.beta.abs() + 1e-6))
        return x * norm if self.inverse else x / norm


def build(width: int) -> tuple[nn.Module, nn.Module]:
    m = LATENT_CHANNELS
    analysis = nn.Sequential(
        nn.Conv2d(1, width, 5, 2, 2), GDN(width),          # 28 -> 14
        nn.Conv2d(width, width, 3, 2, 1), GDN(width),      # 14 -> 7
        nn.Conv2d(width, m, 3, 1, 1))                      # (B, M, 7, 7)
    synthesis = nn.Sequential(
        nn.Conv2d(m, width, 3, 1, 1), GDN(width, inverse=True),
        nn.ConvTranspose2d(width, width, 4, 2, 1), GDN(width, inverse=True),  # 7 -> 14
        nn.ConvTranspose2d(width, 1, 4, 2, 1))                                # 14 -> 28
    return analysis, synthesis


def summary() -> dict:
    """BD-rate vs WebP (24-32 dB) of the pilot's last epochs and, on the same footing (estimated
    bits + 16 header bytes per image), of the mixture codec in bench/results/codec.json."""
    from aekit.codec.baselines import bd_rate
    from bench.common import RESULTS

    ref = json.loads((RESULTS / "codec.json").read_text())
    webp = [(p["bpp"], p["psnr"]) for p in ref["baselines"]["webp"]]
    mixture = [(p["estimated_bpp"] + p["header_bytes_per_file"] * 8 / 784, p["psnr"])
               for p in ref["aekit"]]
    conv = []
    # untagged 6-epoch runs
    for path in sorted((RESULTS / "pilots").glob("codec_conv_pilot_l*.json")):
        last = json.loads(path.read_text())["history"][-1]
        conv.append((last["bpp_one_file"], last["psnr"]))
    out = {"conv_points": conv, "mixture_points": mixture}
    for name, pts in (("conv", conv), ("mixture", mixture)):
        pct, rng = bd_rate(webp, pts, 24.0, 32.0)
        out[f"{name}_bd_rate_vs_webp_pct"], out[f"{name}_range_db"] = round(pct, 2), rng
    print(json.dumps(out, indent=1))
    write_result("pilots/codec_conv_pilot_summary", out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary", action="store_true",
                    help="only compare the saved pilot results with WebP and the mixture codec")
    ap.add_argument("--lmbda", type=float, default=0.003)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--tag", default="",
                    help="result name suffix for runs outside the 6-epoch summary (e.g. _e24)")
    args = ap.parse_args()
    if args.summary:
        summary()
        return
    setup_threads(args.threads)
    torch.manual_seed(0)
    analysis, synthesis = build(args.width)
    density = UnitDensity()
    log_scale = nn.Parameter(torch.zeros(LATENT_CHANNELS, 7, 7))
    opt = torch.optim.Adam([
        {"params": [*analysis.parameters(), *synthesis.parameters()], "lr": args.lr},
        {"params": [*density.parameters(), log_scale], "lr": 1e-2}])
    ds = load_dataset("fashion-mnist")
    train_x = ds.train_x.float() / 255
    test_x = ds.test_x[:1000].float() / 255
    n, bs = len(train_x), args.batch_size
    total, step, history, t0 = args.epochs * (n // bs), 0, [], time.perf_counter()

    def bits(y: torch.Tensor) -> torch.Tensor:
        return -torch.log2(density.bin_probability(y, log_scale.exp()).clamp_min(1e-9)).sum()

    for epoch in range(args.epochs):
        order = torch.randperm(n)
        for i in range(n // bs):
            opt.param_groups[0]["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            x = train_x[order[i * bs:(i + 1) * bs]]
            y = analysis(x)
            y_hat = y + (torch.round(y) - y).detach()  # straight-through rounding
            mse = F.mse_loss(synthesis(y_hat) + 0.5, x)
            bpp = bits(y + torch.rand_like(y) - 0.5) / (bs * 784)
            loss = mse + args.lmbda * bpp
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        with torch.inference_mode():
            y = torch.round(analysis(test_x))
            bpp = float(bits(y)) / (len(test_x) * 784)
            x_hat = (synthesis(y) + 0.5).clamp(0, 1)
            quality_db = metrics.psnr(metrics.mse(x_hat, test_x))
        row = {"epoch": epoch + 1, "bpp_estimated": round(bpp, 4),
               "bpp_one_file": round(bpp + HEADER_BITS / 784, 4), "psnr": round(quality_db, 3),
               "seconds": round(time.perf_counter() - t0)}
        history.append(row)
        print(json.dumps(row), flush=True)
    write_result(f"pilots/codec_conv_pilot{args.tag}_l{args.lmbda:g}",
                 {"args": vars(args), "history": history})


if __name__ == "__main__":
    main()

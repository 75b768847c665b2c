"""Pilot: a defect segmenter trained on self-made anomalies, for textures.

The textures benchmark (bench/textures.py) misses its targets on grass and gravel: the default
heat map (the `local` part) does not see a region whose grey level or contrast moved within the
texture's own range. This pilot trains a small fully convolutional network on the normal
training patches only, to segment regions that a generic generator changes in them
(self-supervised, as in DRAEM): irregular regions from thresholded smooth noise, filled with a
photometric change of the patch itself (gain and offset), a blur, noise, a constant, or another
normal patch, blended over the original. None of the benchmark's own defect functions is used.

Scored on the benchmark's data and seed: pixel AUROC (the network's per-pixel probability,
defective and clean patches), image AUROC (the maximum of the map averaged over 5x5 pixels),
both per defect kind, and whether the pure-noise image scores above every clean patch.

    python -m bench.pilots.texture_synth --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from aekit.eval.metrics import auroc
from bench import textures as T

RESULT = Path("bench/results/pilots/texture_synth.json")


class Segmenter(nn.Module):
    """A two-level U-Net: (B, C, H, W) -> per-pixel logits (B, 1, H, W)."""

    def __init__(self, channels: int = 1, width: int = 16):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU(),
                                 nn.Conv2d(o, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU())

        w = width
        self.e1, self.e2, self.e3 = block(channels, w), block(w, 2 * w), block(2 * w, 4 * w)
        self.d2, self.d1 = block(6 * w, 2 * w), block(3 * w, w)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(F.avg_pool2d(a, 2))
        c = self.e3(F.avg_pool2d(b, 2))
        u = self.d2(torch.cat([F.interpolate(c, scale_factor=2.0), b], 1))
        u = self.d1(torch.cat([F.interpolate(u, scale_factor=2.0), a], 1))
        return self.head(u)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def region_masks(n: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    """Irregular soft regions (n, 1, h, w) in [0, 1]: smooth noise at a random scale (one per
    call), thresholded per image so that 2-30% of it is inside."""
    sigma = float(torch.empty(1).uniform_(1.0, 4.0, generator=g))
    f = _blur(torch.randn(n, 1, h, w, generator=g), sigma)
    flat = f.flatten(1).sort(1).values  # (n, h * w)
    area = torch.empty(n).uniform_(0.02, 0.30, generator=g)
    k = ((1 - area) * (h * w - 1)).long()
    thr = flat[torch.arange(n), k].view(n, 1, 1, 1)
    std = f.flatten(1).std(1).view(n, 1, 1, 1)
    return ((f - thr) / (std * 0.15 + 1e-6)).clamp(0, 1)


def synthesize(x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half of the batch gets one changed region each: (images, target masks (B, 1, H, W))."""
    b, c, h, w = x.shape
    alpha = region_masks(b, h, w, g)
    kind = torch.randint(0, 5, (b,), generator=g)
    u = lambda lo, hi: torch.empty(b, 1, 1, 1).uniform_(lo, hi, generator=g)  # noqa: E731
    sign = torch.where(torch.rand(b, 1, 1, 1, generator=g) < 0.5, -1.0, 1.0)
    mean = x.mean((2, 3), keepdim=True)
    photometric = ((x - mean) * u(0.3, 1.7) + mean + sign * u(0.05, 0.3)).clamp(0, 1)
    blurred = _blur(x, 1.5)
    noisy = torch.rand(x.shape, generator=g)
    const = u(0, 1).expand_as(x)
    other = x[torch.randperm(b, generator=g)].flip(-1)
    filler = torch.stack([photometric, blurred, noisy, const, other])  # (5, B, C, H, W)
    fill = filler[kind, torch.arange(b)]
    keep = u(0.0, 0.5)  # some of the original shows through, as in a stain
    changed = x * (1 - alpha) + (keep * x + (1 - keep) * fill) * alpha
    on = (torch.rand(b, 1, 1, 1, generator=g) < 0.5).float()
    target = ((alpha > 0.5).float() * ((changed - x).abs().amax(1, keepdim=True) > 0.02)) * on
    return x * (1 - on) + changed * on, target


def train(train_x: np.ndarray, steps: int, batch: int, seed: int) -> Segmenter:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = Segmenter(train_x.shape[1])
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps, pct_start=0.1)
    data = torch.from_numpy(train_x)
    for step in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=g)
        x = data[idx]
        k = int(torch.randint(0, 4, (1,), generator=g))
        x = torch.rot90(x, k, (2, 3))
        xs, m = synthesize(x, g)
        logits = net(xs)
        p = torch.sigmoid(logits)
        bce = F.binary_cross_entropy_with_logits(logits, m)
        focal = ((1 - torch.where(m > 0.5, p, 1 - p)) ** 2 * F.binary_cross_entropy_with_logits(
            logits, m, reduction="none")).mean()
        loss = bce + 5 * focal
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0:
            print(f"  step {step} loss {loss.item():.4f}", flush=True)
    return net.eval()


@torch.inference_mode()
def maps_of(net: Segmenter, x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x)
    out = torch.cat([torch.sigmoid(net(t[i:i + 256])) for i in range(0, len(t), 256)])
    return out[:, 0].numpy()


def run(name: str, steps: int, batch: int, seed: int) -> dict:
    img = T.texture(name)
    rng = np.random.default_rng(seed + T.TEXTURES.index(name))
    train_x = T.crops(img, (0, T.TRAIN_ROWS), T.N_TRAIN, T.PATCH, rng)
    test, masks, kinds = T.test_set(img, rng)
    t0 = time.perf_counter()
    net = train(train_x[:, None], steps, batch, seed)
    fit_s = time.perf_counter() - t0
    maps = maps_of(net, test[:, None])
    smooth = F.avg_pool2d(torch.from_numpy(maps)[:, None], 5, 1, 2)[:, 0].numpy()
    scores = smooth.reshape(len(test), -1).max(1)
    is_anom = kinds != "clean"
    local = kinds != "pure noise"
    clean = kinds == "clean"
    per = {}
    for d in T.DEFECTS:
        sel = clean | (kinds == d)
        per[d] = (round(100 * auroc(scores[sel], kinds[sel] != "clean"), 2),
                  round(100 * auroc(maps[sel].ravel(), masks[sel].ravel()), 2))
    return {"texture": name, "image_auroc": round(100 * auroc(scores, is_anom), 2),
            "pixel_auroc": round(100 * auroc(maps[local].ravel(), masks[local].ravel()), 2),
            "per_defect_image_pixel": per,
            "noise_above_every_clean": bool(scores[kinds == "pure noise"][0]
                                            > scores[clean].max()),
            "fit_seconds": round(fit_s, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--textures", nargs="+", default=list(T.TEXTURES))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.textures:
        row = run(name, args.steps, args.batch, args.seed)
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps({"steps": args.steps, "batch": args.batch, "seed": args.seed,
                                  "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Batched inference and quality measurement of a trained model on a uint8 image set."""

from __future__ import annotations

import torch
from torch import nn

from aekit.eval.metrics import mse, psnr, ssim_per_image
from aekit.train.loop import to_unit


@torch.inference_mode()
def reconstruct_all(
    model: nn.Module,
    x_uint8: torch.Tensor,
    batch_size: int = 1000,
    corrupt=None,
    seed: int = 0,
    keep: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (model input, reconstruction) as float CPU tensors (N, C, H, W) in [0, 1];
    `keep` decodes from the first `keep` latent units only (ordered/nested latents)."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed + 11)
    inputs, outputs = [], []
    for start in range(0, len(x_uint8), batch_size):
        x = to_unit(x_uint8[start : start + batch_size], device)
        x_in = corrupt(x, gen) if corrupt else x
        inputs.append(x_in.cpu())
        out = model(x_in) if keep is None else model(x_in, keep=keep)
        outputs.append(out["x_hat"].float().cpu())
    return torch.cat(inputs), torch.cat(outputs)


def measure(x_hat: torch.Tensor, x: torch.Tensor, chunk: int = 2000) -> dict[str, float]:
    """mse / psnr / ssim over a whole set, chunked so memory stays flat."""
    total_sq, total_n, ssim_sum = 0.0, 0, 0.0
    for s in range(0, len(x), chunk):
        a, b = x_hat[s : s + chunk], x[s : s + chunk]
        total_sq += mse(a, b) * b.numel()
        total_n += b.numel()
        ssim_sum += float(ssim_per_image(a, b).sum())
    m = total_sq / max(1, total_n)
    return {"mse": m, "psnr": psnr(m), "ssim": ssim_sum / max(1, len(x))}

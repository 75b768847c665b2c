"""Generation with a trained model: samples from a VAE's prior, latent interpolation between two
images, and latent traversals (one latent unit swept while the others stay fixed)."""

from __future__ import annotations

import torch
from torch import nn

from aekit.errors import ConfigError, RunError, check_range


def require_variational(model: nn.Module, run: str = "the run", what: str = "sample") -> None:
    """RunError unless `model` has a prior to sample from (a VAE)."""
    if not model.can_sample:
        name = model.cfg.name
        raise RunError(f"{run} holds a {name!r} model, which has no prior to {what} from; train "
                       "a variational one, e.g. aekit train --model vae --out RUN")


def sample_images(model: nn.Module, n: int, seed: int = 0, temperature: float = 1.0
                  ) -> torch.Tensor:
    """n images (n, C, H, W) decoded from z ~ N(0, temperature^2 I), reproducible by seed."""
    require_variational(model)
    check_range("-n", n, 1, 10_000)
    check_range("--temperature", temperature, 0.0, 10.0)
    model.eval()
    return model.sample(n, torch.Generator().manual_seed(seed), temperature)


def grid_rows(images: torch.Tensor, cols: int | None = None) -> list[torch.Tensor]:
    """(N, C, H, W) -> rows of `cols` images (a near-square grid when cols is None)."""
    n = len(images)
    cols = cols or max(1, round(n**0.5))
    return [images[i : i + cols] for i in range(0, n, cols)]


@torch.inference_mode()
def interpolate(model: nn.Module, a: torch.Tensor, b: torch.Tensor, steps: int = 10
                ) -> torch.Tensor:
    """Decode `steps` evenly spaced points on the line between the codes of images a and b
    (each (C, H, W)); the first and last frames are the two reconstructions: (steps, C, H, W)."""
    check_range("--steps", steps, 2, 1000)
    model.eval()
    device = next(model.parameters()).device
    z = model.encode(torch.stack([a, b]).to(device))  # (2, latent...)
    t = torch.linspace(0, 1, steps, device=device).view(-1, *([1] * (z.ndim - 1)))
    path = (1 - t) * z[0:1] + t * z[1:2]  # (steps, latent...)
    return torch.sigmoid(model.decode(path)).cpu()


@torch.inference_mode()
def kl_per_unit(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Mean KL(q(z_j|x) || N(0, 1)) per latent unit over images x: (latent_dim,). Units near 0
    are unused ("collapsed"); the largest are the ones worth traversing."""
    model.eval()
    device = next(model.parameters()).device
    total = None
    for s in range(0, len(x), batch_size):
        mu, logvar = model.posterior(x[s : s + batch_size].to(device))
        kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum(0)
        total = kl if total is None else total + kl
    return (total / len(x)).cpu()


@torch.inference_mode()
def traverse(model: nn.Module, dims: list[int], steps: int = 9, span: float = 3.0,
             base: torch.Tensor | None = None) -> list[torch.Tensor]:
    """One row per latent unit in `dims`: that unit swept over [-span, span] (prior standard
    deviations) with the others at `base`'s posterior mean (or 0, the prior mean)."""
    require_variational(model, what="traverse")
    check_range("--steps", steps, 2, 100)
    check_range("--span", span, 0.0, 100.0)
    latent = model.cfg.latent_dim
    bad = [d for d in dims if not 0 <= d < latent]
    if bad or not dims:
        raise ConfigError(f"--dims {bad or dims}: latent units are 0..{latent - 1}")
    model.eval()
    device = next(model.parameters()).device
    z0 = model.encode(base[None].to(device))[0] if base is not None else \
        torch.zeros(latent, device=device)
    values = torch.linspace(-span, span, steps, device=device)
    rows = []
    for d in dims:
        z = z0.repeat(steps, 1)  # (steps, latent)
        z[:, d] = values
        rows.append(torch.sigmoid(model.decode(z)).cpu())
    return rows

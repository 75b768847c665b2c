"""Reconstruction losses as small modules, so one training loop serves every model.

A loss is called as `loss(out, target) -> (scalar, logs)` where `out` is the model's forward dict
and `logs` holds floats worth printing (e.g. the rate of a codec). Every loss is a per-pixel mean,
so numbers are comparable across image sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError

LOSSES: dict[str, type[nn.Module]] = {}


def register_loss(name: str):
    def wrap(cls):
        LOSSES[name] = cls
        return cls

    return wrap


@register_loss("mse")
class MSELoss(nn.Module):
    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        loss = F.mse_loss(out["x_hat"], target)
        return loss, {}


@register_loss("l1")
class L1Loss(nn.Module):
    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return F.l1_loss(out["x_hat"], target), {}


@register_loss("bce")
class BCEWithLogitsLoss(nn.Module):
    """Sigmoid cross-entropy on the decoder's logits (seed 004's loss), stable for any logit."""

    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return F.binary_cross_entropy_with_logits(out["logits"], target), {}


@register_loss("logmse")
class LogMSELoss(nn.Module):
    """Mean over images of ln(per-image MSE + 1e-4), i.e. maximise each image's PSNR.

    With nested dropout the images of one batch are decoded from 1 to D latent units, so their
    errors differ by ~10x; plain MSE then spends most of its gradient on the tiny-k examples.
    The log gives every image the same weight in relative terms. Scaled by 0.01 so its gradient
    matches MSE's at an MSE of 0.01 (learning rates stay comparable)."""

    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        per_image = (out["x_hat"] - target).pow(2).flatten(1).mean(1)  # (B,)
        mse = per_image.mean()
        return 0.01 * torch.log(per_image + 1e-4).mean(), {"mse": float(mse.detach())}


@register_loss("rd")
class RateDistortionLoss(nn.Module):
    """D + lambda * R for learned compression: MSE plus bits per pixel of the latent."""

    def __init__(self, lmbda: float = 0.01) -> None:
        super().__init__()
        self.lmbda = lmbda

    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        b, _, h, w = target.shape
        bpp = -torch.log2(out["likelihoods"].clamp_min(1e-9)).sum() / (b * h * w)
        mse = F.mse_loss(out["x_hat"], target)
        return mse + self.lmbda * bpp, {"bpp": float(bpp.detach()), "mse": float(mse.detach())}


@register_loss("vae")
class ELBOLoss(nn.Module):
    """Negative ELBO per pixel: Bernoulli reconstruction (BCE) + beta * KL(q(z|x) || N(0, I))."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        n_pix = target[0].numel()
        rec = F.binary_cross_entropy_with_logits(out["logits"], target, reduction="sum")
        mu, logvar = out["mu"], out["logvar"]
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        # Rows of target can be a multiple of the codes' (nested_draws decodes each code again).
        rows, b = target.shape[0], mu.shape[0]
        loss = (rec / rows + self.beta * kl / b) / n_pix
        return loss, {"kl_nats": float(kl.detach()) / b, "rec_nats": float(rec.detach()) / rows}


def build_loss(name: str, model: nn.Module) -> nn.Module:
    """The loss `name` (or the model's default when empty), configured from the model's options."""
    name = name or model.default_loss
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**model.loss_options(name))

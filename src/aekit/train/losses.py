"""Reconstruction losses as small modules, so one training loop serves every model.

A loss is called as `loss(out, target) -> (scalar, logs)` where `out` is the model's forward dict
and `logs` holds floats worth printing (e.g. the rate of a codec). Every loss is a per-pixel mean,
so numbers are comparable across image sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError

LOSSES: dict[str, type[nn.Module]] = {}
LIKELIHOODS = ("bernoulli", "gaussian")
# Floor of the Gaussian likelihood's fitted variance (an RMS error of 0.001, ~60 dB): keeps its
# log finite when a model reproduces its batch exactly.
MIN_VARIANCE = 1e-6


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
    """Negative ELBO per pixel: reconstruction + beta * KL(q(z|x) || N(0, I)).

    The reconstruction term is the decoder's likelihood p(x|z): "bernoulli" is the sigmoid cross-
    entropy on the logits (the likelihood of binary images); "gaussian" is N(x; x_hat, s^2) with
    one variance s^2 shared by every pixel, set each step to its maximum-likelihood value, the
    batch's mean squared error (the calibrated decoder of Rybkin et al., 2021). Why gaussian
    for grey images: a Bernoulli likelihood on mid-grey intensities weighs a pixel's error as a
    Gaussian of variance 1/4 would, so on texture patches the KL cost of any code outweighs what
    it saves and the best ELBO is the mean image; a fitted variance weighs the error in
    proportion to how well the model already does, on every kind of image.
    """

    def __init__(self, beta: float = 1.0, likelihood: str = "bernoulli") -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ConfigError(f"vae loss: unknown likelihood {likelihood!r}; "
                              f"choose one of {', '.join(LIKELIHOODS)}")
        self.beta = beta
        self.likelihood = likelihood

    def forward(self, out: dict, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
        n_pix = target[0].numel()
        # Rows of target can be a multiple of the codes' (nested_draws decodes each code again).
        rows, b = target.shape[0], out["mu"].shape[0]
        if self.likelihood == "bernoulli":
            rec = F.binary_cross_entropy_with_logits(out["logits"], target, reduction="sum")
            rec = rec / rows
            logs = {}
        else:
            variance = (out["x_hat"] - target).pow(2).mean().clamp_min(MIN_VARIANCE)
            # With s^2 = the MSE the squared-error term is exactly 1/2 per pixel.
            rec = 0.5 * n_pix * (torch.log(2 * math.pi * variance) + 1)
            logs = {"sigma": float(variance.detach().sqrt())}
        mu, logvar = out["mu"], out["logvar"]
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / b
        loss = (rec + self.beta * kl) / n_pix
        return loss, {"kl_nats": float(kl.detach()), "rec_nats": float(rec.detach()), **logs}


def build_loss(name: str, model: nn.Module) -> nn.Module:
    """The loss `name` (or the model's default when empty), configured from the model's options."""
    name = name or model.default_loss
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**model.loss_options(name))

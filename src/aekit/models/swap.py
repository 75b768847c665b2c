"""`swap`: one encoder shared by two image domains, one decoder per domain — the architecture of
the original "DeepFake" face swap, used here for unpaired domain translation.

Each decoder learns to rebuild its own domain from the shared code; since the code must serve
both, it keeps what the domains have in common (layout, pose, shape) and leaves each domain's
look to its decoder. `swap(x, to="b")` encodes images of domain A and decodes them with B's
decoder: A's layout drawn in B's appearance.

The model trains in the one training loop as an ordinary autoencoder: a training item is an
A image and a B image stacked on the channel axis, (B, 2C, H, W) (`aekit.data.load_pair`), so
in_channels is 2C. `encode` runs the shared encoder on each half, z = (B, 2, *code) with
z[:, 0] A's code and z[:, 1] B's; `decode` gives decoder A the first code and decoder B the
second and stacks their logits on the channel axis again. The reconstruction loss over the 2C
channels is then the mean of both domains' losses, and `--corrupt` / `--augment` apply to both.

Encoder and decoders are the `conv` model's stacks (models/conv.py). Options: `SwapOptions` in
cards.py, conv's plus `confusion`, the weight of a domain-confusion term (an MMD between the
batch's A codes and B codes) that pulls the two domains' codes together, so that B's decoder is
fed codes like the ones it was trained on.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models.base import AutoencoderModule
from aekit.models.cards import ConvOptions
from aekit.models.conv import ConvAE
from aekit.registry import register_model

DOMAINS = ("a", "b")


@register_model("swap")
class SwapAE(AutoencoderModule):
    """Shared encoder, one decoder per domain (the face-swap design) for domain translation."""

    # The two domains, in the order their images are stacked on the channel axis.
    domains = DOMAINS

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        if cfg.in_channels % 2:
            raise ConfigError(
                f"swap: in_channels={cfg.in_channels} is odd; the model takes an image of each "
                "domain stacked on the channel axis (train it with --dataset A --dataset-b B)")
        # confusion 0.1: on sneaker <-> sandal it raised the swaps a classifier takes for the
        # other domain from 15% to 94% (10 epochs) for ~0.6-1.3 dB of reconstruction.
        self.confusion = self.options.confusion  # SwapOptions, checked (models/cards.py)
        self.channels = cfg.in_channels // 2  # C of one domain
        half = dataclasses.replace(
            cfg, name="conv", in_channels=self.channels,
            options={k: v for k, v in self.options.to_dict().items()
                     if k in ConvOptions.defaults()})
        ae_a, ae_b = ConvAE(half), ConvAE(half)  # B's encoder is dropped: A's is the shared one
        self.encoder = ae_a.encoder
        self.decoder_a = ae_a.decoder
        self.decoder_b = ae_b.decoder
        self.latent_shape = (2, *ae_a.latent_shape)
        self._bias_domain = "a"  # which decoder `output_bias` answers for

    # --- the AutoencoderModule contract ----------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2C, H, W) -> (B, 2, *code): both halves through the one shared encoder."""
        xa, xb = self.split_domains(x)
        z = self.encoder(torch.cat([xa, xb]))  # (2B, *code): one pass for both domains
        z = z.reshape(2, -1, *z.shape[1:]).transpose(0, 1)  # (B, 2, *code)
        if self.training and self.confusion > 0 and torch.is_grad_enabled():
            z = _Confusion.apply(z, self.confusion)
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 2, *code) -> logits (B, 2C, H, W): decoder A on z[:, 0], decoder B on z[:, 1]."""
        return torch.cat([self.decoder_a(z[:, 0]), self.decoder_b(z[:, 1])], dim=1)

    def _decoder_input(self, z: torch.Tensor, keep: int | None) -> torch.Tensor:
        # Nested dropout and --keep act on each domain's code, not on the stacked pair.
        return torch.stack([super(SwapAE, self)._decoder_input(z[:, i], keep)
                            for i in range(2)], dim=1)

    def output_bias(self) -> nn.Parameter | None:
        decoder = self.decoder_a if self._bias_domain == "a" else self.decoder_b
        convs = [m for m in decoder.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1].bias if convs else None

    @torch.no_grad()
    def init_output_bias(self, mean: torch.Tensor) -> bool:
        """Each decoder starts at its own domain's mean (the first C channels are A's)."""
        done = []
        for domain, part in zip(DOMAINS, mean.split(self.channels), strict=True):
            self._bias_domain = domain
            done.append(super().init_output_bias(part))
        self._bias_domain = "a"
        return all(done)

    @torch.inference_mode()
    def extra_metrics(self, test_x: torch.Tensor) -> dict:
        """Each domain's reconstruction on the test pairs (uint8 (N, 2C, H, W)):
        {"domains": {"a": {mse, psnr}, "b": {mse, psnr}}}, PSNR of the pooled MSE."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        sq, n = torch.zeros(2, dtype=torch.float64), 0
        for chunk in test_x.split(500):
            x = chunk.to(device).float() / 255
            err = (self(x)["x_hat"].float() - x).double().pow(2)  # (B, 2C, H, W)
            sq += torch.stack([e.sum() for e in self.split_domains(err)]).cpu()
            n += x[:, : self.channels].numel()
        self.train(was_training)
        out = {}
        for domain, total in zip(DOMAINS, sq.tolist(), strict=True):
            mse = total / max(1, n)
            psnr = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
            out[domain] = {"mse": mse, "psnr": psnr}
        return {"domains": out}

    # --- translation -----------------------------------------------------------------------------

    def split_domains(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2C, H, W) -> (A images, B images), each (N, C, H, W)."""
        if x.shape[1] != 2 * self.channels:
            raise ConfigError(f"swap: expected {2 * self.channels} channels (an A and a B image "
                              f"stacked), got {x.shape[1]}")
        return x[:, : self.channels], x[:, self.channels :]

    def domain_decoder(self, to: str) -> nn.Module:
        if to not in DOMAINS:
            raise ConfigError(f"--to {to!r}: this model has domains a and b")
        return self.decoder_a if to == "a" else self.decoder_b

    def swap(self, x: torch.Tensor, to: str) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1], encoded by the shared encoder and drawn by domain `to`'s
        decoder. Given images of the other domain this is the translation; given images of `to`
        itself it is their reconstruction."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ConfigError(f"swap: expected images (N, {self.channels}, H, W), got "
                              f"{tuple(x.shape)}")
        decoder = self.domain_decoder(to)
        with torch.inference_mode():
            return torch.sigmoid(decoder(self.encoder(x)))

    def swap_preview(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Picture rows for pairs x (N, 2C, H, W): A originals, A->B, B originals, B->A."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        xa, xb = (t.to(device) for t in self.split_domains(x))
        rows = [xa, self.swap(xa, "b"), xb, self.swap(xb, "a")]
        self.train(was_training)
        return [r.float().cpu() for r in rows]


def confusion_penalty(z: torch.Tensor) -> torch.Tensor:
    """How far apart A's and B's codes lie, z (B, 2, ...) -> scalar: the maximum mean
    discrepancy (Gretton et al., 2012) of the two batches of codes under three RBF kernels.
    Codes are divided by their pooled std first, so shrinking the code cannot zero it."""
    flat = z.flatten(2)  # (B, 2, D)
    flat = flat / flat.reshape(-1, flat.shape[-1]).std(0).clamp_min(1e-4)
    a, b = flat[:, 0], flat[:, 1]
    d = a.shape[1]
    total = a.new_zeros(())
    for scale in (0.5, 1.0, 2.0):  # RBF kernels, bandwidths relative to sqrt(2 * D)
        gamma = 1.0 / (2.0 * d * scale * scale)
        k = [torch.exp(-gamma * torch.cdist(p, q).pow(2)) for p, q in ((a, a), (b, b), (a, b))]
        total = total + k[0].mean() + k[1].mean() - 2 * k[2].mean()
    return total


class _Confusion(torch.autograd.Function):
    """Identity on z whose backward adds weight * d(confusion_penalty)/dz: the domain-confusion
    term is added to the training loss without the loss module knowing about it."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.weight = weight
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (z,) = ctx.saved_tensors
        if len(z) < 2:
            return grad, None
        with torch.enable_grad():
            zz = z.detach().float().requires_grad_(True)
            (extra,) = torch.autograd.grad(confusion_penalty(zz), zz)
        return grad + ctx.weight * extra.to(grad.dtype), None

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
fed codes like the ones it was trained on, and `domain_norm`, per-domain affine maps in the
shared encoder (`DomainAffine`): on the input ("input") and also after every encoder layer
("layers"). They give each domain a few parameters of its own in the encoder, so that the two
domains can reach one code distribution without bending the shared weights: a contrast-inverted
domain is turned back at the input, whose map starts from the data (`init_output_bias`).
Because of them the encoder needs to know which domain an image comes from: `swap(x, to,
source)`, with the other domain as the default source.
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
        # confusion 0.03 with domain_norm "input": on sneaker <-> sandal (10 epochs) the swaps a
        # classifier takes for the other domain go from 52% / 41% (no term) to 95% / 96% for
        # 0.3 / 0.6 dB of reconstruction; without the input maps 0.03 reaches only 82% / 86%.
        self.confusion = self.options.confusion  # SwapOptions, checked (models/cards.py)
        self.channels = cfg.in_channels // 2  # C of one domain
        half = dataclasses.replace(
            cfg, name="conv", in_channels=self.channels,
            options={**{k: v for k, v in self.options.to_dict().items()
                        if k in ConvOptions.defaults()}, "linear": False})  # stacks only
        ae_a, ae_b = ConvAE(half), ConvAE(half)  # B's encoder is dropped: A's is the shared one
        self.encoder = ae_a.encoder
        self.decoder_a = ae_a.decoder
        self.decoder_b = ae_b.decoder
        self.latent_shape = (2, *ae_a.latent_shape)
        self._bias_domain = "a"  # which decoder `output_bias` answers for
        norm = self.options.domain_norm
        self.domain_in = DomainAffine(self.channels) if norm != "none" else None
        # After every conv / linear of the encoder (before its activation), the code included.
        self.domain_layers = nn.ModuleList(
            DomainAffine(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
            for m in self.encoder if isinstance(m, nn.Conv2d | nn.Linear)
        ) if norm == "layers" else None
        # Runs saved before `domain_norm` existed have no such weights: they load as identity
        # maps, which is exactly the model they were.
        self.register_load_state_dict_pre_hook(_identity_for_missing_affines)

    # --- the AutoencoderModule contract ----------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2C, H, W) -> (B, 2, *code): both halves through the one shared encoder."""
        xa, xb = self.split_domains(x)
        z = self.encode_domain(torch.cat([xa, xb]), None)  # (2B, *code): one pass for both
        z = z.reshape(2, -1, *z.shape[1:]).transpose(0, 1)  # (B, 2, *code)
        if self.training and self.confusion > 0 and torch.is_grad_enabled():
            z = _Confusion.apply(z, self.confusion)
        return z

    def encode_domain(self, x: torch.Tensor, domain: int | None) -> torch.Tensor:
        """The shared encoder with domain `domain`'s affine maps (0 = A, 1 = B) on images
        (N, C, H, W); domain None: the first half of the batch is A's, the second B's."""
        if self.domain_in is None:
            return self.encoder(x)
        x = self.domain_in(x, domain)
        k = 0
        for layer in self.encoder:
            x = layer(x)
            if self.domain_layers is not None and isinstance(layer, nn.Conv2d | nn.Linear):
                x = self.domain_layers[k](x, domain)
                k += 1
        return x

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
        """Each decoder starts at its own domain's mean (the first C channels are A's), and B's
        input map starts as the affine map that turns B's mean image into A's (`match_means`)."""
        if self.domain_in is not None and mean.dim() == 3:
            scale, shift = match_means(*mean.split(self.channels))
            self.domain_in.scale[1].copy_(scale)
            self.domain_in.shift[1].copy_(shift)
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

    def swap(self, x: torch.Tensor, to: str, source: str | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] of domain `source` (default: the domain that is not
        `to`), encoded by the shared encoder with `source`'s input maps and drawn by domain
        `to`'s decoder. source != to is the translation; source == to the reconstruction."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ConfigError(f"swap: expected images (N, {self.channels}, H, W), got "
                              f"{tuple(x.shape)}")
        decoder = self.domain_decoder(to)
        if source is None:
            source = DOMAINS[1 - DOMAINS.index(to)]
        elif source not in DOMAINS:
            raise ConfigError(f"--from {source!r}: this model has domains a and b")
        with torch.inference_mode():
            return torch.sigmoid(decoder(self.encode_domain(x, DOMAINS.index(source))))

    def swap_preview(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Picture rows for pairs x (N, 2C, H, W): A originals, A->B, B originals, B->A."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        xa, xb = (t.to(device) for t in self.split_domains(x))
        rows = [xa, self.swap(xa, "b", "a"), xb, self.swap(xb, "a", "b")]
        self.train(was_training)
        return [r.float().cpu() for r in rows]


class DomainAffine(nn.Module):
    """A per-domain, per-channel scale and shift: x * scale[d] + shift[d] on (N, ch, ...).
    Starts as the identity for both domains."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(2, channels))
        self.shift = nn.Parameter(torch.zeros(2, channels))

    def forward(self, x: torch.Tensor, domain: int | None) -> torch.Tensor:
        """domain 0 or 1: the whole batch is that domain's; None: first half A, second half B."""
        ones = (1,) * (x.dim() - 2)
        if domain is not None:
            return x * self.scale[domain].view(1, -1, *ones) + self.shift[domain].view(1, -1, *ones)
        y = x.reshape(2, -1, *x.shape[1:])
        y = y * self.scale.view(2, 1, -1, *ones) + self.shift.view(2, 1, -1, *ones)
        return y.reshape(x.shape)


def match_means(mean_a: torch.Tensor, mean_b: torch.Tensor,
                flip_below: float = -0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, (scale, shift) of the affine map that takes B's mean image (C, H, W) onto A's:
    it matches the mean images' average and spread over the pixels, and its sign is the sign of
    their correlation, so that a contrast-inverted domain (correlation below `flip_below`) enters
    the encoder turned back. Weakly related means (|r| small) keep the sign +1: a sign drawn from
    noise would invert a domain for nothing."""
    a, b = mean_a.double().flatten(1), mean_b.double().flatten(1)  # (C, H*W)
    ca, cb = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    sa, sb = ca.pow(2).mean(1).sqrt(), cb.pow(2).mean(1).sqrt()
    r = (ca * cb).mean(1) / (sa * sb).clamp_min(1e-12)
    # A flat mean image (spread ~0) says nothing about the scale: keep 1 there.
    ratio = torch.where((sa > 1e-6) & (sb > 1e-6), sa / sb.clamp_min(1e-12), torch.ones_like(sa))
    scale = torch.where(r < flip_below, -1.0, 1.0) * ratio.clamp(0.25, 4.0)
    shift = a.mean(1) - scale * b.mean(1)
    return scale.float(), shift.float()


def _identity_for_missing_affines(module, state_dict, prefix, *args) -> None:
    for name, tensor in module.state_dict().items():
        if name.startswith(("domain_in.", "domain_layers.")) and prefix + name not in state_dict:
            state_dict[prefix + name] = (torch.ones_like(tensor) if name.endswith("scale")
                                         else torch.zeros_like(tensor))


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

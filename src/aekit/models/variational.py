"""`vae`: a variational autoencoder (Kingma & Welling, 2014) with a dense or conv backbone.

The encoder outputs the mean and log-variance of a diagonal Gaussian q(z|x); training decodes a
reparameterised sample z = mu + sigma * eps and minimises the negative ELBO (loss "vae": Bernoulli
BCE on the logits + beta * KL to N(0, I)); evaluation decodes mu. The prior N(0, I) is what makes
the model generative: `sample` decodes z ~ N(0, I).

Options: `VAEOptions` in cards.py (backbone, beta, the conv backbone's activation and depth,
the NLL bound's iwae_k and iwae_images); nested dropout applies to the sampled z.

`log_likelihood_bounds` gives a test ELBO and the importance-weighted bound of Burda et al. (2016)
on binarized images, in nats per image; `extra_metrics` puts both into a run's metrics.json.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import ConfigError, check_range
from aekit.models.base import AutoencoderModule
from aekit.models.cards import VAEOptions
from aekit.models.deep import mlp
from aekit.models.layers import Flatten, Unflatten
from aekit.registry import register_model

DENSE_WIDTHS = (512, 256)
LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite early in training
# Test images are binarized by sampling each pixel ~ Bernoulli(intensity) once, from this seed,
# so every run is scored on the same binary images (already binary data stays unchanged).
BINARIZE_SEED = 0


@register_model("vae")
class VAE(AutoencoderModule):
    """Variational autoencoder: dense or conv backbone (option backbone), beta-VAE via beta."""

    default_loss = "vae"
    can_sample = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        opts = self.options  # VAEOptions, checked (models/cards.py)
        backbone = opts.backbone
        self.iwae_k, self.iwae_images = opts.iwae_k, opts.iwae_images
        # Resolved configs spell out every default, so only a non-default value is a mistake
        # for the dense backbone, and only a non-default value reaches the conv backbone (which
        # is why the default activation "gelu" runs conv's relu: kept so runs rebuild exactly).
        defaults = VAEOptions()
        conv_opts = {k: getattr(opts, k) for k in ("activation", "depth")
                     if getattr(opts, k) != getattr(defaults, k)}
        if backbone == "dense" and conv_opts:
            raise ConfigError(f"vae: options {sorted(conv_opts)} apply to backbone=conv only")
        self.backbone = backbone
        self.latent_shape: tuple[int, ...] = (cfg.latent_dim,)
        if backbone == "dense":
            d = math.prod(cfg.shape)
            widths = list(cfg.widths or DENSE_WIDTHS)
            self.encoder = nn.Sequential(Flatten(), *mlp([d, *widths], True),
                                         nn.Linear(widths[-1], 2 * cfg.latent_dim))
            self.decoder = nn.Sequential(*mlp([cfg.latent_dim, *widths[::-1], d], False),
                                         Unflatten(cfg.shape))
        else:
            from aekit.models.conv import ConvAE

            # The conv model's encoder with a code twice as wide (mu, logvar), and its decoder (the
            # stacks only: a VAE's code is a posterior, not a place for a PCA start).
            def conv(latent: int) -> ConvAE:
                return ConvAE(ModelConfig(cfg.name, cfg.in_channels, cfg.height, cfg.width,
                                          latent, cfg.widths, {**conv_opts, "linear": False}))

            self.encoder = conv(2 * cfg.latent_dim).encoder
            self.decoder = conv(cfg.latent_dim).decoder

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: a deterministic embedding."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, keep: int | None = None) -> dict[str, torch.Tensor]:
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        logits = self.decode(self._decoder_input(z, keep))
        return {"x_hat": torch.sigmoid(logits), "logits": logits, "z": z, "mu": mu,
                "logvar": logvar}

    @torch.inference_mode()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n new images (n, C, H, W) in [0, 1]: decode z ~ N(0, temperature^2 I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.cfg.latent_dim, generator=generator) * temperature
        return torch.sigmoid(self.decode(z.to(device))).cpu()

    def loss_options(self, loss: str) -> dict:
        return {"beta": self.options.beta} if loss == "vae" else {}

    def extra_metrics(self, test_x: torch.Tensor) -> dict:
        """{"vae": test ELBO and IWAE NLL bound (nats/image) on the binarized test images}; the
        first `iwae_images` images only (the bound costs k decodes per image)."""
        x = test_x[: self.iwae_images] if self.iwae_images else test_x
        return {"vae": log_likelihood_bounds(self, x, k=self.iwae_k)}


def binarize(x_uint8: torch.Tensor, seed: int = BINARIZE_SEED) -> torch.Tensor:
    """Fixed-seed stochastic binarization: each pixel is 1 with probability intensity/255, as a
    float tensor of 0/1; images that are already 0/255 come back unchanged."""
    gen = torch.Generator().manual_seed(seed)
    p = x_uint8.float() / 255.0
    return torch.bernoulli(p, generator=gen)


def log_weights(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """log p(x, z_i) - log q(z_i | x) for k samples z_i ~ q(z|x) per image: (k, B), in nats.

    x is a binary (B, C, H, W) batch; log p(x|z) is the Bernoulli likelihood of the logits.
    """
    mu, logvar = model.posterior(x)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((k, *mu.shape), generator=generator).to(mu.device)  # (k, B, L)
    z = mu + std * eps
    log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_prior = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    logits = model.decode(z.flatten(0, 1))  # (k*B, C, H, W)
    target = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
    log_px = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return log_px.flatten(1).sum(1).view(k, -1) + log_prior - log_q


@torch.inference_mode()
def log_likelihood_bounds(model: VAE, x_uint8: torch.Tensor, k: int = 100, seed: int = 0,
                          max_decodes: int = 20_000) -> dict:
    """Test ELBO and the IWAE bound -log (1/k) sum_i w_i >= -log p(x) on binarized images.

    Both use the same k samples per image: the ELBO is the mean of log w_i, so by Jensen the
    IWAE NLL bound is never above the ELBO's NLL. Batches hold at most `max_decodes` decodes.
    """
    check_range("k", k, 1, 100_000)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed + 1)
    x_bin = binarize(x_uint8)
    batch = max(1, max_decodes // k)
    elbo_sum, iwae_sum = 0.0, 0.0
    for start in range(0, len(x_bin), batch):
        lw = log_weights(model, x_bin[start : start + batch].to(device), k, gen).double()
        elbo_sum += float(lw.mean(0).sum())
        iwae_sum += float((torch.logsumexp(lw, 0) - math.log(k)).sum())
    model.train(was_training)
    n = len(x_bin)
    pixels = math.prod(x_bin.shape[1:])
    nll = -iwae_sum / n
    return {"binarization": f"bernoulli(intensity), fixed seed {BINARIZE_SEED}",
            "images": n, "k": k, "test_elbo_nats": elbo_sum / n,
            "test_nll_iwae_nats": nll, "test_nll_bits_per_pixel": nll / pixels / math.log(2)}

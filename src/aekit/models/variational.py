"""`vae`: a variational autoencoder (Kingma & Welling, 2014) with a dense or conv backbone.

The encoder outputs the mean and log-variance of a diagonal Gaussian q(z|x); training decodes a
reparameterised sample z = mu + sigma * eps and minimises the negative ELBO (loss "vae": the
decoder's likelihood + beta * KL to N(0, I)); evaluation decodes mu. The prior N(0, I) is what
makes the model generative: `sample` decodes z ~ N(0, I).

Likelihood (option `likelihood`): Bernoulli for binary images, otherwise a Gaussian whose one
shared variance is fitted to the error (train/losses.py says why); "auto" picks by looking at
the training images (`options_from_data`), and the run's config records the choice.

Start (option `pca_start`): like `conv`, linear paths beside the stacks, mu += A x and
logits += B z, with A the whitened PCA basis of the training images (each code has unit variance
on them, as the prior asks), B the least-squares map from those codes to the logits, the
posterior's log-variance at what a linear-Gaussian model with PCA's residual error would give,
and the last layer of each stack at zero. The untrained VAE decodes its posterior mean as PCA
behind the sigmoid. Why: started at random, the KL term closes the posterior before the decoder
has learnt to use it (the VAE on texture patches ended at the mean image, on 8x8 digits 2.8 dB
above it); started at PCA, the code is worth its KL cost from the first step.

Options: `VAEOptions` in cards.py (backbone, beta, likelihood, pca_start, the conv backbone's
activation and depth, the NLL bound's iwae_k and iwae_images); nested dropout applies to the
sampled z.

`log_likelihood_bounds` gives a test ELBO and the importance-weighted bound of Burda et al. (2016)
in nats per image (binarized images for a Bernoulli VAE); `extra_metrics` puts both into a run's
metrics.json.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig
from aekit.data.stream import sample_images
from aekit.data.units import to_unit
from aekit.errors import ConfigError, check_range
from aekit.models.base import AutoencoderModule
from aekit.models.cards import VAEOptions
from aekit.models.deep import mlp
from aekit.models.layers import Flatten, Unflatten
from aekit.models.pca_start import (
    last_layer,
    pca_start,
    start_linear_paths,
    zero_last_layers,
)
from aekit.registry import register_model
from aekit.train.losses import MIN_VARIANCE

DENSE_WIDTHS = (512, 256)
LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite early in training
# Test images are binarized by sampling each pixel ~ Bernoulli(intensity) once, from this seed,
# so every run is scored on the same binary images (already binary data stays unchanged).
BINARIZE_SEED = 0
# likelihood=auto looks at (evenly spaced) training images, at most this many and this many
# pixel values: Bernoulli when every value is black or white.
AUTO_IMAGES, AUTO_VALUES = 4096, 1 << 24


@register_model("vae")
class VAE(AutoencoderModule):
    """Variational autoencoder: dense or conv backbone (option backbone), beta-VAE via beta."""

    default_loss = "vae"
    can_sample = True
    closed_form_start = True  # the PCA start (pca_start.py)

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
            # stacks only: the VAE has its own linear paths, below, whose start is whitened).
            def conv(latent: int) -> ConvAE:
                return ConvAE(ModelConfig(cfg.name, cfg.in_channels, cfg.height, cfg.width,
                                          latent, cfg.widths, {**conv_opts, "linear": False}))

            self.encoder = conv(2 * cfg.latent_dim).encoder
            self.decoder = conv(cfg.latent_dim).decoder
        # "auto" is decided from the data before a run builds its model; a model built directly
        # from a config that still says "auto" uses the general choice.
        self.likelihood = "bernoulli" if opts.likelihood == "bernoulli" else "gaussian"
        # The linear paths beside the stacks; `init_from_data` starts them at PCA.
        self.lin_enc: nn.Linear | None = None
        self.lin_dec: nn.Linear | None = None
        if opts.pca_start:
            d = math.prod(cfg.shape)
            self.lin_enc = nn.Linear(d, cfg.latent_dim)
            self.lin_dec = nn.Linear(cfg.latent_dim, d)

    @classmethod
    def options_from_data(cls, cfg: ModelConfig, x) -> dict:
        """likelihood=auto becomes bernoulli when the sampled training images are binary (every
        value black or white: 0 or 255 in uint8, 0 or 1 in float), else gaussian."""
        options = cfg.options
        if options.get("likelihood") != "auto":
            return options
        xs = to_unit(sample_images(x, AUTO_IMAGES, AUTO_VALUES))
        binary = len(xs) > 0 and bool(((xs == 0) | (xs == 1)).all())
        return {**options, "likelihood": "bernoulli" if binary else "gaussian"}

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        if self.lin_enc is not None:
            mu = mu + self.lin_enc(x.flatten(1))  # (B, C*H*W) -> (B, latent_dim)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: a deterministic embedding."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(z)
        if self.lin_dec is not None:
            logits = logits + self.lin_dec(z).view(-1, *self.cfg.shape)  # (B, C, H, W)
        return logits

    @torch.no_grad()
    def init_from_data(self, x, seed: int = 0) -> str | None:
        """Start the linear paths at whitened PCA of (a sample of) the training images and the
        last layer of each stack at zero (module docstring); the encoder's last bias holds the
        start's posterior log-variance. The global random state is left untouched."""
        if self.lin_enc is None or self.lin_dec is None:
            return None
        start = pca_start(x, self.cfg.latent_dim, seed)
        if start is None:
            return None
        r = start.rank
        spread = start.codes.std(0).clamp_min(1e-6)  # (r,): each PCA code's std on the sample
        start_linear_paths(self.lin_enc, self.lin_dec, start, spread)  # whitened codes
        zero_last_layers(self.encoder, self.decoder)
        # Posterior of a linear-Gaussian model x = W z + noise with W's columns the basis
        # scaled by the codes' spread and the noise PCA's residual error per pixel:
        # var_k = 1 / (1 + spread_k^2 / residual). Units beyond PCA's rank stay at the prior.
        recon = start.codes @ start.basis + start.mean  # (N, D)
        residual = float((recon - start.pixels).pow(2).mean().clamp_min(MIN_VARIANCE))
        latent = self.cfg.latent_dim
        last_layer(self.encoder).bias[latent : latent + r] = -torch.log1p(spread.pow(2) / residual)
        self.output_init_pending = False  # the mean is in lin_dec's bias already
        return f"{start.describe('linear paths')}; {self.likelihood} likelihood"

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
        return {"beta": self.options.beta, "likelihood": self.likelihood} if loss == "vae" else {}

    def extra_metrics(self, test_x: torch.Tensor) -> dict:
        """{"vae": test ELBO and IWAE NLL bound (nats/image) on the test images, binarized for a
        Bernoulli VAE}; the first `iwae_images` images only (the bound costs k decodes each)."""
        x = test_x[: self.iwae_images] if self.iwae_images else test_x
        return {"vae": log_likelihood_bounds(self, x, k=self.iwae_k)}


def binarize(x_uint8: torch.Tensor, seed: int = BINARIZE_SEED) -> torch.Tensor:
    """Fixed-seed stochastic binarization: each pixel is 1 with probability intensity/255, as a
    float tensor of 0/1; images that are already 0/255 come back unchanged."""
    gen = torch.Generator().manual_seed(seed)
    p = x_uint8.float() / 255.0
    return torch.bernoulli(p, generator=gen)


def log_weights(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator,
                variance: float | None = None) -> torch.Tensor:
    """log p(x, z_i) - log q(z_i | x) for k samples z_i ~ q(z|x) per image: (k, B), in nats.

    x is a (B, C, H, W) batch in [0, 1]; log p(x|z) is the Bernoulli likelihood of the logits
    (x binary) or, given `variance`, the Gaussian N(x; sigmoid(logits), variance) per pixel.
    """
    mu, logvar = model.posterior(x)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((k, *mu.shape), generator=generator).to(mu.device)  # (k, B, L)
    z = mu + std * eps
    log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_prior = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
    logits = model.decode(z.flatten(0, 1))  # (k*B, C, H, W)
    target = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
    if variance is None:
        log_px = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    else:
        log_px = -0.5 * ((torch.sigmoid(logits) - target).pow(2) / variance
                         + math.log(2 * math.pi * variance))
    return log_px.flatten(1).sum(1).view(k, -1) + log_prior - log_q


@torch.inference_mode()
def log_likelihood_bounds(model: VAE, x_uint8: torch.Tensor, k: int = 100, seed: int = 0,
                          max_decodes: int = 20_000) -> dict:
    """Test ELBO and the IWAE bound -log (1/k) sum_i w_i >= -log p(x), nats per image.

    A Bernoulli VAE is scored on the binarized images. A Gaussian VAE is scored on the images in
    [0, 1] as a density, with the shared variance fitted as in training: the mean squared error
    of decoding the posterior mean over these images. Both bounds use the same k samples per
    image: the ELBO is the mean of log w_i, so by Jensen the IWAE NLL bound is never above the
    ELBO's NLL. Batches hold at most `max_decodes` decodes.
    """
    check_range("k", k, 1, 100_000)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed + 1)
    batch = max(1, max_decodes // k)
    variance = None
    if model.likelihood == "bernoulli":
        x = binarize(x_uint8)
        scored = {"likelihood": "bernoulli",
                  "binarization": f"bernoulli(intensity), fixed seed {BINARIZE_SEED}"}
    else:
        x = x_uint8.float() / 255
        sq = sum(float((model(x[i : i + batch].to(device))["x_hat"].float()
                        - x[i : i + batch].to(device)).pow(2).sum())
                 for i in range(0, len(x), batch))
        variance = max(sq / max(1, x.numel()), MIN_VARIANCE)
        scored = {"likelihood": "gaussian", "variance": variance}
    elbo_sum, iwae_sum = 0.0, 0.0
    for start in range(0, len(x), batch):
        lw = log_weights(model, x[start : start + batch].to(device), k, gen, variance).double()
        elbo_sum += float(lw.mean(0).sum())
        iwae_sum += float((torch.logsumexp(lw, 0) - math.log(k)).sum())
    model.train(was_training)
    n = len(x)
    pixels = math.prod(x.shape[1:])
    nll = -iwae_sum / n
    return {**scored, "images": n, "k": k, "test_elbo_nats": elbo_sum / n,
            "test_nll_iwae_nats": nll, "test_nll_bits_per_pixel": nll / pixels / math.log(2)}

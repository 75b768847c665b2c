"""The contract every aekit model follows, so one training loop and every task serve them all.

Images are float tensors (B, C, H, W) in [0, 1]. `decode` returns *logits*; `forward` applies the
sigmoid, so `bce` can use the numerically stable logits form and `mse`/`l1` use the probabilities.
(A model ending in nn.Sigmoid is exactly this split: decode = everything before the sigmoid.)
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models.cards import NestedOptions
from aekit.options import ModelOptions
from aekit.registry import ModelCard

# Layers `output_bias` looks for at the end of a decoder.
OUTPUT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
# The mean is clipped to [this, 1 - this] before the logit (|logit| <= 4.6): an always-black
# pixel or channel must not start the sigmoid saturated.
OUTPUT_MEAN_MIN = 0.01


class AutoencoderModule(nn.Module, metaclass=abc.ABCMeta):
    """The model contract. Required: `encode`, `decode`. Everything else a task may use is
    declared here with a neutral default, so callers never probe with hasattr:

    capability flags  `can_sample` (a prior to sample from: VAEs), `entropy_coded` (codes images
                      to bits: the codec), `domains` (two-domain translation models),
                      `closed_form_start` (`init_from_data` is a closed-form fit that writes
                      every weight of its start: it may run again on a model still at its start)
    fixed recipe      `fixed_shape`, `fixed_latent_dim`, `seed_epochs`, `seed_batch_size`,
                      `seed_lr` (the seed presets' exact architecture and training recipe)
    hooks             `options_from_data` (option values chosen from the training images
                      before the model is built), `init_from_data` (a data-dependent start
                      before training), `finalize`
                      (after training), `extra_metrics` (model-specific test metrics),
                      `loss_options` (the arguments of the model's losses), `sample`
    saved state       `sized_by_weights` (tensors whose shape the saved weights set, absent in
                      weights saved before they existed: the codec's deblocking filter)
    """

    # Set from the model's card (aekit.models.cards) by @register_model: one source for each.
    registry_name: str = ""
    card: ModelCard | None = None
    options_type: type[ModelOptions] = ModelOptions  # the model's own typed options
    default_loss: str = "mse"
    fixed_shape: tuple[int, int, int] | None = None  # the seeds' exact 28x28 stacks
    fixed_latent_dim: int | None = None
    seed_epochs: int | None = None
    seed_batch_size: int | None = None
    seed_lr: float | None = None
    can_sample: bool = False
    entropy_coded: bool = False
    domains: tuple[str, ...] = ()
    # When validation keeps such a model at its start (best epoch 0), the training loop fits the
    # start again on the training and validation images together, as a closed-form estimator
    # chosen on held-out images is then fitted on all of them (aekit.train.loop).
    closed_form_start: bool = False
    sized_by_weights: tuple[str, ...] = ()

    # Options every model accepts because the base class implements them.
    common_options = tuple(NestedOptions.defaults())

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # The code's shape per image; models whose code is not a flat vector override it.
        self.latent_shape: tuple[int, ...] = (cfg.latent_dim,)
        # Every option is checked once, here: a bad value fails at build time, not mid-run.
        name = self.registry_name or type(self).__name__
        common = NestedOptions.parse(
            {k: v for k, v in cfg.options.items() if k in self.common_options}, name)
        self.options = self.options_type.parse(self.own_options(), name)
        # (p, draws) of nested dropout, or None without it.
        self.nested = (common.nested_p, common.nested_draws) if common.nested else None
        # True until the output bias has been started from data (`init_output_bias`) or weights
        # were loaded: the training loop starts only a freshly built model from the data.
        self.output_init_pending = True

    def own_options(self) -> dict:
        """cfg.options minus the ones the base class handles (for a model's own validation)."""
        return {k: v for k, v in self.cfg.options.items() if k not in self.common_options}

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> latent z (shape is model-specific)."""

    @abc.abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent z -> logits (B, C, H, W); the image is sigmoid(logits)."""

    def forward(self, x: torch.Tensor, keep: int | None = None) -> dict[str, torch.Tensor]:
        """Encode and decode; `keep` decodes from the first `keep` latent units only (the rest
        zeroed), which is meaningful for models trained with nested dropout (options.nested)."""
        z = self.encode(x)
        logits = self.decode(self._decoder_input(z, keep))
        return {"x_hat": torch.sigmoid(logits), "logits": logits, "z": z}

    def _decoder_input(self, z: torch.Tensor, keep: int | None) -> torch.Tensor:
        """z truncated to `keep` units, or nested-dropped while training a nested model."""
        if keep is not None:
            return truncate_latent(z, keep)
        if self.training and self.nested is not None:
            return nested_dropout(z, *self.nested)
        return z

    def output_bias(self) -> nn.Parameter | None:
        """The bias of the layer that produces the logits, or None where there is none to start
        from data. Default: the last Conv/Linear layer of `self.decoder`, if it has a bias; a
        model whose logits are not that layer's output plus its bias overrides this."""
        decoder = getattr(self, "decoder", None)
        if not isinstance(decoder, nn.Module):
            return None
        layers = [m for m in decoder.modules() if isinstance(m, OUTPUT_LAYERS)]
        return layers[-1].bias if layers and layers[-1].bias is not None else None

    @torch.no_grad()
    def init_output_bias(self, mean_image: torch.Tensor) -> bool:
        """Data-dependent start: the output bias becomes the logit of the training images' mean,
        so the untrained model outputs the data's mean instead of sigmoid(0) = 0.5 grey. A bias
        with one value per output pixel (a dense decoder's last Linear) gets the mean image; a
        bias per channel (a conv) gets each channel's mean pixel. `mean_image` is (C, H, W) in
        [0, 1]. Returns whether a bias was set (False for models without a plain output bias).

        Why: on sparse images (MNIST, strokes: most pixels black) a grey start makes the first
        gradients one coherent "darken everything" push; Adam moves every decoder weight the same
        way at once, the logits overshoot the mean into sigmoid saturation (-180 within 20 steps),
        the MSE gradient vanishes and the model is stuck at an all-black output. Started at the
        mean, the constant part of the gradient is ~0 from the first step."""
        self.output_init_pending = False
        bias = self.output_bias()
        if bias is None or mean_image.dim() != 3:
            return False
        c = mean_image.shape[0]
        if bias.numel() == mean_image.numel():
            target = mean_image.detach().double().reshape(-1)  # (C*H*W,), Unflatten's layout
        elif bias.numel() % c == 0:
            # (C,) for a conv, (C*s*s,) before a pixel shuffle: channel-major blocks.
            per_channel = mean_image.detach().double().mean(dim=(1, 2))
            target = per_channel.repeat_interleave(bias.numel() // c)
        else:
            return False
        p = target.clamp(OUTPUT_MEAN_MIN, 1 - OUTPUT_MEAN_MIN)
        bias.copy_(torch.log(p / (1 - p)).reshape(bias.shape).to(bias))
        return True

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.output_init_pending = False  # loaded weights are never restarted from data
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # --- optional hooks: neutral defaults ---------------------------------------------------------

    @classmethod
    def options_from_data(cls, cfg: ModelConfig, x) -> dict:
        """`cfg.options` (every option spelled out) with any value that depends on the data (an
        option left at "auto") decided from the training images (uint8 (N, C, H, W), float in
        [0, 1], or streamed), before the model is built, so the run's config records the value
        in use. Default: unchanged."""
        return cfg.options

    def init_from_data(self, x: torch.Tensor, seed: int = 0) -> str | None:
        """A data-dependent start of a freshly built model from its training images (uint8
        (N, C, H, W)), run before the first step and never on resume. Returns a line saying
        what it did, or None when the model has no such start."""
        return None

    def finalize(self, x: Any = None) -> str | None:
        """Called once after training, with the training images x (uint8 (N, C, H, W) or
        streamed; None outside the training loop): e.g. the codec freezes its entropy tables
        and fits its deblocking filter on x. Returns a line saying what it did, or None."""
        return None

    def extra_metrics(self, test_x: torch.Tensor) -> dict:
        """Model-specific test metrics added to metrics.json (e.g. a VAE's likelihood bounds)."""
        return {}

    def loss_options(self, loss: str) -> dict:
        """Keyword arguments of the loss named `loss` from the model's settings (e.g. a VAE's
        beta for "vae"); the losses never read model options themselves."""
        return {}

    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n new images from the prior; only models with `can_sample`."""
        raise ConfigError(f"model {self.registry_name or type(self).__name__!r} has no prior to "
                          "sample from; train a variational model (e.g. --model vae)")

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)["x_hat"]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())



class EncoderDecoderModule(AutoencoderModule):
    """An autoencoder whose whole encoder and decoder are two submodules, `encoder` and
    `decoder` (no linear path or skip connections beside them)."""

    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


def truncate_latent(z: torch.Tensor, keep: int) -> torch.Tensor:
    """Zero every latent unit after the first `keep` (units counted over the flattened code)."""
    flat = z.flatten(1)  # (B, D)
    mask = torch.arange(flat.shape[1], device=z.device) < keep
    return (flat * mask).view_as(z)


def nested_dropout(z: torch.Tensor, p: float = 0.1, draws: int = 1) -> torch.Tensor:
    """Nested dropout (Rippel et al., 2014): per example keep the first k units with
    k ~ 1 + Geometric(p), so earlier units must carry the most information, like PCA's leading
    components. k is capped at the code size (so some examples keep everything).

    draws > 1 decodes each example `draws` times with independent k (rows repeat the batch
    `draws` times, (draws*B, ...)); the training loop tiles the target to match. More prefixes per
    step means each prefix is trained more often for the same number of epochs."""
    flat = z.flatten(1)  # (B, D)
    if draws > 1:
        flat = flat.repeat(draws, 1)  # (draws*B, D): copy j of example i is row j*B + i
    b, d = flat.shape
    k = 1 + torch.distributions.Geometric(probs=torch.full((b, 1), p)).sample().to(z.device)
    mask = torch.arange(d, device=z.device).unsqueeze(0) < k  # (draws*B, D)
    return (flat * mask).view(b, *z.shape[1:])

"""The contract every aekit model follows, so one training loop and every task serve them all.

Images are float tensors (B, C, H, W) in [0, 1]. `decode` returns *logits*; `forward` applies the
sigmoid, so `bce` can use the numerically stable logits form and `mse`/`l1` use the probabilities.
(A model ending in nn.Sigmoid is exactly this split: decode = everything before the sigmoid.)
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import check_range


class AutoencoderModule(nn.Module, metaclass=abc.ABCMeta):
    registry_name: str = ""
    default_loss: str = "mse"
    # Models whose spatial layout is fixed (e.g. the seeds' exact 28x28 stacks) override this.
    fixed_shape: tuple[int, int, int] | None = None

    # Options every model accepts because the base class implements them.
    common_options = ("nested", "nested_p", "nested_draws")
    # A model's own options and their defaults; `resolve_options` writes them into a new run's
    # config so that a later change of a default never changes how an old run rebuilds.
    default_options: dict = {}

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # (p, draws) of nested dropout, validated once: a bad value fails here, not mid-run.
        self.nested = nested_settings(cfg.options) if cfg.options.get("nested") else None

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

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)["x_hat"]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def truncate_latent(z: torch.Tensor, keep: int) -> torch.Tensor:
    """Zero every latent unit after the first `keep` (units counted over the flattened code)."""
    flat = z.flatten(1)  # (B, D)
    mask = torch.arange(flat.shape[1], device=z.device) < keep
    return (flat * mask).view_as(z)


def nested_settings(options: dict) -> tuple[float, int]:
    """(p, draws) of nested dropout from model options, validated."""
    p, draws = float(options.get("nested_p", 0.1)), int(options.get("nested_draws", 1))
    check_range("nested_p", p, 1e-4, 1.0)
    check_range("nested_draws", draws, 1, 64)
    return p, draws


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

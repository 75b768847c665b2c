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


class Autoencoder(nn.Module, metaclass=abc.ABCMeta):
    registry_name: str = ""
    default_loss: str = "mse"
    # Models whose spatial layout is fixed (e.g. the seeds' exact 28x28 stacks) override this.
    fixed_shape: tuple[int, int, int] | None = None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> latent z (shape is model-specific)."""

    @abc.abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent z -> logits (B, C, H, W); the image is sigmoid(logits)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        logits = self.decode(z)
        return {"x_hat": torch.sigmoid(logits), "logits": logits, "z": z}

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)["x_hat"]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

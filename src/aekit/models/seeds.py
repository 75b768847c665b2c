"""The seed tutorials' architectures, layer for layer (shared/seeds/001..004), for 28x28x1 images.

Each preset's final sigmoid is the base class's: `decode` returns the pre-sigmoid logits.
Keras/TF `padding='same'` for a 3x3 stride-1 conv is `padding=1`; a 'same' 2x2 max-pool turns
7 into ceil(7/2) = 4, which is torch's `ceil_mode=True`. The class attributes record each
seed's training recipe (`seed_batch_size` is None where the text does not state it).
"""

from __future__ import annotations

from torch import nn

from aekit.config import ModelConfig
from aekit.models.base import EncoderDecoderModule
from aekit.models.cards import SEED_SHAPE
from aekit.models.deep import mlp
from aekit.models.layers import Flatten, Resize, Unflatten
from aekit.registry import register_model


class SeedPreset(EncoderDecoderModule):
    """A fixed architecture: fixed input shape and latent size, an encoder and a decoder."""

    seed_source: str = ""  # which seed text it reproduces
    seed_epochs: int = 0
    seed_batch_size: int | None = None
    seed_lr: float = 1e-3  # Adam's default in Keras, TF1 and PyTorch; all seeds use Adam
    seed_noise: float = 0.0  # std of the Gaussian input noise the seed trains with (denoising)


def conv3(c_in: int, c_out: int, same: bool = True) -> nn.Conv2d:
    """A 3x3 stride-1 conv; Keras 'same' padding is 1 pixel, 'valid' is none."""
    return nn.Conv2d(c_in, c_out, 3, padding=1 if same else 0)


@register_model("seed-dense")
class SeedDense(SeedPreset):
    """Seed 001, vanilla: 784 -> 32 (ReLU) -> 784 (sigmoid); Adam, MSE, 50 epochs."""

    seed_source = "001 vanilla autoencoder"
    seed_epochs = 50

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.latent_shape = (32,)
        self.encoder = nn.Sequential(Flatten(), nn.Linear(784, 32), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(32, 784), Unflatten(SEED_SHAPE))


@register_model("seed-deep")
class SeedDeep(SeedPreset):
    """Seed 001, deep: 784-512-256-128-64 and back 128-256-512-784, ReLU everywhere
    (the 64-unit code too), sigmoid output; Adam, MSE, 50 epochs."""

    seed_source = "001 deep autoencoder"
    seed_epochs = 50

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.latent_shape = (64,)
        self.encoder = nn.Sequential(Flatten(), *mlp([784, 512, 256, 128, 64], True))
        self.decoder = nn.Sequential(*mlp([64, 128, 256, 512, 784], False), Unflatten(SEED_SHAPE))


@register_model("seed-keras-conv")
class SeedKerasConv(SeedPreset):
    """Seed 003 (Keras, Fashion-MNIST): Conv16-pool-Conv8-pool-Conv4-pool -> (4, 4, 4) code;
    Conv8-up-Conv8-up-Conv16('valid': 16 -> 14)-up-Conv1 (sigmoid); Adam, MSE, 25 epochs, batch 128.
    The code is kept as the (B, 4, 4, 4) map the seed calls 'bottleneck'."""

    seed_source = "003 Keras convolutional autoencoder"
    seed_epochs = 25
    seed_batch_size = 128

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.latent_shape = (4, 4, 4)
        self.encoder = nn.Sequential(
            conv3(1, 16), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            conv3(16, 8), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            conv3(8, 4), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),  # 7 -> 4 ('same')
        )
        self.decoder = nn.Sequential(
            conv3(4, 8), nn.ReLU(), nn.Upsample(scale_factor=2),  # 4 -> 8
            conv3(8, 8), nn.ReLU(), nn.Upsample(scale_factor=2),  # 8 -> 16
            conv3(8, 16, same=False), nn.ReLU(), nn.Upsample(scale_factor=2),  # 16 -> 14 -> 28
            conv3(16, 1),
        )


@register_model("seed-torch-conv")
class SeedTorchConv(SeedPreset):
    """Seed 002 (PyTorch): the listed nn.Sequential pair verbatim, a 10-d code, ConvTranspose
    decoder; the seed's final nn.Sigmoid is the base class's. MSE, 20 epochs."""

    seed_source = "002 PyTorch convolutional autoencoder"
    seed_epochs = 20

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.latent_shape = (10,)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3), nn.ReLU(inplace=True),  # 28 -> 26
            nn.Conv2d(16, 32, kernel_size=3), nn.ReLU(inplace=True),  # 26 -> 24
            nn.Conv2d(32, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True),  # 24 -> 11
            nn.Conv2d(64, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True),  # 11 -> 5
            nn.Flatten(),
            nn.Linear(1600, 10),
        )
        self.decoder = nn.Sequential(
            nn.Linear(10, 1600), nn.ReLU(inplace=True),
            nn.Unflatten(1, (64, 5, 5)),
            nn.ConvTranspose2d(64, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True),  # -> 11
            nn.ConvTranspose2d(64, 32, kernel_size=3, stride=2, output_padding=1),  # -> 24
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, 16, kernel_size=3), nn.ReLU(inplace=True),  # -> 26
            nn.ConvTranspose2d(16, 1, kernel_size=3),  # -> 28
        )


@register_model("seed-tf-conv")
class SeedTFConv(SeedPreset):
    """Seed 004 (TensorFlow, denoising): conv 32-32-16 with 'same' max-pools 28 -> 14 -> 7 -> 4,
    decoder NN-resize to 7, 14, 28 each + conv 16, 32, 32, then a conv to 1 logit map; sigmoid
    cross-entropy, Adam lr 1e-3, 100 epochs, batch 200, inputs noised with 0.5 * N(0, 1)."""

    seed_source = "004 TensorFlow convolutional (denoising) autoencoder"
    seed_epochs = 100
    seed_batch_size = 200
    seed_noise = 0.5

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.latent_shape = (16, 4, 4)
        self.encoder = nn.Sequential(
            conv3(1, 32), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            conv3(32, 32), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            conv3(32, 16), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),  # 7 -> 4 ('same')
        )
        self.decoder = nn.Sequential(
            Resize((7, 7)), conv3(16, 16), nn.ReLU(),
            Resize((14, 14)), conv3(16, 32), nn.ReLU(),
            Resize((28, 28)), conv3(32, 32), nn.ReLU(),
            conv3(32, 1),
        )

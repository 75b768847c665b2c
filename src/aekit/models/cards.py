"""The catalogue of models: one card per model name, and the typed options of each family.

A card says what `aekit models` shows and what the registry needs before the model's module is
imported: where the class lives, a one-paragraph summary, the options dataclass, the default
loss and, for the seed presets, the fixed input shape and code size. `register_model` copies
these onto the class, so they are written down once, here. No torch in this module: listing
the models does not pay for importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aekit.options import ModelOptions, option
from aekit.registry import ModelCard, register_card

ACTIVATIONS = ("relu", "gelu", "silu", "elu")
SEED_SHAPE = (1, 28, 28)  # every seed text trains on 28x28 grey (MNIST or Fashion-MNIST)


@dataclass(frozen=True)
class NestedOptions(ModelOptions):
    """Options every model accepts: nested dropout is implemented by the base class."""

    nested: bool = option(False, "train with nested dropout, so the first code units carry "
                                 "the most (like PCA's leading components)")
    nested_p: float = option(0.1, "geometric parameter of the kept prefix length",
                             low=1e-4, high=1.0)
    nested_draws: int = option(1, "prefixes drawn per image and step", low=1, high=64)


@dataclass(frozen=True)
class ConvOptions(ModelOptions):
    spatial: bool = option(False, "the code is a (latent_dim, h, w) map at the lowest "
                                  "resolution instead of a vector")
    activation: str = option("relu", "activation between layers (gelu costs ~20% speed)",
                             choices=ACTIVATIONS)
    depth: int = option(1, "3x3 convs per resolution level", low=1, high=8)
    hidden: int = option(0, "a dense hidden layer of this size on each side of a vector code "
                            "(0 = none)", low=0, high=1 << 16)
    linear: bool = option(True, "a linear path from the pixels to a vector code and from the "
                                "code to the logits, next to the conv stacks and started at PCA "
                                "of the training images (ignored with spatial=true)",
                          absent=False)
    linear_space: str = option(
        "auto", "where the linear path decodes: logit (added to the conv stack's logits), pixel "
                "(a pixel image, clipped, whose logit is added), or auto (the one whose PCA start "
                "reconstructs a sample of the training images better)",
        choices=("auto", "logit", "pixel"), absent="logit")


@dataclass(frozen=True)
class UNetOptions(ModelOptions):
    activation: str = option("relu", "activation after every hidden conv", choices=ACTIVATIONS)
    depth: int = option(1, "extra 3x3 convs per level", low=0, high=8)
    norm: bool = option(True, "BatchNorm after every hidden conv (folded into the convs in "
                              "eval mode: free at inference)")
    shuffle: int = option(1, "pixel-unshuffle factor (2 = work at half resolution)",
                          low=1, high=4)
    residual: bool = option(False, "predict a correction to the input: "
                                   "logits = logit(x) + f(x)")


@dataclass(frozen=True)
class VAEOptions(ModelOptions):
    backbone: str = option("conv", "conv: the conv model's stacks; dense: an MLP",
                           choices=("conv", "dense"))
    beta: float = option(1.0, "KL weight of the vae loss (1 = the true ELBO)", low=0.0, high=1e4)
    activation: str = option("gelu", "activation of the conv backbone (a value other than the "
                                     "default is passed on; the default runs relu)",
                             choices=ACTIVATIONS)
    depth: int = option(1, "3x3 convs per level of the conv backbone", low=1, high=8)
    iwae_k: int = option(100, "importance samples per image of the test NLL bound",
                         low=1, high=100_000)
    iwae_images: int = option(1000, "test images in the NLL bound (0 = all)", low=0,
                              high=1 << 40)
    likelihood: str = option("auto", "p(x|z): bernoulli (binary images), gaussian (a shared "
                                     "variance fitted to the error), auto: bernoulli when the "
                                     "training images are binary, else gaussian",
                             choices=("auto", "bernoulli", "gaussian"), absent="bernoulli")
    pca_start: bool = option(True, "start at PCA: linear paths from the pixels to the posterior "
                                   "mean and from the code to the logits, started at whitened "
                                   "PCA codes of the training images", absent=False)


@dataclass(frozen=True)
class SwapOptions(ConvOptions):
    confusion: float = option(0.03, "weight of the domain-confusion term pulling A's and B's "
                                    "codes together (0 = off)", low=0.0, high=100.0)
    domain_norm: str = option("input", "per-domain affine maps in the shared encoder: none, "
                                      "input (on the input, started from the domains' mean "
                                      "images), layers (input and after every encoder layer)",
                              choices=("none", "input", "layers"))


@dataclass(frozen=True)
class DenseOptions(ModelOptions):
    pca_start: bool = option(True, "start at PCA of the training images (the untrained model "
                                   "reconstructs like PCA); false: random weights",
                             absent=False)


for _card in (
    ModelCard("dense", "aekit.models.dense",
              "flatten -> Linear(D, latent) + ReLU -> Linear(latent, D) -> logits (B, C, H, W), "
              "started at PCA.", DenseOptions),
    ModelCard("deep", "aekit.models.deep",
              "D -> widths... -> latent -> reversed(widths)... -> D, ReLU between layers, "
              "started at PCA.", DenseOptions),
    ModelCard("conv", "aekit.models.conv",
              "Default conv autoencoder: stride-2 3x3 convs -> dense latent -> resize+conv "
              "back, beside a linear path started at PCA; any H x W.", ConvOptions),
    ModelCard("unet", "aekit.models.unet",
              "U-Net with skip connections for restoration (denoise / inpaint / colorize); "
              "any H x W.", UNetOptions),
    ModelCard("vae", "aekit.models.variational",
              "Variational autoencoder: dense or conv backbone (option backbone), beta-VAE via "
              "beta; the likelihood follows the data (Bernoulli for binary images, else a "
              "fitted Gaussian), started at PCA.", VAEOptions, loss="vae"),
    ModelCard("swap", "aekit.models.swap",
              "Shared encoder, one decoder per domain (the face-swap design) for domain "
              "translation.", SwapOptions),
    ModelCard("seed-dense", "aekit.models.seeds",
              "Seed 001, vanilla: 784 -> 32 (ReLU) -> 784 (sigmoid); Adam, MSE, 50 epochs.",
              fixed_shape=SEED_SHAPE, fixed_latent_dim=32),
    ModelCard("seed-deep", "aekit.models.seeds",
              "Seed 001, deep: 784-512-256-128-64 and back 128-256-512-784, ReLU everywhere "
              "(the 64-unit code too), sigmoid output; Adam, MSE, 50 epochs.",
              fixed_shape=SEED_SHAPE, fixed_latent_dim=64),
    ModelCard("seed-keras-conv", "aekit.models.seeds",
              "Seed 003 (Keras, Fashion-MNIST): Conv16-pool-Conv8-pool-Conv4-pool -> (4, 4, 4) "
              "code; Conv8-up-Conv8-up-Conv16('valid': 16 -> 14)-up-Conv1 (sigmoid); Adam, MSE, "
              "25 epochs, batch 128. The code is kept as the (B, 4, 4, 4) map the seed calls "
              "'bottleneck'.", fixed_shape=SEED_SHAPE, fixed_latent_dim=64),
    ModelCard("seed-torch-conv", "aekit.models.seeds",
              "Seed 002 (PyTorch): the listed nn.Sequential pair verbatim, a 10-d code, "
              "ConvTranspose decoder; the seed's final nn.Sigmoid is the base class's. MSE, 20 "
              "epochs.", fixed_shape=SEED_SHAPE, fixed_latent_dim=10),
    ModelCard("seed-tf-conv", "aekit.models.seeds",
              "Seed 004 (TensorFlow, denoising): conv 32-32-16 with 'same' max-pools 28 -> 14 -> "
              "7 -> 4, decoder NN-resize to 7, 14, 28 each + conv 16, 32, 32, then a conv to 1 "
              "logit map; sigmoid cross-entropy, Adam lr 1e-3, 100 epochs, batch 200, inputs "
              "noised with 0.5 * N(0, 1).", loss="bce", fixed_shape=SEED_SHAPE,
              fixed_latent_dim=256),
):
    register_card(_card)

"""Two guards against the silent failure of a sigmoid-output autoencoder on sparse images.

`start_from_data`: before the first step of a freshly built model, its output bias is set to the
logit of the training images' mean (per pixel or per channel, as the bias allows: the model's
`init_output_bias` hook, models/base.py). A model that starts at sigmoid(0) = 0.5 grey on
mostly-black data (MNIST, strokes) otherwise receives one coherent "darken everything" gradient,
overshoots into sigmoid saturation within ~20 steps and stays an all-black image for good.

`CollapseCheck`: after each epoch, once the run has taken `MIN_STEPS` steps, the model's output on
a fixed sample of (validation) images is compared with the data: a near-constant output (any
epoch), or at the end an MSE less than 0.5 dB better than predicting the sample's mean image (the
predict-the-mean level, PCA with zero components), is a collapsed run. The training loop reports
it once and keeps it in `FitResult.warnings` (and so in metrics.json). A healthy run is far from
both: `conv` on Fashion-MNIST after one epoch has an output spread of 0.25 (the data's: 0.28, the
limit 0.0056) and an MSE of 0.014 against the mean image's 0.089.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.data.stream import sample_images
from aekit.data.units import to_unit

# Images sampled (evenly spaced, so deterministic) for the mean pixel and for the collapse check,
# at most this many and at most this many pixel values (large images: fewer of them).
INIT_IMAGES, INIT_VALUES = 4096, 1 << 24
CHECK_IMAGES, CHECK_VALUES = 512, 1 << 22
# Fewer steps than this cannot tell a collapsed run from one that has barely started.
MIN_STEPS = 50
# Output spread across images (mean over pixels of the per-pixel std) below this fraction of the
# data's own spread counts as a near-constant output.
MIN_SPREAD_RATIO = 0.02
# A run that ends less than this many dB better than predicting the mean image is stuck at the
# predict-the-mean level (the conv on MNIST with BCE and a grey start ends 0.16 dB above it).
MIN_GAIN_OVER_MEAN_DB = 0.5


@torch.no_grad()
def start_from_data(model: nn.Module, train_x) -> bool:
    """Start a freshly built model's output at the training images' mean (`init_output_bias`,
    part of the model contract); a model whose weights were loaded is left alone. Returns whether
    a bias was set."""
    if not model.output_init_pending:
        return False
    xs = sample_images(train_x, INIT_IMAGES, INIT_VALUES)
    if xs.ndim != 4 or len(xs) == 0:
        return False
    mean = to_unit(xs, torch.device("cpu")).double().mean(dim=0)  # (C, H, W)
    return bool(model.init_output_bias(mean))


class CollapseCheck:
    """Judges a model's output on a fixed image sample; `__call__` returns a warning or None."""

    def __init__(self, x, corrupt=None, seed: int = 0) -> None:
        self.images = sample_images(x, CHECK_IMAGES, CHECK_VALUES)
        self.corrupt = corrupt
        self.seed = seed
        target = to_unit(self.images, torch.device("cpu")) if len(self.images) else None
        self.ok = target is not None and len(target) >= 2
        if self.ok:
            self.mean_mse = float((target - target.mean(0)).pow(2).mean())
            self.data_spread = float(target.std(0).mean())

    @torch.inference_mode()
    def measure(self, model: nn.Module, device: torch.device) -> tuple[float, float]:
        """(MSE, output spread) of the model on the sample, in eval mode."""
        was_training = model.training
        model.eval()
        gen = torch.Generator().manual_seed(self.seed + 11)
        sq, s1, s2 = 0.0, 0.0, 0.0  # squared error; per-pixel sums of x_hat and x_hat^2
        for start in range(0, len(self.images), 64):
            target = to_unit(self.images[start : start + 64], device)
            x_in = self.corrupt(target, gen) if self.corrupt else target
            x_hat = model(x_in)["x_hat"].double()
            sq += float((x_hat - target).pow(2).sum())
            s1 = s1 + x_hat.sum(0)
            s2 = s2 + x_hat.pow(2).sum(0)
        model.train(was_training)
        n = len(self.images)
        var = ((s2 - s1 * s1 / n) / (n - 1)).clamp_min(0)  # unbiased, as torch.std
        return sq / (n * self.images[0].numel()), float(var.sqrt().mean())

    def __call__(self, model: nn.Module, device: torch.device, step: int,
                 final: bool = False) -> str | None:
        """A warning for a collapsed model, else None. A near-constant output is judged after
        every epoch; "no better than the mean image" only at the end (`final`), since a slow but
        healthy start may sit near that level for a while."""
        if not self.ok or step < MIN_STEPS:
            return None
        mse, spread = self.measure(model, device)
        if self.data_spread > 0 and spread < MIN_SPREAD_RATIO * self.data_spread:
            return (f"training collapsed after {step} steps: the output is near-constant "
                    f"(spread across images {spread:.2g} vs {self.data_spread:.2g} in the data), "
                    "so the reconstructions ignore the input")
        stuck = self.mean_mse * 10 ** (-MIN_GAIN_OVER_MEAN_DB / 10)
        if final and self.mean_mse > 0 and mse > stuck:
            return (f"training ended no better than predicting the mean image (MSE {mse:.4f} vs "
                    f"{self.mean_mse:.4f}, under {MIN_GAIN_OVER_MEAN_DB} dB better, after {step} "
                    "steps): the run collapsed or was far too short")
        return None


def report(message: str) -> None:
    """One warning line on stderr, shown under --quiet too (progress bars are closed when this
    runs)."""
    from aekit.console import warn

    warn(message)

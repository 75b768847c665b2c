"""Frozen configuration dataclasses; both are saved as JSON inside every run folder."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from aekit.errors import ConfigError, check_range


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (not its weights)."""

    name: str = "conv"
    in_channels: int = 1
    height: int = 28
    width: int = 28
    latent_dim: int = 32
    # Model-specific widths (channels or hidden units); empty means the model's default.
    widths: tuple[int, ...] = ()
    # Model-specific switches (e.g. {"beta": 1.0} for a VAE); JSON-serialisable values only.
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Up to 8: the `swap` model takes two RGBA domains stacked on the channel axis.
        check_range("in_channels", self.in_channels, 1, 8)
        check_range("height", self.height, 1, 4096)
        check_range("width", self.width, 1, 4096)
        check_range("latent_dim", self.latent_dim, 1, 1 << 20)
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        for w in self.widths:
            check_range("widths[i]", w, 1, 1 << 16)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, d)


# Training-time augmentations of `aekit train --augment` (applied by aekit.data.augment). "auto"
# is decided from the training images when a run starts (aekit.train.symmetry) and the run
# records "dihedral" or "none"; "" (runs saved before "auto" existed) means none.
TRAIN_AUGMENTS = ("auto", "none", "hflip", "dihedral", "dihedral+colours")

# The automatic training budget (TrainConfig.epochs = 0 and steps = 0; aekit.train.budget):
# AUTO_EPOCHS passes over the data, raised on a small dataset to reach MIN_STEPS optimizer steps.
# Fashion-MNIST (55,000 training images, 429 steps an epoch) keeps exactly 10 epochs; the
# evidence for MIN_STEPS is in docs/BENCHMARKS.md ("Training budgets in steps").
AUTO_EPOCHS = 10
MIN_STEPS = 3000


def _flag(default, help: str, **extra):
    """A field that `aekit train` exposes as a flag (see aekit.args.add_config_flags)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; every field is a flag of `aekit train` (help and default here)."""

    dataset: str = _flag("fashion-mnist", "dataset (see `aekit datasets`)")
    dataset_b: str = _flag("", "second domain's dataset, for --model swap (domain translation): "
                               "each training item pairs a --dataset image with one of these")
    # 0: automatic (aekit.train.budget): AUTO_EPOCHS, or more on a small dataset so that training
    # takes at least MIN_STEPS optimizer steps. A number given is honoured as given.
    epochs: int = _flag(0, f"passes over the training images (0 = automatic: {AUTO_EPOCHS}, or "
                           f"more where the task's recipe asks for it (the denoising U-Net), or "
                           f"more on a small dataset so that training takes at least "
                           f"{MIN_STEPS:,} optimizer steps)", default_text="automatic")
    steps: int = _flag(0, "train for N optimizer steps instead, rounded up to whole epochs "
                          "(0 = by --epochs)", metavar="N")
    batch_size: int = _flag(128, "images per optimizer step")
    lr: float = _flag(2e-3, "peak learning rate (Adam)")
    weight_decay: float = _flag(0.0, "decoupled weight decay (AdamW)")
    loss: str = _flag("", "mse, bce, l1, logmse (default: the model's)")
    schedule: str = _flag("cosine", "learning-rate schedule", choices=("cosine", "constant"))
    seed: int = _flag(0, "seed of the weights, the validation split and the batch order")
    # 5,000 of Fashion-MNIST's 60,000 training images
    val_fraction: float = _flag(1 / 12, "share of the training images held out for validation")
    # 0 under an automatic budget: a quarter of its epochs (aekit.train.budget), recorded as such.
    patience: int = _flag(0, "early-stopping patience in epochs (0: off when --epochs or --steps "
                             "is given, else a quarter of the automatic epochs, at least 10)")
    # Mid-epoch checkpoints record the data order's and the RNGs' position: resuming from one ends
    # bit-identical to an uninterrupted run, and so does a run with or without them.
    checkpoint_every: int = _flag(0, "also checkpoint every N optimizer steps inside an epoch, "
                                     "for --resume (0 = only at the end of each epoch)",
                                  metavar="N")
    corrupt: str = _flag("", "train to undo a corruption, e.g. gaussian:0.5 (empty: a plain "
                             "autoencoder)")
    augment: str = _flag("auto", "training-time augmentation: hflip mirrors a random half of "
                                 "each batch; dihedral applies a random flip or quarter turn to "
                                 "each image, dihedral+colours also permutes the colour channels "
                                 "and inverts a random half (for denoisers trained on few "
                                 "images); auto: dihedral for a plain autoencoder on images with "
                                 "no preferred orientation (photo or texture patches), else none",
                         choices=TRAIN_AUGMENTS)
    image_size: tuple[int, int] | None = _flag(None, "resize the dataset's images to HxW",
                                               metavar="HxW")
    patch: int = _flag(0, "train on the grid of PxP patches cut from every image at its own "
                          "size (images may differ in size; 0 = whole images)", metavar="P")
    limit: int = _flag(0, "use only the first N training images (0 = all)")
    device: str = _flag("auto", "cpu, cuda, cuda:N, mps or auto")
    # Not a flag: the epochs of the automatic budget before the minimum-steps rule. A task's
    # recipe (aekit.core.recipes) may ask for more; recorded with the run so a resume plans
    # the same budget.
    auto_epochs: int = AUTO_EPOCHS
    # "auto": bfloat16 autocast for the forward pass where the hardware computes it natively
    # (CPUs with AVX512-BF16/AMX, recent GPUs), else float32. Weights and optimizer stay float32.
    precision: str = _flag("auto", "auto: bfloat16 autocast where the hardware has it natively",
                           choices=("auto", "fp32", "bf16"))

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision={self.precision!r} is not allowed; use auto, fp32, bf16")
        check_range("epochs", self.epochs, 0, 100_000)
        check_range("steps", self.steps, 0, 1 << 40)
        check_range("auto_epochs", self.auto_epochs, 1, 100_000)
        check_range("batch_size", self.batch_size, 1, 1 << 16)
        check_range("lr", self.lr, 1e-8, 10.0)
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        check_range("val_fraction", self.val_fraction, 0.0, 0.5)
        check_range("patience", self.patience, 0, 100_000)
        check_range("checkpoint_every", self.checkpoint_every, 0, 1 << 40)
        check_range("limit", self.limit, 0, 1 << 40)
        check_range("patch", self.patch, 0, 1 << 15)
        if (self.augment or "none") not in TRAIN_AUGMENTS:
            raise ConfigError(f"augment={self.augment!r} is not allowed; use one of "
                              f"{', '.join(TRAIN_AUGMENTS)}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule={self.schedule!r} is not allowed; use cosine or constant")
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, d)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_ints(v: Any, n: int | None = None) -> bool:
    return isinstance(v, list | tuple) and (n is None or len(v) == n) and all(map(_is_int, v))


# Field annotation -> (check, what it expects): a JSON file may hold any type in any field.
_JSON_TYPES = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "float": (lambda v: (_is_int(v) or isinstance(v, float)) and math.isfinite(v), "a number"),
    "tuple[int, ...]": (_is_ints, "a list of integers"),
    "dict[str, Any]": (lambda v: isinstance(v, dict), "an object"),
    "tuple[int, int] | None": (lambda v: v is None or _is_ints(v, 2), "null or [height, width]"),
}


def _from_dict(cls, d: dict[str, Any]):
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown, key=str)}")
    for name, value in d.items():
        check, what = _JSON_TYPES.get(str(fields[name].type), (lambda v: True, ""))
        if not check(value):
            raise ConfigError(f"{cls.__name__}.{name}: expected {what}, got "
                              f"{type(value).__name__} {str(value)[:40]!r}")
    try:
        return cls(**d)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None


def save_json(path, obj: Any) -> None:
    from aekit.io import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")

"""FinetuneConfig: how a few-label classifier is trained. The dataclass is the one source of truth
for every setting: `aekit finetune` generates its flags (help and default) from these fields, and
the classifier folder saves it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from aekit.errors import ConfigError, check_range

HEADS = ("linear", "mlp")
AUGMENTS = ("none", "shift", "shift+flip")


def _flag(default, help: str, **extra):
    """A field that `aekit finetune` exposes as a flag (see aekit.args.add_config_flags)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class FinetuneConfig:
    """How the classifier is trained; saved with it."""

    head: str = _flag("linear", "classification head", choices=HEADS)
    hidden: int = 256  # units of the MLP head
    steps: int = _flag(300, "optimizer steps")
    batch_size: int = _flag(64, "labelled images per step")
    lr: float = _flag(1e-3, "the head's learning rate")
    encoder_lr_scale: float = _flag(0.1, "encoder learning rate relative to the head's")
    weight_decay: float = 1e-4
    augment: str = _flag("shift", "augmentation of the labelled images", choices=AUGMENTS)
    shift: int = 2  # pixels of random translation
    probe: bool = _flag(True, "start the head at random instead of a logistic-regression probe",
                        negate="--no-probe")
    probe_c: float = 0.1  # the probe's inverse L2 strength (0.1 beat 1.0 at 10 and 100 labels)
    freeze_encoder: bool = _flag(False, "train the head only")
    # Semi-supervised (represent/semisup.py): pseudo-labels propagated over the unlabeled images.
    semi: bool = _flag(False, "semi-supervised: also train on pseudo-labels propagated over the "
                              "unlabeled training images (their labels are never used)")
    rounds: int = _flag(1, "--semi: propagate + fine-tune rounds (later rounds use the "
                           "fine-tuned features)")
    lp_k: int = _flag(50, "--semi: neighbours per image in the propagation graph")
    lp_alpha: float = _flag(0.99, "--semi: label spreading alpha")
    lp_iters: int = _flag(40, "--semi: propagation iterations")
    lp_cmn: bool = _flag(False, "--semi: class mass normalisation of the propagated scores")
    pseudo_batch: int = _flag(128, "--semi / --consistency: unlabeled images per step")
    soft: bool = _flag(False, "--semi: train on the propagated class scores, not their argmax")
    pseudo_decay: bool = _flag(False, "--semi: the propagated-label term fades out (cosine) over "
                                      "the steps")
    # FixMatch-style consistency on unlabeled images (weak view -> teacher label -> strong view).
    consistency: bool = _flag(False, "FixMatch-style: train on strongly augmented unlabeled "
                                     "images with the labels a teacher gives their weakly "
                                     "augmented view")
    threshold: float = _flag(0.95, "--consistency: teacher confidence needed to use its label")
    unlabeled_weight: float = _flag(1.0, "--consistency: weight of the unlabeled term")
    ema: float = _flag(0.0, "--consistency: teacher = moving average of the weights with this "
                            "decay (also the final weights); 0: the model itself")
    strength: float = _flag(1.0, "--consistency: scale of the strong augmentation's ranges "
                                 "(0-2)")
    seed: int = _flag(0, "picks the labelled images too")

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"head={self.head!r}: use one of {', '.join(HEADS)}")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"augment={self.augment!r}: use one of {', '.join(AUGMENTS)}")
        check_range("steps", self.steps, 0, 1_000_000)
        check_range("batch_size", self.batch_size, 1, 1 << 16)
        check_range("lr", self.lr, 1e-8, 10.0)
        check_range("encoder_lr_scale", self.encoder_lr_scale, 0.0, 100.0)
        check_range("hidden", self.hidden, 1, 1 << 16)
        check_range("shift", self.shift, 0, 64)
        check_range("probe_c", self.probe_c, 1e-6, 1e6)
        check_range("lp_k", self.lp_k, 1, 10_000)
        check_range("lp_alpha", self.lp_alpha, 0.0, 0.999999)
        check_range("lp_iters", self.lp_iters, 1, 100_000)
        check_range("pseudo_batch", self.pseudo_batch, 1, 1 << 16)
        check_range("rounds", self.rounds, 1, 100)
        check_range("threshold", self.threshold, 0.0, 1.0)
        check_range("unlabeled_weight", self.unlabeled_weight, 0.0, 100.0)
        check_range("ema", self.ema, 0.0, 0.999999)
        check_range("strength", self.strength, 0.0, 2.0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# `aekit finetune`'s defaults: the recorded recipe of docs/BENCHMARKS.md "Few labels" (80.0% at
# 100 Fashion-MNIST labels on a 120-epoch `--corrupt affine` encoder; on a short plain `conv`
# pretraining it also beats the plain fine-tune: "Recorded recipes as defaults"). The dataclass
# defaults stay the plain fine-tune that the Python API (FewLabelClassifier) builds on: --semi
# needs every unlabeled training image, which a caller of the API may not have.
RECIPE = {"steps": 2000, "encoder_lr_scale": 0.3, "semi": True, "lp_k": 20, "lp_iters": 200,
          "lp_cmn": True, "consistency": True, "threshold": 0.8, "strength": 0.5}
# What the recorded number's encoder was trained with (its finetune flags are RECIPE's).
RECIPE_PRETRAIN = {"name": "conv", "latent_dim": 64, "corrupt": "affine", "epochs": 120,
                   "linear": False}
RECIPE_COMMAND = ("aekit train --corrupt affine --latent-dim 64 --epochs 120 --out RUN, then "
                  "aekit finetune RUN --labels N")

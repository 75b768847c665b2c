"""Few-label classification: a pretrained autoencoder's encoder plus a small head, fine-tuned on N
balanced labels (seed 003: "take the encoder only, add a classification layer, and fine-tune").

Recipe (Kumar et al. 2022, "linear probe, then fine-tune"): features are standardised with
statistics of unlabeled training images; the head starts as a logistic regression fitted on the
frozen features; then encoder and head are fine-tuned together with augmentation and a smaller
learning rate for the encoder, so the few labels adjust the pretrained features instead of
overwriting them. The same code trains the "from scratch" baseline from a random encoder.

With `consistency` (FixMatch, Sohn et al. 2020) every step also takes `pseudo_batch` unlabeled
images: the teacher (the classifier itself, or its exponential moving average with `ema`)
labels a weakly augmented view, and the student is trained on a strongly augmented view
(`strong_augment`, its ranges scaled by `strength`) of the images whose teacher confidence
reaches `threshold`. Combined with `semi`, the same unlabeled images also keep their weighted
label-propagation term on the weak view.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import TrainConfig
from aekit.data.augment import shift_flip, strong_augment
from aekit.data.units import to_unit
from aekit.errors import ConfigError, DataError, check_range
from aekit.represent.config import FinetuneConfig
from aekit.represent.semisup import Pseudo, embedding_graph, pseudo_labels
from aekit.train.loop import fit
from aekit.train.objective import Objective


def balanced_indices(y: torch.Tensor, n_labels: int, num_classes: int, seed: int = 0
                     ) -> torch.Tensor:
    """n_labels indices into y, n_labels / num_classes from each class, chosen by seed."""
    check_range("--labels", n_labels, 1, 1 << 40)
    if n_labels > len(y):
        raise ConfigError(f"--labels {n_labels} is larger than the {len(y)} labelled training "
                          "images available")
    if n_labels % num_classes:
        raise ConfigError(f"--labels {n_labels} is not divisible by the {num_classes} classes; "
                          f"use a multiple of {num_classes} (balanced classes)")
    per = n_labels // num_classes
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < per:
            raise ConfigError(f"--labels {n_labels} needs {per} images of class {c} but the "
                              f"training split has {len(idx)}; use fewer labels")
        picked.append(idx[torch.randperm(len(idx), generator=gen)[:per]])
    return torch.cat(picked).sort().values


class Classifier(nn.Module):
    """An autoencoder's `encode` -> standardise -> head (linear, or MLP with one hidden layer)."""

    def __init__(self, autoencoder: nn.Module, num_classes: int, head: str = "linear",
                 hidden: int = 256) -> None:
        super().__init__()
        self.autoencoder = autoencoder  # only encode() is used; the decoder gets no gradient
        shape = autoencoder.cfg.shape
        with torch.no_grad():
            was = autoencoder.training
            dim = autoencoder.eval().encode(torch.zeros(1, *shape)).numel()
            autoencoder.train(was)
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))
        if head == "linear":
            self.head = nn.Sequential(nn.Linear(dim, num_classes))
        else:
            self.head = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.2),
                                      nn.Linear(hidden, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        z = self.autoencoder.encode(x).flatten(1)  # (B, D)
        return (z - self.feat_mean) / self.feat_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def set_normalization(self, x: torch.Tensor, batch_size: int = 500) -> None:
        """Per-feature mean/std over images x (uint8 or float), e.g. unlabeled training images."""
        z = self.encode_all(x, batch_size)
        self.feat_mean.copy_(z.mean(0))
        self.feat_std.copy_(z.std(0).clamp_min(1e-4 * float(z.std(0).max()) + 1e-8))

    @torch.no_grad()
    def encode_all(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        was = self.training
        self.eval()
        device = self.feat_mean.device
        z = torch.cat([self.autoencoder.encode(to_unit(b, device)).flatten(1)
                       for b in x.split(batch_size)])
        self.train(was)
        return z


def finetune(clf: Classifier, x: torch.Tensor, y: torch.Tensor, cfg: FinetuneConfig,
             unlabeled: torch.Tensor | None = None, pseudo: Pseudo | None = None,
             normalize: bool = True) -> list[dict]:
    """Train `clf` on images x (uint8 (N, C, H, W)) with labels y; returns a short history.

    `unlabeled` images (no labels) set the feature standardisation (normalize=False: the caller
    already did, with clf.set_normalization). With cfg.semi, `pseudo`
    holds one pseudo-label per unlabeled image (from `semisup.pseudo_labels`; computed here
    when None) and every step also trains on cfg.pseudo_batch of them, weighted. With
    cfg.consistency, the unlabeled images also get FixMatch's thresholded teacher labels."""
    if len(x) != len(y) or len(x) == 0:
        raise DataError(f"finetune: {len(x)} images but {len(y)} labels")
    torch.manual_seed(cfg.seed)
    if normalize:
        clf.set_normalization(unlabeled if unlabeled is not None else x)
    if (cfg.semi or cfg.consistency) and unlabeled is None:
        raise DataError("semi-supervised fine-tuning needs unlabeled images")
    if cfg.semi:
        if pseudo is None:
            pseudo = propagate_to(clf, x, y, unlabeled, cfg)
        if len(pseudo.labels) != len(unlabeled):
            raise DataError(f"{len(pseudo.labels)} pseudo-labels for {len(unlabeled)} images")
    if cfg.probe:
        _probe_init(clf, x, y, cfg.probe_c)
    history: list[dict] = []
    for r in range(cfg.rounds if cfg.semi else 1):
        if r:  # self-training: propagate again over the features fine-tuned so far
            pseudo = propagate_to(clf, x, y, unlabeled, cfg)
        history += _train(clf, x, y, cfg, unlabeled, pseudo, r)
    clf.eval()
    return history


def _train(clf: Classifier, x: torch.Tensor, y: torch.Tensor, cfg: FinetuneConfig,
           unlabeled: torch.Tensor | None, pseudo: Pseudo | None, round_: int) -> list[dict]:
    """cfg.steps of AdamW with cosine decay on labelled (+ weighted pseudo-labelled) batches,
    run by the one training loop (aekit.train.loop.fit)."""
    if cfg.steps == 0:
        return []
    train_cfg = TrainConfig(epochs=1, batch_size=min(cfg.batch_size, len(x)), lr=cfg.lr,
                            weight_decay=cfg.weight_decay, seed=cfg.seed,
                            device=str(clf.feat_mean.device), precision="fp32")
    objective = FewLabelObjective(train_cfg, clf, y, cfg, unlabeled, pseudo, round_)
    fit(clf, x, train_cfg, progress=False, objective=objective)
    return objective.history


class FewLabelObjective(Objective):
    """One epoch of cfg.steps steps: a labelled batch drawn with replacement (shifted, maybe
    flipped), plus, with pseudo-labels or a teacher, cfg.pseudo_batch unlabeled images in the
    same forward pass. The head trains at cfg.lr, the encoder at cfg.lr * encoder_lr_scale (or
    not at all), both decaying by a cosine to zero. A history row every 50 steps."""

    def __init__(self, train_cfg: TrainConfig, clf: Classifier, y: torch.Tensor,
                 cfg: FinetuneConfig, unlabeled: torch.Tensor | None, pseudo: Pseudo | None,
                 round_: int) -> None:
        super().__init__(train_cfg)  # the batch size, capped at the labelled images
        self.steps_per_epoch = cfg.steps
        self.ft, self.y, self.round = cfg, y, round_
        self.unlabeled, self.pseudo = unlabeled, pseudo
        self.teacher = _Teacher(clf, cfg.ema) if cfg.consistency else None
        self.history: list[dict] = []
        self.running, self.used = 0.0, 0.0

    def setup(self, model: nn.Module, train_x: torch.Tensor, device: torch.device, resume: bool,
              shard: slice | None) -> None:
        self.device = device  # where the classifier is (train_cfg.device)
        model.train()

    def parameter_groups(self, model: nn.Module) -> list[dict]:
        cfg = self.ft
        self.encoder_params = list(model.autoencoder.parameters())
        groups = [{"params": list(model.head.parameters()), "lr": cfg.lr}]
        train_encoder = not cfg.freeze_encoder and cfg.encoder_lr_scale > 0
        if train_encoder:
            groups.append({"params": self.encoder_params, "lr": cfg.lr * cfg.encoder_lr_scale})
        for p in self.encoder_params:
            p.requires_grad_(train_encoder)
        self.base_lrs = [g["lr"] for g in groups]
        return groups

    def learning_rates(self, step: int, total_steps: int) -> list[float]:
        self.scale = 0.5 * (1 + np.cos(np.pi * step / max(1, total_steps)))  # cosine decay
        return [lr * self.scale for lr in self.base_lrs]

    def start_epoch(self, epoch: int, n: int) -> torch.Generator:
        self.n = n
        return torch.Generator().manual_seed(self.ft.seed + 1 + 1000 * self.round)

    def batches(self, train_x: torch.Tensor, steps: int, start: int):
        return iter(lambda: train_x, None)  # every step samples from all labelled images

    def loss(self, net: nn.Module, x: torch.Tensor, gen: torch.Generator
             ) -> tuple[torch.Tensor, dict]:
        cfg, device, pseudo, teacher = self.ft, self.device, self.pseudo, self.teacher
        idx = torch.randint(0, len(x), (self.cfg.batch_size,), generator=gen)
        xb = shift_flip(to_unit(x[idx], device), cfg.augment, cfg.shift, gen)
        labels = self.y[idx].to(device)
        if self.unlabeled is None or (pseudo is None and teacher is None):
            return F.cross_entropy(net(xb), labels), {}
        # One forward pass over labelled + unlabeled images.
        j = torch.randint(0, len(self.unlabeled), (cfg.pseudo_batch,), generator=gen)
        xu = to_unit(self.unlabeled[j], device)
        xw = shift_flip(xu, cfg.augment, cfg.shift, gen)  # the weak view
        views = [xb]
        if pseudo is not None:
            views.append(xw)
        if teacher is not None:
            views.append(strong_augment(xu, gen, cfg.strength))
        logits = net(torch.cat(views)).split([len(v) for v in views])
        loss = F.cross_entropy(logits[0], labels)
        if pseudo is not None:  # propagated labels, weighted by their certainty
            soft = cfg.soft and pseudo.probs is not None
            target = pseudo.probs[j] if soft else pseudo.labels[j]
            per = F.cross_entropy(logits[1], target.to(device), reduction="none")
            fade = self.scale if cfg.pseudo_decay else 1.0
            loss = loss + fade * (per * pseudo.weights[j].to(device)).mean()
        if teacher is not None:  # the teacher's confident labels of the weak view
            shared = logits[1] if pseudo is not None and cfg.ema == 0 else None
            conf, target = teacher.probs(xw, shared).max(1)
            sure = (conf >= cfg.threshold).float()
            per = F.cross_entropy(logits[-1], target, reduction="none")
            loss = loss + cfg.unlabeled_weight * (per * sure).mean()
            self.used += float(sure.mean())
        return loss, {}

    def after_step(self, model: nn.Module, step: int, loss: float) -> None:
        if self.teacher is not None:
            self.teacher.update(model)
        self.running += loss
        if step % 50 == 0 or step == self.ft.steps:
            n = ((step - 1) % 50) + 1
            self.history.append({"round": self.round + 1, "step": step,
                                 "train_loss": self.running / n})
            if self.teacher is not None:  # fraction of unlabeled images above the threshold
                self.history[-1]["confident"] = self.used / n
            self.running, self.used = 0.0, 0.0

    def finish(self, model: nn.Module, train_x: Any) -> str | None:
        for p in self.encoder_params:
            p.requires_grad_(True)
        if self.teacher is not None and self.ft.ema > 0:
            model.load_state_dict(self.teacher.model.state_dict())
        model.eval()
        return None


class _Teacher:
    """The labeller of the weak views: the classifier itself (ema = 0) or an exponential moving
    average of its weights, updated after every step."""

    def __init__(self, clf: Classifier, ema: float) -> None:
        self.ema = ema
        self.model = copy.deepcopy(clf).eval() if ema > 0 else clf
        if ema > 0:
            for p in self.model.parameters():
                p.requires_grad_(False)

    @torch.no_grad()
    def probs(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Class probabilities of x; `logits` of x already computed by the student (when the
        teacher is the student itself) are reused instead of a second forward pass."""
        if logits is not None:
            return F.softmax(logits.detach(), 1)
        was = self.model.training
        self.model.eval()  # no dropout in the teacher's view
        out = F.softmax(self.model(x), 1)
        self.model.train(was)
        return out

    @torch.no_grad()
    def update(self, clf: Classifier) -> None:
        if self.ema > 0:
            for t, p in zip(self.model.parameters(), clf.parameters(), strict=True):
                t.lerp_(p.detach(), 1 - self.ema)


def propagate_to(clf: Classifier, x: torch.Tensor, y: torch.Tensor, unlabeled: torch.Tensor,
                 cfg: FinetuneConfig) -> Pseudo:
    """Pseudo-labels for `unlabeled` by label propagation over the classifier's current
    features, seeded by the labelled images x, y (added to the graph as extra nodes)."""
    graph = embedding_graph(clf, torch.cat([x, unlabeled]), min(cfg.lp_k, len(unlabeled)))
    labels = pseudo_labels(graph, torch.arange(len(x)), y, clf.head[-1].out_features,
                           cfg.lp_alpha, cfg.lp_iters, cfg.lp_cmn)
    return Pseudo(labels.labels[len(x):], labels.weights[len(x):], labels.probs[len(x):])


def _probe_init(clf: Classifier, x: torch.Tensor, y: torch.Tensor, c: float = 0.1) -> None:
    """Set a linear head (or an MLP head's last layer on its hidden features) to a logistic
    regression fitted on the frozen, standardised features of the labelled images."""
    from sklearn.linear_model import LogisticRegression

    with torch.no_grad():
        was = clf.training
        clf.eval()
        feats = clf.features(to_unit(x, clf.feat_mean.device))
        last = clf.head[-1]
        if len(clf.head) > 1:
            feats = clf.head[:-1](feats)
        clf.train(was)
    labels = y.cpu().numpy()
    classes = np.unique(labels)
    if len(classes) < 2:
        return
    lr = LogisticRegression(C=c, max_iter=2000).fit(feats.cpu().double().numpy(), labels)
    with torch.no_grad():
        w = torch.zeros_like(last.weight)
        b = torch.full_like(last.bias, -10.0)  # classes absent from the labels: never predicted
        coef = torch.as_tensor(lr.coef_, dtype=w.dtype)
        icpt = torch.as_tensor(lr.intercept_, dtype=b.dtype)
        if len(classes) == 2:  # sklearn's binary model is one logit: split it symmetrically
            coef, icpt = torch.cat([-coef, coef]) / 2, torch.cat([-icpt, icpt]) / 2
        idx = torch.as_tensor(classes, dtype=torch.long)
        w[idx], b[idx] = coef.to(w.device), icpt.to(b.device)
        last.weight.copy_(w)
        last.bias.copy_(b)


@torch.inference_mode()
def predict_proba(clf: Classifier, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities (N, num_classes) for uint8 or [0, 1] float images (N, C, H, W)."""
    clf.eval()
    device = clf.feat_mean.device
    return torch.cat([F.softmax(clf(to_unit(b, device)), 1).cpu() for b in x.split(batch_size)])


def accuracy(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_proba(clf, x).argmax(1) == y.cpu()).float().mean())

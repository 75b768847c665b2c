"""`codec`: a learned image codec, a mixture of K learned transforms with a factorized prior.

The transforms code fixed-size blocks (C x bh x bw: the training size when small, else 16 x 16;
option `block`); an image of any size is a grid of them (blocks.py), so below "image" means one
block.

Encoder: y = gain_k * A_k (x - mean_k), a learned D-dim transform of the cluster k with the lowest
rate-distortion cost (search.py); round y. The code is the integer vector
[k, round(y)]. Decoder: x_hat = S_k (y_hat / gain_k) + mean_k, clipped to [0, 1];
its input is a function of the integer symbols only. Entropy model (factorized given k): the
cluster index has learned probabilities, and coefficient d of cluster k has the density of a
learned shared unit-CDF network (Ballé et al. 2018, appendix 6.1) scaled by a learned scale
s_kd. Training uses additive uniform noise for the rate and straight-through rounding for the
decoder. `finalize()` freezes the entropy model into integer tables (64 log-spaced scale levels x
symbols, 16-bit frequencies) saved with the weights, so entropy decoding is bit-exact anywhere;
at inference each image also picks a shift of its coefficients' table levels (steps.py);
the inference synthesis is an order-independent exact float64 matmul, so pixels are too.
The tensor-level coding steps live in steps.py.

Why not a conv stack: on a 2-core CPU a conv codec trained for minutes stays far from converged;
the mixture starts from per-cluster PCA (`init_from_data`, closed form) and fine-tunes with the
rate-distortion loss, and one image costs ~2 x D x C*H*W multiply-adds to encode or decode.

This file is over 400 lines on purpose: it is one module whose transforms, entropy model
and their caches share state (frozen tables invalidate the cached float64 synthesis, and so on).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn

from aekit.codec import deblock, intra
from aekit.codec.blocks import from_blocks, grid, to_blocks
from aekit.codec.card import block_size
from aekit.codec.density import PRECISION, UnitDensity, integer_table
from aekit.codec.mixture import Mixture, fit_mixture, sample_blocks
from aekit.codec.search import CodecSearch
from aekit.codec.steps import FIT_STEPS, N_LEVELS, CodecSteps, step_factor
from aekit.config import ModelConfig
from aekit.errors import ConfigError, RunError, check_range
from aekit.models.base import AutoencoderModule
from aekit.registry import register_model

LEVEL_MIN, LEVEL_MAX = 0.04, 400.0
# What finalize fits for version-4 files besides the filter: all present or all empty.
FITTED = ("intra", "intra_levels", "cluster_context", "shift_delta")
TRANSFORM_LR = 0.03  # relative learning rate of the transforms and means (see __init__)
_EPS = 1e-7  # logits of clipped pixels: sigmoid(logit(eps)) == eps


@register_model("codec")
class CodecAE(CodecSteps, CodecSearch, AutoencoderModule):
    """Learned image codec: mixture of learned transforms, factorized prior, integer tables.

    latent_dim = D coefficients per image (C*H*W keeps every dimension). Options:
    `CodecOptions` in card.py (the per-image scale shifts are explained in steps.py).
    """

    entropy_coded = True
    sized_by_weights = ("deblock",) + FITTED

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        if cfg.options.get("nested"):
            raise ConfigError("codec: nested dropout is not supported (options.nested)")
        opts = self.options  # CodecOptions, checked (card.py)
        # The transform codes blocks of (C, bh, bw); an image of any size is a grid of them.
        self.block_hw = block_size(cfg.in_channels, cfg.height, cfg.width, opts.block)
        self.block_area = self.block_hw[0] * self.block_hw[1]
        self.pixels = cfg.in_channels * self.block_area  # values per block
        gh, gw = grid(cfg.height, cfg.width, *self.block_hw)
        # per block of a training-size image: the cluster index, then D coefficients
        self.latent_shape = (gh * gw * (1 + cfg.latent_dim),)
        d, k = cfg.latent_dim, opts.clusters
        check_range("codec latent_dim (coefficients, at most C*bh*bw of a block)", d, 1,
                    self.pixels)
        self.rdoq, self.fast_select = opts.rdoq, opts.fast_select
        self._max_shift, self.lmbda, max_symbols = opts.shifts, opts.rate_weight, opts.max_symbols
        g0 = 1.0 / math.sqrt(8.66 * self.lmbda)  # high-rate optimal step for this lambda
        gen = torch.Generator().manual_seed(0)
        # Until init_from_data: the pixel basis (orthonormal, free to build) for every cluster.
        a = torch.eye(d, self.pixels).expand(k, d, self.pixels).clone()  # (K, D, P)
        # Transforms and means are stored divided by TRANSFORM_LR so that one shared Adam
        # learning rate moves them TRANSFORM_LR times slower than the entropy-model parameters.
        mean = 0.5 + 0.1 * torch.randn(k, self.pixels, generator=gen)
        self.mean_p = nn.Parameter(mean / TRANSFORM_LR)
        self.analysis_p = nn.Parameter(a / TRANSFORM_LR)
        self.synthesis_p = nn.Parameter(a.transpose(1, 2) / TRANSFORM_LR)  # (K, P, D)
        self.log_gain = nn.Parameter(torch.full((k, d), math.log(g0)))
        self.log_scale = nn.Parameter(torch.full((k, d), math.log(g0 * 0.3)))
        self.cluster_logits = nn.Parameter(torch.zeros(k))
        self.density = UnitDensity()
        levels = torch.exp(torch.linspace(math.log(LEVEL_MIN), math.log(LEVEL_MAX), N_LEVELS))
        self.register_buffer("levels", levels)
        self.register_buffer("freqs", torch.zeros(N_LEVELS, max_symbols, dtype=torch.int32))
        self.register_buffer("offsets", torch.zeros(N_LEVELS, dtype=torch.int32))
        self.register_buffer("lengths", torch.zeros(N_LEVELS, dtype=torch.int32))
        self.register_buffer("level_index", torch.zeros(k, d, dtype=torch.int32))
        self.register_buffer("cluster_freqs", torch.zeros(k, dtype=torch.int32))
        # Deblocking filters (deblock.py), fitted by finalize(x) on multi-block training
        # images; empty: no filter (and, being empty, not part of the weight fingerprint).
        self.register_buffer("deblock", torch.empty(0, dtype=torch.float64))
        # Intra prediction (intra.py): predictor weights and residual level offsets, fitted
        # with the filter; empty: every coefficient coded as is.
        self.register_buffer("intra", torch.empty(0, dtype=torch.float64))
        self.register_buffer("intra_levels", torch.empty(0, dtype=torch.int32))
        # ... and the context tables of the side information (side.py), fitted with it.
        self.register_buffer("cluster_context", torch.empty(0, dtype=torch.int32))
        self.register_buffer("shift_delta", torch.empty(0, dtype=torch.int32))
        self._cache: dict = {}
        self._plans: dict = {}

    @property
    def mean(self) -> torch.Tensor:
        """(K, P) cluster means."""
        return self.mean_p * TRANSFORM_LR

    @property
    def analysis(self) -> torch.Tensor:
        """(K, D, P) analysis transforms (before the gains)."""
        return self.analysis_p * TRANSFORM_LR

    @property
    def synthesis(self) -> torch.Tensor:
        """(K, P, D) synthesis transforms (after the inverse gains)."""
        return self.synthesis_p * TRANSFORM_LR

    @property
    def frozen(self) -> bool:
        return bool(self.lengths.min() > 0)

    def _use_tables(self) -> bool:
        return not self.training and self.frozen

    # --- transforms (gains folded into the matrices: one addmm per cluster) --------------------

    def _analysis_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.analysis * self.log_gain.exp()[..., None]  # (K, D, P)
        return w, -(w @ self.mean[..., None]).squeeze(-1)  # bias (K, D)

    def _cached(self, name: str, params: tuple, build):
        """build() cached under `name` while `params` are unchanged (PyTorch bumps a tensor's
        version on every in-place write) and no gradient is being recorded."""
        key = tuple(p._version for p in params)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key and hit[2] == self.mean_p.device:
            return hit[1]
        out = build()
        self._cache[name] = (key, out, self.mean_p.device)
        return out

    def _cluster_analysis(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Per cluster: (P, D) analysis matrix with the gains folded in, and (D,) bias."""
        def build():
            w, b = self._analysis_weights()
            return tuple(wc.T.contiguous() for wc in w.unbind(0)), b.unbind(0)
        return self._cached("clusters", (self.analysis_p, self.log_gain, self.mean_p), build)

    def _grouped(self, rows: torch.Tensor, k: torch.Tensor, fn) -> torch.Tensor:
        """fn(rows of cluster c, c) for every cluster present, results back in row order."""
        parts, order = [], []
        for c in torch.unique(k).tolist():
            idx = (k == c).nonzero().squeeze(1)
            parts.append(fn(rows[idx], c))
            order.append(idx)
        return torch.cat(parts)[torch.argsort(torch.cat(order))]

    def _analyse(self, xf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(B, P) pixels -> (B, D) continuous coefficients of each row's cluster (the training
        path; unbind, not indexing, so backward allocates each weight gradient once)."""
        a, mean, gain = self.analysis.unbind(0), self.mean.unbind(0), self.log_gain.exp().unbind(0)
        return self._grouped(xf, k, lambda r, c: (r - mean[c]) @ a[c].T * gain[c])

    def _synthesis_weights(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Training path: per-cluster (D, P) float32 synthesis matrices with the inverse gains
        folded in, and means."""
        w = self.synthesis * (-self.log_gain).exp()[:, None, :]  # (K, P, D)
        return tuple(wc.T.contiguous() for wc in w.unbind(0)), self.mean.unbind(0)

    def _exact_synthesis_weights(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Inference path: float64 weights and means rounded to a grid of 2**-f, so that every
        product with an integer symbol and every partial sum of the matmul is exactly
        representable: the result does not depend on summation order, i.e. on the BLAS, the
        SIMD width or the thread count. Built only from correctly rounded IEEE operations
        (exp via Python's float64 math.exp, element by element), cached until the weights
        change."""
        def build():
            lg = self.log_gain.detach().double().cpu()
            inv = torch.tensor([[math.exp(-v) for v in row] for row in lg.tolist()],
                               dtype=torch.float64)
            w = self.synthesis.detach().double().cpu() * inv[:, None, :]  # (K, P, D)
            mean = self.mean.detach().double().cpu()
            max_q = self.freqs.shape[1]  # |symbol| bound
            bound = w.shape[2] * max_q * float(w.abs().max()) + 1.0
            f = min(30, 51 - math.ceil(math.log2(bound)))  # all sums stay below 2**52 ulps
            w, mean = torch.round(w * 2.0**f) / 2.0**f, torch.round(mean * 2.0**f) / 2.0**f
            dev = self._exact_device()
            return (tuple(wc.T.contiguous().to(dev) for wc in w.unbind(0)),
                    tuple(m.to(dev) for m in mean.unbind(0)))
        return self._cached("exact-synthesis", (self.synthesis_p, self.log_gain, self.mean_p),
                            build)

    def _synthesise(self, q: torch.Tensor, k: torch.Tensor, step: int = 0) -> torch.Tensor:
        """(B, D) integer-valued coefficients -> (B, P) pixels in [0, 1]. In eval mode the
        result is bit-identical on any thread count (see _exact_synthesis_weights): with a
        rate-control step the exact matmul's result is multiplied by the step factor (one
        correctly rounded product per value) before the mean is added."""
        if self.training:
            w, mean = self._synthesis_weights()
            return self._grouped(q, k, lambda r, c: torch.addmm(mean[c], r, w[c])).clamp(0, 1)
        w, mean = self._exact_synthesis_weights()
        dev = self._exact_device()
        if step == 0:
            x = self._grouped(q.to(dev, torch.float64), k.to(dev),
                              lambda r, c: torch.addmm(mean[c], r, w[c]))
        else:
            f = step_factor(step)
            x = self._grouped(q.to(dev, torch.float64), k.to(dev),
                              lambda r, c: (r @ w[c]) * f + mean[c])
        return x.float().clamp(0, 1).to(q.device)

    def _exact_device(self) -> torch.device:
        dev = self.mean_p.device
        return torch.device("cpu") if dev.type == "mps" else dev  # MPS has no float64

    # --- entropy model ------------------------------------------------------------------------

    def base_levels(self, step: int = 0) -> torch.Tensor:
        """(K, D) table level of every coefficient before the per-block shift: the frozen
        level, moved by a rate-control step (steps.py) and kept inside the 64 levels."""
        li = self.level_index.long()
        return li if step == 0 else (li + step).clamp_(0, N_LEVELS - 1)

    def _tables(self, step: int = 0) -> dict:
        """Derived lookup tensors of the frozen tables (cached until the tables change); lo,
        hi and base are those of the rate-control step `step`."""
        if "bits" not in self._cache:
            f = self.freqs.double().clamp_min(1)
            self._cache.update({
                "bits": (PRECISION - torch.log2(f)).float().flatten(),  # -log2 p per entry
                "cluster_bits": PRECISION - torch.log2(self.cluster_freqs.double()).float(),
            })
        key = f"support-{step}"
        if key not in self._cache:
            li = self.base_levels(step)
            lo = self.offsets[li].float()  # (K, D)
            hi = lo + self.lengths[li].float() - 1
            s = self.freqs.shape[1]
            self._cache[key] = {"lo": lo, "hi": hi,
                                "base": li * s - lo.long()}  # flat index = base + q
        return {**self._cache, **self._cache[key]}

    def _likelihood(self, y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Probability of each coefficient under the continuous learned model (training, or
        before finalize; the frozen tables' probabilities are `_coded_likelihood`)."""
        return self.density.bin_probability(y, self.log_scale[k].exp()).clamp_min(1e-9)

    def _cluster_bits(self) -> torch.Tensor:
        if self._use_tables():
            return self._tables()["cluster_bits"]
        return -torch.log_softmax(self.cluster_logits, 0) / math.log(2)

    def _bit_table(self, dtype: torch.dtype, step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat -log2 p table, base (K, D)) so that bits of q[..., k, d] = table[base + q]."""
        if self._use_tables():
            t = self._tables(step)
            return t["bits"], t["base"]
        # Continuous model tabulated per scale level: N_LEVELS x grid evaluations, not B*K*D.
        half = self.freqs.shape[1] // 2
        grid = torch.arange(-half, half, dtype=dtype, device=self.levels.device)
        lv = self.levels.to(dtype)
        p = self.density.bin_probability(grid, lv[:, None]).clamp_min(1e-9)
        level = (self.log_scale[..., None] - lv.log()).abs().argmin(-1)  # (K, D)
        return -torch.log2(p).flatten(), level * (2 * half) + half

    # --- the AutoencoderModule contract ----------------------------------------------------------

    def blocks(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images of any size -> (B * blocks per image, C*bh*bw) block rows."""
        return to_blocks(x, *self.block_hw)

    def unblock(self, rows: torch.Tensor, n: int, shape) -> torch.Tensor:
        """Block rows of n images of `shape` (C, H, W) -> (n, C, H, W)."""
        return from_blocks(rows, n, tuple(shape), *self.block_hw)

    def _assemble(self, rows: torch.Tensor, n: int, shape, step: int = 0,
                  deblocked: bool = True) -> torch.Tensor:
        """Decoded block rows of n images of `shape` (C, H, W) -> (n, C, H, W): with frozen
        tables and a fitted filter, deblocked on the whole-block grid before the padding is
        cropped (deblock.py)."""
        if not (deblocked and self.deblock.numel() and self._use_tables()):
            return self.unblock(rows, n, shape)
        c, h, w = shape
        (bh, bw), (gh, gw) = self.block_hw, grid(h, w, *self.block_hw)
        full = self.unblock(rows, n, (c, gh * bh, gw * bw))
        return deblock.apply(full, self.deblock, step, self.block_hw)[..., :h, :w]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> z (B, blocks x (1 + D)): per block [cluster index, continuous
        coefficients]."""
        xf = self.blocks(x)
        k, y, _ = self.select(xf)
        if torch.is_grad_enabled():
            y = self._analyse(xf, k)
        return torch.cat([k.to(y.dtype)[:, None], y], 1).reshape(len(x), -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, blocks x (1 + D)) -> logits (B, C, H, W) of the clipped reconstruction."""
        z = z.reshape(-1, 1 + self.cfg.latent_dim)
        x = self._assemble(self._synthesise(z[:, 1:], z[:, 0].round().long()), -1,
                           self.cfg.shape)
        return torch.logit(x, eps=_EPS)

    def forward(self, x: torch.Tensor, keep: int | None = None) -> dict[str, torch.Tensor]:
        if keep is not None:
            raise ConfigError("codec: latent truncation (keep) is not supported")
        if self.training and self.frozen:
            self.unfreeze()  # training changes the weights, so the old tables no longer fit
        xf = self.blocks(x)  # (B * blocks, P)
        k, y, q = self.select(xf)
        if self.training:
            y = self._analyse(xf, k)  # with gradients
            lik = self._likelihood(y + torch.empty_like(y).uniform_(-0.5, 0.5), k)
            y_hat = y + (torch.round(y) - y).detach()  # straight-through rounding
        elif self._use_tables():  # exactly what the coder spends, per-image shift included
            s, y_hat = self.choose_shift(k, y, q)
            lik = self._coded_likelihood(y_hat, k, s)
        else:
            y_hat = q
            lik = self._likelihood(y_hat, k)
        x_hat = self._assemble(self._synthesise(y_hat, k), len(x), x.shape[1:])
        cluster_p = torch.exp2(-self._cluster_bits()[k])
        if self.max_shift:  # the shift symbol, uniform over 2m + 1 values
            cluster_p = cluster_p / (2 * self.max_shift + 1)
        n = len(x)
        return {"x_hat": x_hat, "logits": torch.logit(x_hat, eps=_EPS),
                "z": torch.cat([k.to(y.dtype)[:, None], y_hat], 1).reshape(n, -1),
                "likelihoods": torch.cat([cluster_p[:, None], lik], 1).reshape(n, -1)}

    # --- data-dependent start, freezing -----------------------------------------------------------

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, seed: int = 0, max_images: int = 20000,
                       mixture: Mixture | None = None) -> str:
        """Closed-form start: k-means clusters, then per-cluster PCA as each transform and the
        PCA standard deviations as scales (training then refines everything), on up to
        `max_images` blocks cut from the training images (so its memory and time do not depend
        on the image size). `mixture` reuses a `fit_mixture` result (it does not depend on
        lambda)."""
        k, d = self.mean.shape[0], self.cfg.latent_dim
        if mixture is None:
            mixture = fit_mixture(sample_blocks(x, self, max_images, seed), k, d, max_images,
                                  seed)
        if mixture.means.shape != (k, self.pixels) or mixture.vectors.shape[-1] != d:
            raise ConfigError("codec init_from_data: mixture does not match the model's shape")
        self.unfreeze()
        g0 = float(self.log_gain.exp().mean())
        self.mean_p.copy_(mixture.means / TRANSFORM_LR)
        self.analysis_p.copy_(mixture.vectors.transpose(1, 2) / TRANSFORM_LR)
        self.synthesis_p.copy_(mixture.vectors / TRANSFORM_LR)
        self.log_scale.copy_(torch.log(mixture.stds.clamp_min(1e-3) * g0))
        self.cluster_logits.copy_(torch.log(mixture.weights.clamp_min(1e-6)))
        bh, bw = self.block_hw
        return (f"codec: closed-form start (a mixture of {k} PCAs of {self.pixels} values: "
                f"{self.cfg.in_channels}x{bh}x{bw} blocks) from the training images")

    def loss_options(self, loss: str) -> dict:
        return {"lmbda": self.lmbda} if loss == "rd" else {}

    def unfreeze(self) -> None:
        """Drop the frozen tables and the filter and predictor fitted to them (before further
        training; finalize() makes new ones)."""
        self.lengths.zero_()
        self._drop_fitted()

    def _drop_fitted(self) -> None:
        """Forget what finalize fits on top of the tables (filter, intra predictor)."""
        self.deblock = self.deblock.new_empty(0)
        for name in FITTED:
            setattr(self, name, getattr(self, name).new_empty(0))
        self._cache, self._plans = {}, {}

    def finalize(self, x=None, seed: int = 0) -> str | None:
        """Freeze the entropy model into integer tables, then, given the training images x
        (uint8 (N, C, H, W) or streamed) of more than one block, fit the deblocking filter and
        the intra predictor on them (deblock.py, intra.py; without x, or with one-block
        images, there are none)."""
        self._freeze_tables()
        self._drop_fitted()
        if x is None:
            return None
        t0, training = time.perf_counter(), self.training
        self.eval()
        try:
            weights, n = deblock.fit(self, x, seed)
            fitted, n_intra = intra.fit(self, x, seed)
        finally:
            self.train(training)
        # clones: not inference tensors
        self.deblock = weights.clone().to(self.deblock.device)
        for name, t in fitted.items():
            setattr(self, name, t.clone().to(getattr(self, name).device))
        self._cache, self._plans = {}, {}
        if not n:
            return None
        return (f"codec: deblocking filter and intra predictor fitted on {n:,} and {n_intra:,} "
                f"training images at rate-control steps "
                f"{', '.join(f'{s:+d}' for s in FIT_STEPS)} "
                f"({time.perf_counter() - t0:.1f}s)")

    @torch.no_grad()
    def _freeze_tables(self, tail_mass: float = 1e-9) -> None:
        """The entropy model as integer tables (64 scale levels + cluster table), computed in
        float64 on the CPU."""
        half = self.freqs.shape[1] // 2
        grid = torch.arange(-half, half, dtype=torch.float64)
        freqs = np.zeros(tuple(self.freqs.shape), dtype=np.int32)
        offsets = np.zeros(N_LEVELS, dtype=np.int32)
        lengths = np.zeros(N_LEVELS, dtype=np.int32)
        dens = copy.deepcopy(self.density).cpu()
        for j, s in enumerate(self.levels.double().cpu()):
            p = dens.bin_probability(grid, s).numpy()
            cum = np.cumsum(p)
            lo = int(np.searchsorted(cum, tail_mass * cum[-1], side="right"))
            hi = int(np.searchsorted(cum, (1 - tail_mass) * cum[-1], side="left"))
            hi = min(max(hi, lo), len(p) - 1)
            table = integer_table(p[lo : hi + 1])
            freqs[j, : len(table)], offsets[j], lengths[j] = table, lo - half, len(table)
        dist = (self.log_scale.detach()[..., None] - self.levels.log()).abs()  # (K, D, L)
        self.level_index.copy_(dist.argmin(-1).to(torch.int32))
        p = torch.softmax(self.cluster_logits.detach().double(), 0).cpu().numpy()
        self.cluster_freqs.copy_(torch.from_numpy(integer_table(p)))
        self.freqs.copy_(torch.from_numpy(freqs))
        self.offsets.copy_(torch.from_numpy(offsets))
        self.lengths.copy_(torch.from_numpy(lengths))
        self._cache, self._plans = {}, {}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        self._cache, self._plans = {}, {}
        # The filter's shape is the saved one (empty when none was fitted); weights saved
        # before the filter existed have no entry: no filter.
        saved = state_dict.setdefault(prefix + "deblock", self.deblock.new_empty(0))
        r = deblock.radius(self.block_hw)
        if saved.numel() and tuple(saved.shape) != (len(FIT_STEPS), 2, 2 * r, 2 * r + 1):
            raise RunError(f"codec weights: deblocking filter of shape {tuple(saved.shape)}, "
                           f"expected ({len(FIT_STEPS)}, 2, {2 * r}, {2 * r + 1}) for "
                           "this block size; the weights are damaged or from another model")
        self.deblock = self.deblock.new_empty(tuple(saved.shape))
        # The intra predictor and side tables likewise (weights saved before: none).
        saved = {n: state_dict.setdefault(prefix + n, getattr(self, n).new_empty(0))
                 for n in FITTED}
        k, p = self.level_index.shape[0], intra.n_predicted(self)
        shapes = {"intra": (intra.CASES, k, intra.n_features(self), p),
                  "intra_levels": (intra.CASES, k, p), "cluster_context": (k, k),
                  "shift_delta": (4 * self._max_shift + 1,)}
        got = {n: tuple(t.shape) for n, t in saved.items()}
        if any(t.numel() for t in saved.values()) and (
                got != shapes or not bool(saved["intra"].isfinite().all())
                or int(saved["cluster_context"].min()) < 1 or int(saved["shift_delta"].min()) < 1):
            raise RunError(f"codec weights: intra predictor and context tables of shapes {got}, "
                           f"expected {shapes} with finite weights and frequencies >= 1; the "
                           "weights are damaged or from another model")
        for name, t in saved.items():
            setattr(self, name, getattr(self, name).new_empty(tuple(t.shape)))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- tensor-level codec steps (the byte format lives in aekit.codec) -----------------------

    def _require_frozen(self) -> None:
        if not self.frozen:
            raise RunError("codec model has no frozen entropy tables; call model.finalize() "
                           "after training (aekit's training loop does this)")


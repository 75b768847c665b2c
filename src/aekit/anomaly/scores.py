"""The score parts an anomaly Detector can combine, and the state each needs.

Model parts use the trained autoencoders (averaged over ensemble members):

    mse     mean squared pixel error of the reconstruction
    ssim    1 - SSIM of the reconstruction (structure rather than intensity)
    knn     mean distance of the latent code to its k nearest training codes (latent density)
    gauss   Mahalanobis distance of the latent code under a Gaussian fitted to training codes

Pixel parts need no network, only the normal training images:

    pca     mean squared residual of a PCA (k = pca_k components) fitted on the normal images
    pixknn  mean distance of the image to its k nearest normal training images (pixel space)
    local   the largest, over the image, of each pixel's distance from its 5x5 neighbourhood to
            the nearest of LOCAL_BANK neighbourhoods drawn from the normal images: how unlike
            anything normal the most unusual small region looks. Its per-pixel map is a heat
            map that localises (`local_maps`); it flags what no normal image contains at any
            place (scratches, blobs, noise), whatever the rest of the image looks like.
"""

from __future__ import annotations

import math

import torch

from aekit import infer
from aekit.anomaly.defaults import (  # noqa: F401 (re-exported)
    COMPONENTS,
    LATENT_PARTS,
    MODEL_PARTS,
    PIXEL_PARTS,
    RECON_PARTS,
)
from aekit.data.units import to_unit
from aekit.errors import ConfigError
from aekit.eval.pca import fit_pca


def parse_score(spec: str) -> tuple[str, ...]:
    """'mse+ssim' -> ('mse', 'ssim'), checked against COMPONENTS."""
    parts = tuple(p.strip() for p in str(spec).split("+") if p.strip())
    bad = [p for p in parts if p not in COMPONENTS]
    if not parts or bad or len(set(parts)) != len(parts):
        raise ConfigError(f"scores={spec!r}: use one or more of {', '.join(COMPONENTS)} joined "
                          "by '+', each at most once (e.g. mse+ssim+knn)")
    return parts




# The `local` part: 5x5 neighbourhoods (radius 2), a bank of this many normal ones (a seeded
# random draw), and queries on every other pixel of images at least LOCAL_STRIDE_FROM pixels on
# both sides (the map is interpolated back; on the texture benchmark as good as every pixel).
LOCAL_RADIUS, LOCAL_BANK, LOCAL_STRIDE_FROM = 2, 4096, 16


def _mirror(x: torch.Tensor, r: int) -> torch.Tensor:
    mode = "reflect" if min(x.shape[2:]) > r else "replicate"
    return torch.nn.functional.pad(x, (r, r, r, r), mode=mode)


def local_bank(train_x: torch.Tensor, size: int = LOCAL_BANK, seed: int = 0) -> torch.Tensor:
    """`size` neighbourhoods ((2r+1)^2 * C values, uint8) at seeded random places of the normal
    images train_x (N, C, H, W): what `local_maps` compares with."""
    n, c, h, w = train_x.shape
    k = 2 * LOCAL_RADIUS + 1
    gen = torch.Generator().manual_seed(seed)
    m = min(size, n * h * w)
    flat = torch.randperm(n * h * w, generator=gen)[:m]
    idx_n, rest = flat // (h * w), flat % (h * w)
    ys, xs = rest // w, rest % w
    out = []
    for start in range(0, m, 2048):
        sel = slice(start, start + 2048)
        xp = _mirror(to_unit(train_x[idx_n[sel]]), LOCAL_RADIUS)  # (B, C, H + 2r, W + 2r)
        rows = torch.arange(k)[None, :] + ys[sel, None]  # (B, k)
        cols = torch.arange(k)[None, :] + xs[sel, None]
        b = torch.arange(len(rows))[:, None, None, None]
        ch = torch.arange(c)[None, :, None, None]
        out.append(xp[b, ch, rows[:, None, :, None], cols[:, None, None, :]].flatten(1))
    return (torch.cat(out) * 255).round().to(torch.uint8)


@torch.inference_mode()
def local_maps(x: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Per-pixel distance (N, H, W) of each pixel's neighbourhood in images x (N, C, H, W) to
    the nearest neighbourhood in `bank` (local_bank), as the root mean square difference of
    their values in [0, 1]."""
    k = 2 * LOCAL_RADIUS + 1
    bank_f = bank.float() / 255.0
    centre = bank_f.mean(0)  # distances are shift-invariant; centred values round less
    bank_f = bank_f - centre
    bank_t, bank_sq = bank_f.T.contiguous(), bank_f.pow(2).sum(1)
    out = []
    for b in x.split(256):
        xb = to_unit(b)
        n, c, h, w = xb.shape
        step = 2 if min(h, w) >= LOCAL_STRIDE_FROM else 1
        grid = _mirror(xb, LOCAL_RADIUS).unfold(2, k, step).unfold(3, k, step)
        gh, gw = grid.shape[2:4]  # grid point (i, j) is centred on pixel (i * step, j * step)
        q = grid.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k) - centre
        # |q - b|^2 = |q|^2 - 2 q.b + |b|^2, minimised over the bank one block at a time
        d2 = torch.cat([torch.addmm(bank_sq, qb, bank_t, alpha=-2).amin(1) + qb.pow(2).sum(1)
                        for qb in q.split(4096)])
        m = (d2.clamp_min(0) / q.shape[1]).sqrt().reshape(n, 1, gh, gw)
        if step > 1:  # interpolate between grid points, repeat the last edge
            m = torch.nn.functional.interpolate(m, size=((gh - 1) * step + 1,
                                                         (gw - 1) * step + 1),
                                                mode="bilinear", align_corners=True)
            m = torch.nn.functional.pad(m, (0, w - m.shape[3], 0, h - m.shape[2]),
                                        mode="replicate")
        out.append(m[:, 0])
    return torch.cat(out)


def knn_distance(z: torch.Tensor, bank: torch.Tensor, k: int) -> torch.Tensor:
    """Mean Euclidean distance of each row of z (B, D) to its k nearest rows of bank (M, D)."""
    kk = min(k, len(bank))
    out = [torch.cdist(zb, bank).topk(kk, largest=False).values.mean(1) for zb in z.split(256)]
    return torch.cat(out)


def gauss_fit(z: torch.Tensor, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, precision) of the codes; the ridge keeps a rank-deficient covariance invertible."""
    z = z.double()
    mu = z.mean(0)
    cov = torch.cov((z - mu).T).reshape(z.shape[1], z.shape[1])
    cov = cov + ridge * max(float(cov.diagonal().mean()), 1e-12) * torch.eye(len(cov),
                                                                              dtype=cov.dtype)
    return mu.float(), torch.linalg.inv(cov).float()


def pca_fit(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), components (k, D)) of the flattened normal images x (N, C, H, W)."""
    k = max(1, min(k, len(x) - 1, math.prod(x.shape[1:])))
    return fit_pca(x, k, exact=True).as_tensors()


def pca_residual(x: torch.Tensor, mean: torch.Tensor, comps: torch.Tensor) -> torch.Tensor:
    """Mean squared residual (N,) of each image after projection onto the PCA subspace."""
    out = []
    for b in x.split(1024):
        d = to_unit(b).flatten(1) - mean  # (B, D)
        out.append((d - (d @ comps.T) @ comps).pow(2).mean(1))
    return torch.cat(out)


@torch.inference_mode()
def model_parts(module, x: torch.Tensor, parts: tuple[str, ...], codes: torch.Tensor | None,
                gauss: tuple[torch.Tensor, torch.Tensor] | None, k: int
                ) -> dict[str, torch.Tensor]:
    """{part: raw scores (N,)} of one autoencoder for the model parts named in `parts`."""
    from aekit.eval.metrics import ssim_per_image

    out: dict[str, list[torch.Tensor]] = {}
    for b in x.split(512):
        xb = to_unit(b)
        x_hat, z = infer.run(module, "scores", xb, total=len(x))
        z = z.flatten(1)
        vals = {}
        if "mse" in parts:
            vals["mse"] = (x_hat - xb).pow(2).flatten(1).mean(1)
        if "ssim" in parts:
            vals["ssim"] = 1.0 - ssim_per_image(x_hat, xb).float()
        if "knn" in parts:
            vals["knn"] = knn_distance(z, codes, k)
        if "gauss" in parts:
            mu, prec = gauss
            d = z - mu
            vals["gauss"] = ((d @ prec) * d).sum(1)
        for name, v in vals.items():
            out.setdefault(name, []).append(v.double())
    return {name: torch.cat(v) for name, v in out.items()}


def pixel_parts(x: torch.Tensor, parts: tuple[str, ...], state: dict[str, torch.Tensor],
                k: int) -> dict[str, torch.Tensor]:
    """{part: raw scores (N,)} for the pixel parts named in `parts`, from `state` (pixel_state)."""
    out = {}
    if "pca" in parts:
        out["pca"] = pca_residual(x, state["pca_mean"], state["pca_components"]).double()
    if "pixknn" in parts:
        bank = to_unit(state["pixels"]).flatten(1)
        out["pixknn"] = torch.cat([knn_distance(to_unit(b).flatten(1), bank, k)
                                   for b in x.split(1024)]).double()
    if "local" in parts:
        out["local"] = local_maps(x, state["local_bank"]).flatten(1).amax(1).double()
    return out


def pixel_state(train_x: torch.Tensor, parts: tuple[str, ...], pca_k: int, seed: int = 0
                ) -> dict[str, torch.Tensor]:
    """What the pixel parts need from the normal training images (saved with the detector)."""
    state = {}
    if "local" in parts:
        state["local_bank"] = local_bank(train_x, seed=seed)
    if "pca" in parts:
        state["pca_mean"], state["pca_components"] = pca_fit(train_x, pca_k)
    if "pixknn" in parts:
        state["pixels"] = (to_unit(train_x) * 255).round().to(torch.uint8).contiguous()
    return state


__all__ = ["COMPONENTS", "LATENT_PARTS", "MODEL_PARTS", "PIXEL_PARTS", "RECON_PARTS",
           "parse_score"]

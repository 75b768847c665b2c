"""The score parts an anomaly Detector can combine, and the state each needs.

Model parts use the trained autoencoders (averaged over ensemble members):

    mse     mean squared pixel error of the reconstruction
    ssim    1 - SSIM of the reconstruction (structure rather than intensity)
    knn     mean distance of the latent code to its k nearest training codes (latent density)
    gauss   Mahalanobis distance of the latent code under a Gaussian fitted to training codes

Pixel parts need no network, only the normal training images:

    pca     mean squared residual of a PCA (k = pca_k components) fitted on the normal images
    pixknn  mean distance of the image to its k nearest normal training images (pixel space)
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
    return out


def pixel_state(train_x: torch.Tensor, parts: tuple[str, ...], pca_k: int
                ) -> dict[str, torch.Tensor]:
    """What the pixel parts need from the normal training images (saved with the detector)."""
    state = {}
    if "pca" in parts:
        state["pca_mean"], state["pca_components"] = pca_fit(train_x, pca_k)
    if "pixknn" in parts:
        state["pixels"] = (to_unit(train_x) * 255).round().to(torch.uint8).contiguous()
    return state


__all__ = ["COMPONENTS", "LATENT_PARTS", "MODEL_PARTS", "PIXEL_PARTS", "RECON_PARTS",
           "parse_score"]

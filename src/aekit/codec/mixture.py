"""Closed-form start of the codec: k-means clusters and a PCA per cluster (a mixture of PCAs)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aekit.codec.blocks import grid
from aekit.data.stream import to_tensor
from aekit.errors import DataError


@dataclass
class Mixture:
    """Closed-form mixture of PCAs: weights (K,), means (K, P), vectors (K, P, D) (columns =
    principal directions, descending variance), stds (K, D)."""

    weights: torch.Tensor
    means: torch.Tensor
    vectors: torch.Tensor
    stds: torch.Tensor


@torch.no_grad()
def fit_mixture(x: torch.Tensor, clusters: int, dims: int, max_images: int = 20000,
                seed: int = 0) -> Mixture:
    """k-means (seeded k-means++, float64) then PCA of each cluster, on up to `max_images`
    images (uint8, or float in [0, 1])."""
    if len(x) < 2:
        raise DataError("codec init_from_data needs at least 2 images")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=gen)[:max_images]
    xf = to_tensor(x[idx]).flatten(1).double().cpu()
    xf = xf / 255.0 if x.dtype == torch.uint8 else xf
    p = xf.shape[1]
    labels, centers = _kmeans(xf, clusters, gen)
    weights, means = torch.zeros(clusters), torch.zeros(clusters, p)
    vectors, stds = torch.zeros(clusters, p, dims), torch.full((clusters, dims), 1e-2)
    for c in range(clusters):
        part = xf[labels == c]
        weights[c] = len(part) / len(xf)
        means[c] = (part.mean(0) if len(part) else centers[c]).float()
        if len(part) > 1:
            w, v = torch.linalg.eigh(torch.cov((part - part.mean(0)).T))
            stds[c] = w.flip(0)[:dims].clamp_min(0).sqrt().float()  # descending variance
            vectors[c] = v.flip(1)[:, :dims].float()
        else:
            vectors[c] = torch.eye(p, dims)
    return Mixture(weights, means, vectors, stds)


def _kmeans(x: torch.Tensor, k: int, gen: torch.Generator, iters: int = 25):
    """Seeded k-means++ then Lloyd iterations: (labels (N,), centers (K, P))."""
    n = len(x)
    centers = [x[torch.randint(n, (1,), generator=gen)].squeeze(0)]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centers)).min(1).values.pow(2)
        if float(d2.sum()) <= 0:
            centers.append(x[torch.randint(n, (1,), generator=gen)].squeeze(0))
            continue
        centers.append(x[torch.multinomial(d2 / d2.sum(), 1, generator=gen)].squeeze(0))
    c = torch.stack(centers)
    for _ in range(iters):
        labels = torch.cdist(x, c).argmin(1)
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(0)
    return torch.cdist(x, c).argmin(1), c


def sample_blocks(x: torch.Tensor, model, max_blocks: int, seed: int) -> torch.Tensor:
    """Up to `max_blocks` blocks (rows of C*bh*bw values, x's dtype) cut from a seeded random
    subset of the images x (uint8 or streamed) for a CodecAE `model`: only the images needed
    are cut, never the whole set at once."""
    gh, gw = grid(x.shape[-2], x.shape[-1], *model.block_hw)
    per_image = gh * gw
    if per_image == 1:  # whole-image blocks: fit_mixture samples the images itself
        return x
    gen = torch.Generator().manual_seed(seed + 1)
    order = torch.randperm(len(x), generator=gen)[: -(-max_blocks // per_image)]
    rows = torch.cat([model.blocks(to_tensor(x[order[i : i + 256]]))  # streamed: decoded here
                      for i in range(0, len(order), 256)])
    if len(rows) > max_blocks:
        rows = rows[torch.randperm(len(rows), generator=gen)[:max_blocks]]
    return rows

"""Semi-supervised fine-tuning: label propagation on the encoder's embeddings of the unlabeled
training images, then fine-tuning on the labelled images plus the propagated pseudo-labels.

Only the unlabeled training *images* are used (never their labels): this is the standard
transductive recipe of Iscen et al. 2019 ("Label propagation for deep semi-supervised
learning"): a k-nearest-neighbour graph on L2-normalised features with weights max(0, cos)^3,
symmetrically normalised, labels spread by F <- alpha S F + (1 - alpha) Y; each image's
pseudo-label is the argmax of its row, weighted by its certainty 1 - entropy / log(C) and by the
inverse frequency of its pseudo-class. The labelled images keep their true labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aekit.errors import DataError, check_range


@dataclass(frozen=True)
class Pseudo:
    """Pseudo-labels for N unlabeled images: labels (N,) int64, weights (N,) in [0, 1] and,
    when known, the propagated class scores probs (N, C), rows summing to 1."""

    labels: torch.Tensor
    weights: torch.Tensor
    probs: torch.Tensor | None = None

    def accuracy(self, true_labels: torch.Tensor) -> float:
        """Fraction of pseudo-labels equal to `true_labels` (for diagnostics only)."""
        return float((self.labels == true_labels).float().mean())


def knn_graph(feats: torch.Tensor, k: int = 50, gamma: float = 3.0, chunk: int = 2048
              ) -> torch.Tensor:
    """Sparse symmetric (N, N) affinity: each row's k most cosine-similar other rows, weight
    max(0, cos)^gamma, then W + W^T."""
    n = len(feats)
    check_range("k (neighbours)", k, 1, max(1, n - 1))
    f = torch.nn.functional.normalize(feats.float(), dim=1)
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        sim = f[start : start + chunk] @ f.T  # (b, N)
        b = len(sim)
        sim[torch.arange(b), torch.arange(start, start + b)] = -2.0  # no self-loops
        s, j = sim.topk(k, dim=1)
        rows.append(torch.arange(start, start + b).repeat_interleave(k))
        cols.append(j.flatten())
        vals.append(s.clamp_min(0).pow(gamma).flatten())
    idx = torch.stack([torch.cat(rows), torch.cat(cols)])
    w = torch.sparse_coo_tensor(idx, torch.cat(vals), (n, n), check_invariants=False)
    return (w + w.t()).coalesce()


def propagate(graph: torch.Tensor, labeled: torch.Tensor, labels: torch.Tensor,
              num_classes: int, alpha: float = 0.99, iters: int = 40, cmn: bool = False
              ) -> torch.Tensor:
    """Label spreading (Zhou et al. 2004) on `graph`: (N, num_classes) scores, each row summing
    to 1; `labeled` indexes the rows whose class `labels` gives. cmn: class mass normalisation
    (Zhu et al. 2003): each class's scores are first divided by their total over the graph, so
    a class whose labelled images sit in a dense region does not swallow its neighbours."""
    check_range("alpha", alpha, 0.0, 0.999999)
    check_range("iters", iters, 1, 100_000)
    n = graph.shape[0]
    deg = torch.sparse.sum(graph, 1).to_dense().clamp_min(1e-12)
    inv_sqrt = deg.rsqrt()
    i, v = graph.indices(), graph.values()
    s = torch.sparse_coo_tensor(i, v * inv_sqrt[i[0]] * inv_sqrt[i[1]], (n, n),
                                check_invariants=False).coalesce()
    y = torch.zeros(n, num_classes)
    y[labeled, labels] = 1.0
    f = y.clone()
    for _ in range(iters):
        f = alpha * torch.sparse.mm(s, f) + (1 - alpha) * y
    f = f.clamp_min(0)
    if cmn:
        f = f / f.sum(0, keepdim=True).clamp_min(1e-12)
    total = f.sum(1, keepdim=True)
    # Rows the graph never reached: uniform (their weight becomes 0 below).
    return torch.where(total > 0, f / total.clamp_min(1e-12), torch.full_like(f, 1 / num_classes))


def pseudo_labels(graph: torch.Tensor, labeled: torch.Tensor, labels: torch.Tensor,
                  num_classes: int, alpha: float = 0.99, iters: int = 40, cmn: bool = False
                  ) -> Pseudo:
    """Pseudo-labels for every node of `graph` (from `knn_graph`) given the labelled nodes."""
    if len(labeled) != len(labels) or len(labeled) == 0:
        raise DataError(f"pseudo-labels: {len(labeled)} labelled rows but {len(labels)} labels")
    probs = propagate(graph, labeled, labels.long(), num_classes, alpha, iters, cmn)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    certainty = 1 - entropy / math.log(num_classes)
    hard = probs.argmax(1)
    counts = torch.bincount(hard, minlength=num_classes).float().clamp_min(1)
    balance = (len(hard) / num_classes) / counts[hard]  # 1 when classes are equally frequent
    weights = (certainty * balance).clamp(0, 1)
    hard[labeled], weights[labeled] = labels.long(), 1.0
    probs[labeled] = torch.nn.functional.one_hot(labels.long(), num_classes).float()
    return Pseudo(hard, weights, probs)


def embedding_graph(clf, images: torch.Tensor, k: int = 50) -> torch.Tensor:
    """The k-NN graph of a classifier's standardised features of `images` (uint8 or float
    (N, C, H, W)); call after `clf.set_normalization`."""
    if len(images) <= k:
        raise DataError(f"label propagation needs more than {k} unlabeled images; got "
                        f"{len(images)}")
    z = clf.encode_all(images)
    return knn_graph((z - clf.feat_mean) / clf.feat_std, k)

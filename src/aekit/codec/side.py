"""The side information of a version-4 payload: each block's cluster and scale shift, coded with
its neighbours as context.

Neighbouring blocks of a photo tend to pick the same cluster and a similar scale shift. With
an intra predictor (intra.py) the coefficients shrink and these per-block symbols become a
larger share of a file, so a model that predicts also codes them with context: a block's
cluster with a table chosen by its left neighbour's cluster (the cluster table without one),
and its shift as the difference from the shift its neighbours predict (the left one's, the upper
one's, or the floor of their mean), with one table. The tables are counted on the same coded
training sample as the predictor (`fit`). The format is docs/FORMAT.md, "Intra prediction".
"""

from __future__ import annotations

import numpy as np
import torch

from aekit.codec.density import integer_table

_PRIOR = 0.5  # added to every count: a pair never seen in the sample stays codable


def predicted_shift(s_left: np.ndarray, s_up: np.ndarray, case: np.ndarray) -> np.ndarray:
    """The shift predicted for blocks of neighbourhood `case` (0: none, 1: left, 2: up, 3:
    both) from their neighbours' shifts (ignored where absent)."""
    both = np.floor_divide(s_left + s_up, 2)
    return np.select([case == 1, case == 2, case == 3], [s_left, s_up, both], 0)


def fit(k_pairs: list[tuple[np.ndarray, np.ndarray]], deltas: list[np.ndarray],
        clusters: int, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer tables (cluster given the left neighbour's (K, K), shift difference (4m + 1,))
    from the sample's (left cluster, cluster) pairs and shift differences."""
    pairs = np.zeros((clusters, clusters))
    for left, k in k_pairs:
        np.add.at(pairs, (left, k), 1)
    ctx = np.stack([integer_table(row + _PRIOR) for row in pairs])
    counts = np.zeros(4 * max_shift + 1)
    for d in deltas:
        np.add.at(counts, d + 2 * max_shift, 1)
    return torch.from_numpy(ctx), torch.from_numpy(integer_table(counts + _PRIOR))


def shift_deltas(s: np.ndarray, lay: dict) -> np.ndarray:
    """Per block (row-major) its shift minus the predicted one."""
    s_left = np.where(lay["left"] >= 0, s[np.maximum(lay["left"], 0)], 0)
    s_up = np.where(lay["up"] >= 0, s[np.maximum(lay["up"], 0)], 0)
    return s - predicted_shift(s_left, s_up, lay["case"])


def encode(model, enc, k: np.ndarray, s: np.ndarray, lay: dict, table: dict) -> None:
    """Put one image's clusters (block by block, each with its context's table) and shift
    differences (one table)."""
    left = lay["left"]
    for b in range(len(k)):
        ctx = table["cluster"] if left[b] < 0 else table["cluster_context"] + int(k[left[b]])
        enc.put(ctx, k[b : b + 1].astype(np.int32))
    if model.max_shift:
        enc.put(table["shift_delta"], (shift_deltas(s, lay) + 2 * model.max_shift)
                .astype(np.int32))


def decode(model, dec, nb: int, lay: dict, table: dict) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `encode`: (clusters (nb,), shifts (nb,) in [-m, m])."""
    left = lay["left"]
    k = np.zeros(nb, dtype=np.int64)
    for b in range(nb):
        ctx = table["cluster"] if left[b] < 0 else table["cluster_context"] + int(k[left[b]])
        k[b] = int(dec.get(ctx, 1)[0])
    m = model.max_shift
    s = np.zeros(nb, dtype=np.int64)
    if m:
        d = dec.get(table["shift_delta"], nb).astype(np.int64) - 2 * m
        waves, up = lay["wave"], lay["up"]
        for w in range(int(waves.max()) + 1):  # a wave's neighbours are on the wave before
            cur = np.nonzero(waves == w)[0]
            s_left = np.where(left[cur] >= 0, s[np.maximum(left[cur], 0)], 0)
            s_up = np.where(up[cur] >= 0, s[np.maximum(up[cur], 0)], 0)
            s[cur] = np.clip(predicted_shift(s_left, s_up, lay["case"][cur]) + d[cur], -m, m)
    return k, s

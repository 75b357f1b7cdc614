"""Max-min diversity selection (DivPrune, Alvar et al., CVPR 2025, §3.2): pick k of n feature vectors so
that the smallest pairwise cosine distance among the picked is as large as possible, by the greedy
algorithm of the paper (Alg. 1). Pure torch; no model code.
"""

from __future__ import annotations

import torch


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, D), (m, D) -> (n, m) ``1 - cos`` in float32."""
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return 1.0 - a @ b.T


def max_min_diverse(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy max-min diversity subset.

    features: (n, D). Returns (k,) sorted int64 indices. The first pick is the vector whose nearest
    neighbour is farthest (``argmax_i min_{j != i} d(i, j)``); each next pick maximises its distance to
    the nearest already-picked vector. Ties go to the lower index (deterministic).
    """
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if k == n:
        return torch.arange(n, device=features.device)
    x = torch.nn.functional.normalize(features.float(), dim=-1)
    d = 1.0 - x @ x.T
    d.fill_diagonal_(float("inf"))
    first = int(torch.argmax(d.min(dim=1).values))
    picked = torch.zeros(n, dtype=torch.bool, device=features.device)
    picked[first] = True
    nearest = d[first].clone()  # distance of every vector to its nearest picked one
    nearest[first] = -float("inf")
    order = [first]
    for _ in range(k - 1):
        nxt = int(torch.argmax(nearest))
        order.append(nxt)
        picked[nxt] = True
        nearest = torch.minimum(nearest, d[nxt])
        nearest[picked] = -float("inf")
    return torch.sort(torch.tensor(order, dtype=torch.int64, device=features.device)).values

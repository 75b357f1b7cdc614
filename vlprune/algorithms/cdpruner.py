"""CDPruner (Zhang et al., "Beyond Attention or Similarity: Maximizing Conditional Diversity for Token
Pruning in MLLMs", NeurIPS 2025, arXiv 2506.10967): keep the subset of visual tokens that maximises the
determinant of an instruction-conditioned similarity kernel (a conditional DPP, §3.3-3.4), found by the
fast greedy MAP inference of Chen et al. (NeurIPS 2018). Pure torch; decisions in docs/baselines.md.
"""

from __future__ import annotations

import torch

from vlprune.algorithms.diversity import cosine_distance


def relevance(features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Instruction relevance of each visual token (§3.3): the mean cosine similarity to the instruction
    tokens, min-max normalised to [0, 1] per image (the official code's ``+1e-6`` keeps the least relevant
    token above zero). features: (n, D); text: (T, D), T >= 1. Returns (n,) float32; all ones when every
    token is equally relevant."""
    if text.shape[0] == 0:
        raise ValueError("relevance needs at least one instruction token")
    r = (1.0 - cosine_distance(features, text)).mean(dim=1)
    lo, hi = r.min(), r.max()
    if float(hi - lo) <= 0.0:
        return torch.ones_like(r)
    return (r - lo + 1e-6) / (hi - lo)


def conditional_kernel(features: torch.Tensor, rel: torch.Tensor, theta: float | None = None) -> torch.Tensor:
    """L~ = diag(q) L diag(q) (§3.4) with L the cosine similarity of the tokens (n, n) and q = rel, or
    q = exp(theta / (2 (1 - theta)) * rel) with ``theta`` in [0, 1) (the official code's optional
    re-weighting, larger theta = more weight on relevance). features: (n, D); rel: (n,). float32."""
    sim = 1.0 - cosine_distance(features, features)
    q = rel.float()
    if theta is not None:
        q = torch.exp(theta / (2.0 * (1.0 - theta)) * q)
    return q[:, None] * sim * q[None, :]


def dpp_greedy(kernel: torch.Tensor, k: int, fill: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Greedy MAP inference of a DPP: k indices, each step the one that multiplies det(L_S) most.

    kernel: (n, n) symmetric PSD. Incremental Cholesky (Chen et al. 2018, Alg. 1): d_i^2 = L_ii, then per
    pick j: e = (L_j - c_j^T C) / d_j, C += e, d^2 -= e^2. Ties go to the lower index. Once no token adds
    volume (the best d^2 <= eps * max L_ii, e.g. duplicates of kept tokens), the rest of the budget goes to
    the highest ``fill`` scores (default: the diagonal), ties lower index. Returns (k,) sorted int64."""
    n = kernel.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if k == n:
        return torch.arange(n, device=kernel.device)
    L = kernel.float()
    d2 = torch.diagonal(L).clone()
    floor = eps * float(d2.max().clamp_min(0.0))
    cis = torch.zeros((k, n), dtype=torch.float32, device=L.device)
    picked = torch.zeros(n, dtype=torch.bool, device=L.device)
    order: list[int] = []
    for i in range(k):
        j = int(torch.argmax(d2))
        if float(d2[j]) <= floor:
            break
        order.append(j)
        picked[j] = True
        e = (L[j] - cis[:i, j] @ cis[:i]) / torch.sqrt(d2[j])
        cis[i] = e
        d2 = d2 - e * e
        d2[picked] = -float("inf")
    if len(order) < k:
        score = (torch.diagonal(L) if fill is None else fill.float()).clone()
        score[picked] = -float("inf")
        rest = torch.sort(score, descending=True, stable=True).indices[: k - len(order)]
        order += rest.tolist()
    return torch.sort(torch.tensor(order, dtype=torch.int64, device=kernel.device)).values


def cdpruner_select(features: torch.Tensor, text: torch.Tensor, k: int, theta: float | None = None) -> torch.Tensor:
    """CDPruner on one image: features (n, D) visual tokens, text (T, D) instruction embeddings in the
    same space, keep k. Returns (k,) sorted int64."""
    rel = relevance(features, text)
    return dpp_greedy(conditional_kernel(features, rel, theta), k, fill=rel)

"""MoB, Multi-Objective Balanced Covering (Li et al., "Why 1 + 1 < 1 in Visual Token Pruning: Beyond Naive
Integration via Multi-Objective Balanced Covering", NeurIPS 2025, arXiv 2505.10118): the kept set must
cover both the prompt (prompt alignment) and the visual tokens (visual preservation); the budget is split
between the two by trading their covering radii. Phase 1 gives every prompt anchor its ``fold`` nearest
visual tokens, phase 2 extends the set by farthest-point sampling to the full budget. Pure torch; what is
vlprune's reading of the paper (radius bound, anchors, defaults) is in docs/baselines.md.
"""

from __future__ import annotations

import torch

from vlprune.algorithms.ranking import share


def prompt_aligned_order(dist_pv: torch.Tensor, fold: int, limit: int) -> torch.Tensor:
    """Phase 1 order: ``fold`` rounds over the prompt tokens (in sequence order); in each round every
    prompt token takes its nearest visual token nobody took yet. dist_pv: (T, n). Returns at most
    ``limit`` distinct visual indices in the order taken."""
    t_count, n = dist_pv.shape
    ranked = torch.sort(dist_pv, dim=1, stable=True).indices.tolist()
    ptr = [0] * t_count
    taken = [False] * n
    out: list[int] = []
    for _ in range(fold):
        for t in range(t_count):
            if len(out) >= min(limit, n):
                return torch.tensor(out, dtype=torch.int64)
            row = ranked[t]
            while taken[row[ptr[t]]]:
                ptr[t] += 1
            v = row[ptr[t]]
            taken[v] = True
            out.append(v)
    return torch.tensor(out, dtype=torch.int64)


def farthest_points(x: torch.Tensor, k: int, seed: torch.Tensor, probes: torch.Tensor | None = None,
                    record: set[int] | None = None):
    """Farthest-point sampling on unit vectors x (n, D) (cosine distance) until ``k`` points, starting from
    the ``seed`` indices (or, if empty, from the token closest to the mean direction).

    Returns (picks (k,) in order, {m: (nearest distance of every token (n,), of every probe (P,)) after m
    picks} for m in ``record``). Ties go to the lower index."""
    n = x.shape[0]
    near = torch.full((n,), float("inf"))
    near_p = torch.full((0 if probes is None else probes.shape[0],), float("inf"))
    picks: list[int] = []
    snaps = {}
    record = record or set()

    def add(i: int):
        nonlocal near, near_p
        picks.append(i)
        near = torch.minimum(near, 1.0 - x @ x[i])
        if probes is not None:
            near_p = torch.minimum(near_p, 1.0 - probes @ x[i])
        near[i] = -1.0  # never picked twice

    if 0 in record:
        snaps[0] = (near.clone(), near_p.clone())
    if seed.numel() == 0 and k:
        seed = torch.argmin(1.0 - x @ torch.nn.functional.normalize(x.mean(0), dim=0)).view(1)
    for i in seed.tolist()[:k]:
        add(i)
        if len(picks) in record:
            snaps[len(picks)] = (near.clamp_min(0.0), near_p.clone())
    while len(picks) < k:
        add(int(torch.argmax(near)))
        if len(picks) in record:
            snaps[len(picks)] = (near.clamp_min(0.0), near_p.clone())
    return torch.tensor(picks, dtype=torch.int64), snaps


def _covering(dist_v, dist_p, idx):
    """(nearest distance to ``idx`` of every visual token (n,), of every prompt token (T,))."""
    if idx.numel() == 0:
        return torch.full((dist_v.shape[0],), float("inf")), torch.full((dist_p.shape[0],), float("inf"))
    return dist_v[:, idx].min(dim=1).values, dist_p[:, idx].min(dim=1).values


def mob_select(visual: torch.Tensor, prompt: torch.Tensor, k: int, fold: int = 4, prompt_share: float | None = None,
               eta: float = 1.0) -> tuple[torch.Tensor, int]:
    """One image. visual: (n, D) visual tokens; prompt: (T, D), T >= 1, the prompt tokens; keep k.

    Budget split: ``k_p = share(k, prompt_share)`` when given; otherwise radius trading over the folds
    f = 0, 1, ..., fold with k_p(f) = min(f * T, k): for each split the covering radii of the kept set
    (phase-1 prefix of length k_p joined with an unseeded farthest-point cover of k - k_p) are
    eps_p = max over prompt tokens and eps_v = max over visual tokens of the cosine distance to the nearest
    kept token; starting from f = 0, f grows while ``eta * eps_p + eps_v`` strictly decreases.
    Then phase 1 keeps its first k_p picks and farthest-point sampling seeded with them fills k.
    Returns (kept (k,) sorted int64, k_p)."""
    n = visual.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if prompt.shape[0] == 0:
        raise ValueError("MoB needs at least one prompt token")
    if k == n:
        return torch.arange(n), 0
    x = torch.nn.functional.normalize(visual.float(), dim=-1)
    p = torch.nn.functional.normalize(prompt.float(), dim=-1)
    dist_p = 1.0 - p @ x.T  # (T, n)
    t_count = p.shape[0]
    pa = prompt_aligned_order(dist_p, fold, k)
    if prompt_share is not None:
        k_p = min(share(k, prompt_share), pa.numel())
    else:
        splits = sorted({min(f * t_count, pa.numel()) for f in range(fold + 1)})
        _, snaps = farthest_points(x, k, torch.zeros(0, dtype=torch.int64), p, {k - s for s in splits})
        dist_v = 1.0 - x @ x[pa].T if pa.numel() else torch.zeros((n, 0))
        cost = []
        for s in splits:
            pv, pp = _covering(dist_v, dist_p[:, pa], torch.arange(s))
            fv, fp = snaps[k - s]
            cost.append(eta * float(torch.minimum(pp, fp).max()) + float(torch.minimum(pv, fv).max()))
        f = 0
        while f + 1 < len(splits) and cost[f + 1] < cost[f]:
            f += 1
        k_p = splits[f]
    picks, _ = farthest_points(x, k, pa[:k_p])
    return torch.sort(picks).values, k_p

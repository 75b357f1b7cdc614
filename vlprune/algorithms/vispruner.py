"""VisPruner (Zhang et al., "Beyond Text-Visual Attention: Exploiting Visual Cues for Effective Token
Pruning in VLMs", ICCV 2025, arXiv 2412.01818): keep the *important* tokens by the vision tower's
attention, then *diverse* ones by removing duplicates among the rest (§3.3). Pure torch; decisions in
docs/baselines.md.
"""

from __future__ import annotations

import torch

from vlprune.algorithms.ranking import share, top_indices

#: tokens removed per matching round (the official code's constant)
ROUND = 8


def remove_duplicates(features: torch.Tensor, candidates: torch.Tensor, keep: int) -> torch.Tensor:
    """Iterative matching and pruning until ``keep`` of ``candidates`` remain.

    features: (n, D); candidates: (R,) token indices in their current order. Each round splits the list
    into even and odd positions (A, B), scores every A token by its highest cosine similarity to B, drops
    the ``min(8, R - keep)`` highest-scoring A tokens and continues with the other A tokens (highest
    score first, ties in list order) followed by B. Returns the remaining indices (keep,) in list order."""
    if not 0 <= keep <= candidates.numel():
        raise ValueError(f"keep must be in [0, {candidates.numel()}], got {keep}")
    if candidates.numel() <= keep:
        return candidates
    x = torch.nn.functional.normalize(features[candidates].float(), dim=-1)
    sim = x @ x.T  # once: every round reads its A x B block (positions into ``candidates``)
    rest = torch.arange(candidates.numel(), device=candidates.device)
    while rest.numel() > keep:
        r = min(ROUND, rest.numel() - keep)
        a, b = rest[0::2], rest[1::2]
        if b.numel() == 0:  # a single candidate left and keep == 0
            return candidates[rest[:keep]]
        scores = sim[a][:, b].max(dim=1).values
        order = torch.sort(scores, descending=True, stable=True).indices
        rest = torch.cat([a[order[r:]], b])
    return candidates[rest]


def vispruner_select(received: torch.Tensor, features: torch.Tensor, k: int, important_ratio: float = 0.5) -> torch.Tensor:
    """One image: ``share(k, important_ratio)`` important tokens (highest ``received``, ties lower
    index), the rest of ``k`` from :func:`remove_duplicates` over the others in descending attention.

    received: (n,) attention each token receives; features: (n, D). Returns (k,) sorted int64."""
    n = received.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    order = top_indices(received, n)
    n_imp = share(k, important_ratio)
    diverse = remove_duplicates(features, order[n_imp:], k - n_imp)
    return torch.sort(torch.cat([order[:n_imp], diverse])).values

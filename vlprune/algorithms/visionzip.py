"""VisionZip (Yang et al., "VisionZip: Longer is Better but Not Necessary in Vision Language Models", CVPR
2025, arXiv 2412.04467): keep the *dominant* tokens that receive the most attention in the vision tower,
and merge the rest into a few *contextual* tokens by key similarity (§3.2-3.3). Pure torch; decisions
(no [CLS] token, the 2x2 merger, which block) in docs/baselines.md.
"""

from __future__ import annotations

import torch

from vlprune.algorithms.ranking import top_indices

#: (kept (k,), src (m,), dst (m,), weight (m,)): slot j = sum of weight * feature[src] over dst == j
Merge = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def visionzip_select(received: torch.Tensor, keys: torch.Tensor, k: int, contextual: int) -> Merge:
    """One image: keep ``k - contextual`` dominant tokens and ``contextual`` merged ones.

    received: (n,) attention each token receives; keys: (n, d) its keys. Dominant = the top
    ``k - contextual`` by ``received`` (ties lower index). Of the remaining R tokens (in token order),
    ``contextual`` targets are taken uniformly: every ``max(1, R // contextual)``-th from the first; each
    other remaining token joins the target whose key is most cosine-similar (ties lower target). A target's
    feature becomes its own feature plus the mean of the tokens that joined it (the official code's rule).
    Returns ``(kept, src, dst, weight)``: kept (k,) sorted (dominant and target tokens keep their own
    positions); output slot j = sum of ``weight[e] * feature[src[e]]`` over the entries with ``dst[e] == j``
    (plain selection: one entry of weight 1 per slot)."""
    n = received.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if not 0 <= contextual < k:
        raise ValueError(f"contextual must be in [0, {k - 1}], got {contextual}")
    dev = received.device
    dominant = top_indices(received, k - contextual)
    if contextual == 0 or k == n:
        return _selection(torch.sort(dominant).values if k < n else torch.arange(n, device=dev))
    rest_mask = torch.ones(n, dtype=torch.bool, device=dev)
    rest_mask[dominant] = False
    rest = torch.nonzero(rest_mask).view(-1)
    step = max(1, rest.numel() // contextual)
    tpos = torch.arange(0, rest.numel(), step, device=dev)[:contextual]
    targets = rest[tpos]
    is_target = torch.zeros(rest.numel(), dtype=torch.bool, device=dev)
    is_target[tpos] = True
    others = rest[~is_target]
    if others.numel() == 0:
        return _selection(torch.sort(torch.cat([dominant, targets])).values)
    kn = torch.nn.functional.normalize(keys.float(), dim=-1)
    sim = kn[others] @ kn[targets].T  # (m, c)
    join = torch.argmax(sim, dim=1)  # first maximum: ties go to the lower target
    counts = torch.bincount(join, minlength=contextual).float()
    kept, order = torch.sort(torch.cat([dominant, targets]))
    slot = torch.empty_like(order)
    slot[order] = torch.arange(order.numel(), device=dev)  # position in ``kept`` of each concatenated entry
    target_slot = slot[dominant.numel():]
    src = torch.cat([kept, others])
    dst = torch.cat([torch.arange(kept.numel(), device=dev), target_slot[join]])
    weight = torch.cat([torch.ones(kept.numel(), device=dev), 1.0 / counts[join]])
    return kept, src, dst, weight


def _selection(kept: torch.Tensor) -> Merge:
    slots = torch.arange(kept.numel(), device=kept.device)
    return kept, kept.clone(), slots, torch.ones(kept.numel(), device=kept.device)

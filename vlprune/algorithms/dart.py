"""DART (Wen et al., "Stop Looking for Important Tokens in Multimodal Language Models: Duplication Matters
More", EMNLP 2025, arXiv 2502.11494): inside the LLM at layer K, pick a few *pivot* tokens by the norm
of their keys, then keep for every pivot the visual tokens least similar to it (§3). Pure torch;
decisions (budget split over pivots, pivot order) in docs/baselines.md.
"""

from __future__ import annotations

import torch

from vlprune.algorithms.ranking import top_indices


def dart_select(image_norms: torch.Tensor, text_norms: torch.Tensor, image_hidden: torch.Tensor,
                text_hidden: torch.Tensor, k: int, pivot_image: int = 4, pivot_text: int = 4) -> torch.Tensor:
    """One image.

    image_norms: (n,) key L1 norms of the image's tokens; text_norms: (T,) of its instruction tokens;
    image_hidden: (n, D), text_hidden: (T, D) the hidden states similarity is measured on. Pivots: the
    ``min(pivot_image, k)`` image tokens and ``min(pivot_text, T)`` instruction tokens with the largest
    key norms (ties lower index); image pivots are kept. The other ``k - image pivots`` slots are split
    over the pivots as evenly as possible (earlier pivots get the remainder), pivots taken in sequence
    order (image, then instruction); each takes, among the tokens nobody took yet, those with the lowest
    cosine similarity to it (ties lower index). Returns (k,) sorted int64."""
    n = image_norms.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if k == n:
        return torch.arange(n, device=image_norms.device)
    img_piv = torch.sort(top_indices(image_norms, min(pivot_image, k))).values
    txt_piv = torch.sort(top_indices(text_norms, min(pivot_text, text_norms.shape[0]))).values
    pivots = [image_hidden[i] for i in img_piv.tolist()] + [text_hidden[t] for t in txt_piv.tolist()]
    free = k - img_piv.numel()
    if free and not pivots:
        raise ValueError("DART needs at least one pivot token (pivot_image + pivot_text >= 1)")
    taken = torch.zeros(n, dtype=torch.bool, device=image_norms.device)
    taken[img_piv] = True
    x = torch.nn.functional.normalize(image_hidden.float(), dim=-1)
    picks = [img_piv]
    base, extra = divmod(free, max(1, len(pivots)))
    for p, pivot in enumerate(pivots):
        quota = base + (1 if p < extra else 0)
        if quota == 0:
            continue
        sim = x @ torch.nn.functional.normalize(pivot.float(), dim=-1)
        sim[taken] = float("inf")
        chosen = torch.sort(sim, stable=True).indices[:quota]
        taken[chosen] = True
        picks.append(chosen)
    return torch.sort(torch.cat(picks)).values

"""Small ranking helpers shared by the token-selection algorithms (pure torch)."""

from __future__ import annotations

import math

import torch


def top_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` highest ``scores`` (n,), highest first; ties go to the lower index."""
    return torch.sort(scores.float(), descending=True, stable=True).indices[:k]


def share(k: int, fraction: float) -> int:
    """``floor(fraction * k + 0.5)`` clipped to [0, k]: a part of a budget, rounded half up like the
    runtime's budgets."""
    return max(0, min(k, int(math.floor(fraction * k + 0.5))))

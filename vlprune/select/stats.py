"""Dataset statistics: duplicate ratio (PixelPrune Appendix A) and retain ratio (§4.1)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def unique_blocks(blocks: np.ndarray) -> int:
    """Number of blocks whose content occurs exactly once. blocks: (n, R, L) any dtype."""
    n = blocks.shape[0]
    flat = np.ascontiguousarray(blocks).reshape(n, -1)
    rows = flat.view(np.dtype((np.void, flat.shape[1] * flat.dtype.itemsize))).ravel()
    _, counts = np.unique(rows, return_counts=True)
    return int((counts == 1).sum())


def duplicate_ratio(unique_and_total: Iterable[tuple[int, int]]) -> float:
    """1 - Σ unique / Σ total over images (Appendix A)."""
    u = t = 0
    for ui, ti in unique_and_total:
        u, t = u + ui, t + ti
    if t == 0:
        raise ValueError("duplicate ratio of an empty dataset is undefined")
    return 1.0 - u / t


def retain_ratio(kept_and_total: Iterable[tuple[int, int]]) -> float:
    """Σ kept / Σ total over images (dataset-level, §4.1)."""
    k = t = 0
    for ki, ti in kept_and_total:
        k, t = k + ki, t + ti
    if t == 0:
        raise ValueError("retain ratio of an empty dataset is undefined")
    return k / t

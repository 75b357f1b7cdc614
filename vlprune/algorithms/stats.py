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


def _pooled_ratio(pairs: Iterable[tuple[int, int]], what: str) -> float:
    num = den = 0
    for n, d in pairs:
        num, den = num + n, den + d
    if den == 0:
        raise ValueError(f"{what} of an empty dataset is undefined")
    return num / den


def duplicate_ratio(unique_and_total: Iterable[tuple[int, int]]) -> float:
    """1 - Σ unique / Σ total over images (Appendix A)."""
    return 1.0 - _pooled_ratio(unique_and_total, "duplicate ratio")


def retain_ratio(kept_and_total: Iterable[tuple[int, int]]) -> float:
    """Σ kept / Σ total over images (dataset-level, §4.1)."""
    return _pooled_ratio(kept_and_total, "retain ratio")

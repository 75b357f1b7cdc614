"""Same-budget baselines over block grids (PixelPrune §4.1).

Pure functions: each takes the grid shape (and, for ConnComp, block-equality maps) plus the
number of blocks ``k`` to keep, and returns sorted int64 raster indices (k,).
"""

from __future__ import annotations

import math

import numba
import numpy as np


def _check_budget(n: int, k: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"budget k={k} must be between 1 and the grid's {n} blocks")


def random_keep(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random subset of size k of range(n)."""
    _check_budget(n, k)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)


def _spaced(n: int, k: int) -> np.ndarray:
    """k evenly spaced integers in range(n) (centres of k equal bins)."""
    return np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)


def uniform_keep(grid: tuple[int, int], k: int) -> np.ndarray:
    """Evenly spaced k blocks in 2-D: a sub-grid of rows x cols (aspect of the grid, rows*cols >= k),
    then k of its points evenly spaced in raster order."""
    gh, gw = grid
    n = gh * gw
    _check_budget(n, k)
    rows = min(gh, max(1, math.ceil(math.sqrt(k * gh / gw))))
    cols = min(gw, math.ceil(k / rows))
    rows = min(gh, math.ceil(k / cols))
    sub = (_spaced(gh, rows)[:, None] * gw + _spaced(gw, cols)[None, :]).ravel()
    return np.sort(sub[_spaced(sub.size, k)])


@numba.njit(cache=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@numba.njit(cache=True)
def _components(eq_right, eq_down, gh, gw):
    parent = np.arange(gh * gw)
    for i in range(gh):
        for j in range(gw):
            k = i * gw + j
            if j + 1 < gw and eq_right[i, j]:
                a, b = _find(parent, k), _find(parent, k + 1)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if i + 1 < gh and eq_down[i, j]:
                a, b = _find(parent, k), _find(parent, k + gw)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    labels = np.empty(gh * gw, np.int64)
    for k in range(gh * gw):
        labels[k] = _find(parent, k)
    return labels


def connected_components(eq_right: np.ndarray, eq_down: np.ndarray) -> np.ndarray:
    """Component label (gh*gw,) of each block: 4-connected runs of pixel-identical neighbours.

    eq_right: bool (gh, gw-1), block (i, j) equals (i, j+1); eq_down: bool (gh-1, gw).
    Labels are the smallest raster index in each component.
    """
    gh, gw = eq_down.shape[0] + 1, eq_right.shape[1] + 1
    er = np.zeros((gh, gw), np.bool_)
    er[:, : gw - 1] = eq_right
    ed = np.zeros((gh, gw), np.bool_)
    ed[: gh - 1, :] = eq_down
    return _components(er, ed, gh, gw)


def conncomp_keep(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """ShowUI-style ConnComp: one random block per component (random components if k is smaller
    than their number), then the rest of the budget uniformly at random among the other blocks."""
    n = labels.shape[0]
    _check_budget(n, k)
    order = rng.permutation(n)
    _, first = np.unique(labels[order], return_index=True)  # a random member per component
    reps = order[first]
    if k <= reps.size:
        return np.sort(rng.choice(reps, size=k, replace=False)).astype(np.int64)
    rest = np.setdiff1d(np.arange(n), reps)
    extra = rng.choice(rest, size=k - reps.size, replace=False)
    return np.sort(np.concatenate([reps, extra])).astype(np.int64)


def resize_grid(grid: tuple[int, int], k: int) -> tuple[int, int]:
    """The largest grid (gh', gw') with gh' * gw' <= k whose aspect is the original's up to less than
    one block per side: some scale t has |gh' - gh*t| < 1 and |gw' - gw*t| < 1 (1 x 1 always
    qualifies). Ties in size go to the smaller aspect error |gw'*gh - gh'*gw|, then the smaller gh'."""
    gh, gw = grid
    _check_budget(gh * gw, k)
    best, best_key = (1, 1), (1, -abs(gh - gw))
    for h in range(1, gh + 1):
        # |w - gw*t| < 1 for some t with |h - gh*t| < 1  <=>  gw*(h-1) - gh < w*gh < gw*(h+1) + gh
        w = min(gw, k // h, (gw * (h + 1) + gh - 1) // gh)
        if w < 1 or w * gh <= gw * (h - 1) - gh:
            continue
        key = (h * w, -abs(w * gh - h * gw))
        if key > best_key:
            best, best_key = (h, w), key
    return best

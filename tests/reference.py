"""A deliberately simple reference for PixelPrune selection and decoding (SPEC.md §2).

Written from the spec, not from ``vlprune.select``: plain Python loops over blocks in scan order,
numpy only to compare two blocks, and an explicit reconstruction array for the anchored encoder.
It is slow on purpose; the tests compare the compiled selector with it.

Blocks are given as ``blocks[i, j]`` = an (R, L) array (so ``blocks`` is (gh, gw, R, L)), with a
per-column ``scale`` (L,) that turns an absolute value difference into 8-bit levels.

Distance, in whole 8-bit levels (``level = round(|x - y| * scale)``), compared with ``lim = τ·255``:

* max:  the largest level                  <= lim
* mae:  the mean level                     <= lim
* rmse: the square root of the mean of the squared levels <= lim

The statistics are whole numbers, so the comparisons are done in exact rational arithmetic
(``fractions.Fraction``) against ``lim`` -- no float rounding at ties. τ = 0 is bit-exact equality.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

ORDERS = ("pred2d", "raster", "serpentine")
METRICS = ("max", "mae", "rmse")


def levels(x: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-value absolute difference of two blocks in whole 8-bit levels (int64)."""
    d = np.abs(x.astype(np.float64) - y.astype(np.float64)) * np.asarray(scale, np.float64)
    return np.floor(d + 0.5).astype(np.int64)


def close(x: np.ndarray, y: np.ndarray, scale: np.ndarray, metric: str, tau: float) -> bool:
    """dist(x, y) <= tau (the ``≈`` of the spec)."""
    if tau == 0:
        return bool(np.array_equal(x, y))
    lim = Fraction(tau * 255.0)  # τ·255 as the float the user's τ gives
    d = levels(x, y, scale)
    if metric == "max":
        return Fraction(int(d.max())) <= lim
    if metric == "mae":
        return Fraction(int(d.sum()), d.size) <= lim
    if metric == "rmse":
        return Fraction(int((d * d).sum()), d.size) <= lim * lim
    raise ValueError(metric)


def scan(gh: int, gw: int, order: str):
    """Block positions (i, j) in scan order."""
    for i in range(gh):
        cols = list(range(gw))
        if order == "serpentine" and i % 2 == 1:
            cols.reverse()
        for j in cols:
            yield i, j


def predict(recon, i, j, prev, order, scale, metric, tau):
    """The prediction for block (i, j) from the reconstruction so far; None for the anchor."""
    if order in ("raster", "serpentine"):
        return None if prev is None else recon[prev]
    if i == 0 and j == 0:
        return None
    if i == 0:
        return recon[i, j - 1]  # row 0: left
    if j == 0:
        return recon[i - 1, j]  # column 0: up
    a, b, c = recon[i, j - 1], recon[i - 1, j], recon[i - 1, j - 1]  # left, up, up-left
    if close(c, a, scale, metric, tau) and not close(c, b, scale, metric, tau):
        return b
    return a


def encode(blocks: np.ndarray, scale, order="pred2d", metric="max", tau=0.0):
    """Reference encoder. Returns (sorted kept raster indices, reconstruction (gh, gw, R, L))."""
    gh, gw = blocks.shape[:2]
    recon = blocks.copy()  # anchored: a dropped block is overwritten by its prediction below
    kept = []
    prev = None
    for i, j in scan(gh, gw, order):
        pred = predict(recon, i, j, prev, order, scale, metric, tau)
        if pred is not None and close(blocks[i, j], pred, scale, metric, tau):
            recon[i, j] = pred
        else:
            kept.append(i * gw + j)
        prev = (i, j)
    return sorted(kept), recon


def select(blocks: np.ndarray, scale, order="pred2d", metric="max", tau=0.0) -> list[int]:
    """Sorted raster indices of the kept blocks."""
    return encode(blocks, scale, order, metric, tau)[0]


def decode(kept, kept_blocks, grid, scale, order="pred2d", metric="max", tau=0.0) -> np.ndarray:
    """Reference decoder: rebuild (gh, gw, R, L) from kept blocks (n_kept, R, L) by the same rule."""
    gh, gw = grid
    given = {int(k): kept_blocks[n] for n, k in enumerate(kept)}
    recon = np.zeros((gh, gw) + kept_blocks.shape[1:], dtype=kept_blocks.dtype)
    prev = None
    for i, j in scan(gh, gw, order):
        if i * gw + j in given:
            recon[i, j] = given[i * gw + j]
        else:
            pred = predict(recon, i, j, prev, order, scale, metric, tau)
            if pred is None:
                raise ValueError("the anchor block is not among the kept blocks")
            recon[i, j] = pred
        prev = (i, j)
    return recon

"""PixelPrune predictive coding over block grids (paper §3.2-3.3).

Pure functions over a block array ``data`` of shape (gh, gw, R, L) (block (i, j) = ``data[i, j]``)
and a per-column ``scale`` (L,) that turns absolute value differences into 8-bit levels.

The encoder is one compiled pass in scan order. Instead of copying reconstructed pixels it tracks
``src[k]``: the kept block whose content block k has in the reconstruction (``src[k] == k`` when
kept). Later predictions and the C≈A / C≈B tests read blocks through ``src``, which is exactly the
anchored encoder of §3.3.1; with τ = 0 it is exact matching. The decoder replays the same rule on
the kept blocks alone. Why a compiled kernel (numba): the anchored τ > 0 encoder is sequential by
construction (each decision reads earlier reconstructed blocks), and a single pass that reads each
block about once is what makes it cost no more than a copy of the input (docs/design.md).
"""

from __future__ import annotations

import math

import numba
import numpy as np

ORDERS = ("pred2d", "raster", "serpentine")
METRICS = ("max", "mae", "rmse")
_ORDER_CODE = {name: i for i, name in enumerate(ORDERS)}
_METRIC_CODE = {name: i for i, name in enumerate(METRICS)}


def _codes(order: str, metric: str) -> tuple[int, int]:
    """Kernel codes of ``order`` / ``metric`` (validated by the caller, e.g. :class:`PixelPrune`)."""
    if order not in _ORDER_CODE or metric not in _METRIC_CODE:
        raise ValueError(f"order must be one of {ORDERS} and metric one of {METRICS}, got {order!r}, {metric!r}")
    return _ORDER_CODE[order], _METRIC_CODE[metric]


def _bound(metric: int, tau: float, n_values: int) -> float:
    """Threshold on the kernel's accumulated 8-bit-level statistic for ``dist <= tau``."""
    lv = tau * 255.0
    if metric == 0:  # max |d| <= tau*255
        return lv
    if metric == 1:  # sum |d| <= tau*255*n
        return lv * n_values
    return lv * lv * n_values  # sum d^2 <= (tau*255)^2 * n


@numba.njit(cache=True, nogil=True)
def _equal(beq, R, Leq, a, b, gw):
    """Bit-equality of blocks a and b (raster indices) on the wide-integer view ``beq``."""
    xo, yo = (a % gw) * Leq, (b % gw) * Leq
    xr, yr = (a // gw) * R, (b // gw) * R
    for r in range(R):
        x = beq[xr + r, xo : xo + Leq]
        y = beq[yr + r, yo : yo + Leq]
        diff = 0
        for l in range(Leq):
            diff |= x[l] ^ y[l]
        if diff:
            return False
    return True


# fastmath lets LLVM vectorise the row reductions; they are counts and sums of whole numbers,
# exact in any order.
@numba.njit(cache=True, nogil=True, fastmath=True)
def _close(base, beq, R, L, Leq, gw, scale, a, b, metric, bound, exact):
    """dist(block a, block b) <= tau in 8-bit levels, with early exit per block row.

    A value difference becomes ``|x - y| * scale`` levels (whole numbers up to float rounding for
    processor rows). Max: no value may reach ``floor(bound) + 0.5``; MAE / RMSE: the sum of the
    rounded levels (or their squares) must stay <= bound. Both grid routes see the same integers.
    """
    if a == b:
        return True
    if exact:
        return _equal(beq, R, Leq, a, b, gw)
    xo, yo = (a % gw) * L, (b % gw) * L
    xr, yr = (a // gw) * R, (b // gw) * R
    thr = np.float32(math.floor(bound) + 0.5)
    half = np.float32(0.5)
    acc = 0.0
    for r in range(R):
        x = base[xr + r, xo : xo + L]
        y = base[yr + r, yo : yo + L]
        if metric == 0:
            over = 0
            for l in range(L):
                over += abs(np.float32(x[l]) - np.float32(y[l])) * scale[l] >= thr
            if over:
                return False
        else:
            s = 0.0
            for l in range(L):
                d = math.floor(abs(np.float32(x[l]) - np.float32(y[l])) * scale[l] + half)
                s += d if metric == 1 else d * d
            acc += s
            if acc > bound:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def _pos(k, gw, order):
    """Raster index of the k-th block in scan order."""
    i = k // gw
    j = k % gw
    if order == 2 and i % 2 == 1:
        j = gw - 1 - j
    return i * gw + j


@numba.njit(cache=True, nogil=True)
def _predictor(idx, prev, src, base, beq, R, L, Leq, gw, scale, order, metric, bound, exact):
    """Raster index of the block whose reconstruction predicts block ``idx`` (-1: anchor)."""
    if order != 0:
        return prev
    i = idx // gw
    j = idx % gw
    if i == 0:
        return idx - 1 if j > 0 else -1
    if j == 0:
        return idx - gw
    a = src[idx - 1]
    b = src[idx - gw]
    c = src[idx - gw - 1]
    if _close(base, beq, R, L, Leq, gw, scale, c, a, metric, bound, exact) and not _close(
        base, beq, R, L, Leq, gw, scale, c, b, metric, bound, exact
    ):
        return idx - gw
    return idx - 1


@numba.njit(cache=True, nogil=True)
def _scan(base, beq, R, L, Leq, gh, gw, kept_mask, decode, scale, order, metric, bound, exact):
    """Encoder (decode=False) or decoder (decode=True, decisions read from ``kept_mask``).

    Returns src (gh*gw,): raster index of the kept block each block is reconstructed from;
    empty if decoding finds the anchor dropped.
    """
    n = gh * gw
    src = np.empty(n, np.int64)
    prev = -1
    for k in range(n):
        idx = _pos(k, gw, order)
        if decode and kept_mask[idx]:
            src[idx] = idx
        else:
            p = _predictor(idx, prev, src, base, beq, R, L, Leq, gw, scale, order, metric, bound, exact)
            if p < 0:
                if decode:
                    return src[:0]
                src[idx] = idx
            elif decode or _close(base, beq, R, L, Leq, gw, scale, idx, src[p], metric, bound, exact):
                src[idx] = src[p]
            else:
                src[idx] = idx
        prev = idx
    return src


def _wide_view(base: np.ndarray, L: int) -> tuple[np.ndarray, int]:
    """The same bytes as the widest unsigned integers that divide a block row (for equality)."""
    nbytes = L * base.dtype.itemsize
    for dt in (np.uint64, np.uint32, np.uint16, np.uint8):
        if nbytes % np.dtype(dt).itemsize == 0:
            return base.view(dt), nbytes // np.dtype(dt).itemsize
    raise AssertionError("unreachable")


def _run(base, geometry, kept_mask, decode, scale, order, metric, tau):
    (o, m), tau = _codes(order, metric), float(tau)  # tau in [0, 1]: distances are in [0, 1] pixel units
    gh, gw, R, L = geometry
    if base.ndim != 2 or not base.flags.c_contiguous or base.shape != (gh * R, gw * L):
        raise ValueError(f"block base must be a C-contiguous ({gh * R}, {gw * L}) array, got {base.shape}")
    beq, leq = _wide_view(base, L)
    return _scan(base, beq, R, L, leq, gh, gw, kept_mask, decode, np.asarray(scale, np.float32), o, m,
                 _bound(m, tau, R * L), tau == 0.0)


@numba.njit(cache=True, nogil=True)
def _neighbour_equal(beq, R, Leq, gh, gw):
    right = np.zeros((gh, max(gw - 1, 0)), np.bool_)
    down = np.zeros((max(gh - 1, 0), gw), np.bool_)
    for i in range(gh):
        for j in range(gw):
            k = i * gw + j
            if j + 1 < gw:
                right[i, j] = _equal(beq, R, Leq, k, k + 1, gw)
            if i + 1 < gh:
                down[i, j] = _equal(beq, R, Leq, k, k + gw, gw)
    return right, down


def neighbour_equality(base: np.ndarray, geometry: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-identity of adjacent blocks: bool (gh, gw-1) right neighbours, (gh-1, gw) lower ones."""
    gh, gw, R, L = geometry
    beq, leq = _wide_view(base, L)
    return _neighbour_equal(beq, R, leq, gh, gw)


def predictive_sources(
    base: np.ndarray, geometry: tuple[int, int, int, int], scale: np.ndarray,
    order: str = "pred2d", metric: str = "max", tau: float = 0.0,
) -> np.ndarray:
    """int64 (gh*gw,): for each block, the raster index of the kept block it is reconstructed from.

    base:     C-contiguous (gh*R, gw*L); block (i, j) is ``base[i*R:(i+1)*R, j*L:(j+1)*L]``.
    geometry: (gh, gw, R, L).
    """
    return _run(base, geometry, np.zeros(0, np.bool_), False, scale, order, metric, tau)


def predictive_select(
    base: np.ndarray, geometry: tuple[int, int, int, int], scale: np.ndarray,
    order: str = "pred2d", metric: str = "max", tau: float = 0.0,
) -> np.ndarray:
    """Sorted int64 raster indices of the blocks PixelPrune keeps (τ = 0: exact; τ > 0: anchored)."""
    src = predictive_sources(base, geometry, scale, order, metric, tau)
    return np.flatnonzero(src == np.arange(src.shape[0]))


def predictive_decode(
    kept: np.ndarray, kept_blocks: np.ndarray, grid: tuple[int, int], scale: np.ndarray,
    order: str = "pred2d", metric: str = "max", tau: float = 0.0,
) -> np.ndarray:
    """Rebuild all blocks (gh, gw, R, L) from the kept ones (n_kept, R, L) by replaying the rule.

    τ = 0 gives the original grid bit-exactly (Prop. 1); τ > 0 gives every block within τ (Prop. 2).
    """
    gh, gw = grid
    kept = np.asarray(kept, np.int64)
    if kept_blocks.ndim != 3 or kept_blocks.shape[0] != kept.shape[0]:
        raise ValueError(f"kept_blocks must be (n_kept={kept.shape[0]}, R, L), got {kept_blocks.shape}")
    if kept.size and (kept.min() < 0 or kept.max() >= gh * gw):
        raise ValueError(f"kept indices must lie in [0, {gh * gw})")
    R, L = kept_blocks.shape[1:]
    full = np.zeros((gh * gw, R, L), dtype=kept_blocks.dtype)
    full[kept] = kept_blocks
    mask = np.zeros(gh * gw, dtype=np.bool_)
    mask[kept] = True
    base = np.ascontiguousarray(full.reshape(gh, gw, R, L).transpose(0, 2, 1, 3)).reshape(gh * R, gw * L)
    src = _run(base, (gh, gw, R, L), mask, True, scale, order, metric, tau)
    if src.shape[0] == 0:
        raise ValueError("cannot decode: the first block in scan order (the anchor) is not kept")
    return full[src].reshape(gh, gw, R, L)


def block_distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray, metric: str = "max") -> float:
    """dist(a, b) in [0, 1] pixel units for two blocks (R, L), measured in whole 8-bit levels."""
    if metric not in _METRIC_CODE:
        raise ValueError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")
    d = np.floor(np.abs(a.astype(np.float64) - b.astype(np.float64)) * np.asarray(scale)[None, :] + 0.5)
    if metric == "max":
        return float(d.max()) / 255.0
    if metric == "mae":
        return float(d.mean()) / 255.0
    return float(np.sqrt((d * d).mean())) / 255.0

"""GUIPruner's Stratified Structure-aware Pruning (SSP) for the current screenshot.

GUIPruner (Xu et al., 2026, arXiv 2602.23235), Sec. "Stratified Structure-aware Pruning" and the
appendix's foreground extraction. Two pure pieces, no model code:

* :func:`ui_foreground` -- which tokens of the screenshot hold UI structure (edge pipeline with
  OpenCV on the image the model sees, max-pooled to the token grid).
* :func:`ssp_select` -- the three-stratum selection from per-token importance and that mask:
  foreground top-k, background top-k, then uniform grid sampling of the rest of the budget.

Decisions (CLAHE settings, which contours, pooling, rounding, the grid sampler and its bound) are
documented in ``docs/guipruner.md``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from vlprune import options
from vlprune.families import FamilySpec, get_family
from vlprune.grid import BlockGrid


# ---------------------------------------------------------------------------------------- foreground
@dataclass(frozen=True)
class ForegroundConfig:
    """Edge pipeline settings (GUIPruner appendix; CLAHE values are vlprune's choice)."""

    blur: int = 5
    clahe_clip: float = 2.0
    clahe_tile: int = 8
    canny: tuple[tuple[int, int], ...] = ((50, 150), (100, 200))
    close: int = 3
    min_area: float = 4.0
    max_aspect: float = 50.0

    def __post_init__(self):
        options.integer("blur", self.blur, minimum=1)
        if self.blur % 2 == 0:
            raise ValueError(f"option blur must be an odd kernel size, got {self.blur}")
        if not (isinstance(self.clahe_clip, numbers.Real) and self.clahe_clip > 0):
            raise ValueError(f"option clahe_clip must be a positive number, got {self.clahe_clip!r}")
        options.integer("clahe_tile", self.clahe_tile, minimum=1)
        if not self.canny or any(len(t) != 2 or not 0 <= t[0] <= t[1] for t in self.canny):
            raise ValueError(f"option canny must be (low, high) threshold pairs with low <= high, got {self.canny!r}")
        options.integer("close", self.close, minimum=1)
        if not (isinstance(self.min_area, numbers.Real) and self.min_area >= 0):
            raise ValueError(f"option min_area must be a number >= 0, got {self.min_area!r}")
        if not (isinstance(self.max_aspect, numbers.Real) and self.max_aspect >= 1):
            raise ValueError(f"option max_aspect must be a number >= 1, got {self.max_aspect!r}")


def ui_edges(image_rgb: np.ndarray, config: ForegroundConfig | None = None) -> np.ndarray:
    """Pixel mask (H, W) bool of the kept UI structure of a uint8 (H, W, 3) RGB image.

    Grayscale -> Gaussian blur -> CLAHE -> union of the Canny maps -> morphological close; then
    every connected edge component is judged by its external contour (area >= min_area by
    ``cv2.contourArea``; bounding box w/h within [1/max_aspect, max_aspect]); the pixels of the
    components that pass are True.
    """
    cfg = config or ForegroundConfig()
    gray = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray, (cfg.blur, cfg.blur), 0)
    gray = cv2.createCLAHE(clipLimit=float(cfg.clahe_clip), tileGridSize=(cfg.clahe_tile, cfg.clahe_tile)).apply(gray)
    edges = np.zeros_like(gray)
    for lo, hi in cfg.canny:
        edges |= cv2.Canny(gray, lo, hi)
    edges = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((cfg.close, cfg.close), np.uint8))
    n_labels, labels = cv2.connectedComponents(edges, connectivity=8)
    # RETR_CCOMP: the external boundary of every component at the top level, including components
    # nested in another's hole (RETR_EXTERNAL would drop everything inside a frame)
    contours, hierarchy = cv2.findContours(edges, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    keep = np.zeros(n_labels, dtype=bool)
    for c, h in zip(contours, hierarchy[0] if hierarchy is not None else ()):
        if h[3] != -1:  # a hole boundary
            continue
        _, _, w, hgt = cv2.boundingRect(c)
        if cv2.contourArea(c) >= cfg.min_area and 1.0 / cfg.max_aspect <= w / hgt <= cfg.max_aspect:
            x, y = c[0, 0]
            keep[labels[y, x]] = True
    keep[0] = False  # label 0 is the non-edge background
    return keep[labels]


def ui_foreground(
    image_rgb: np.ndarray, grid_hw: tuple[int, int], block: int, config: ForegroundConfig | None = None
) -> np.ndarray:
    """Token-grid foreground (gh, gw) bool of the screenshot the model sees.

    image_rgb: uint8 (gh * block, gw * block, 3), the processor-resized screenshot. A token is
    foreground when any pixel of a kept edge component (:func:`ui_edges`) lies in its block (max pool).
    """
    gh, gw = (int(v) for v in grid_hw)
    img = np.asarray(image_rgb)
    if img.dtype != np.uint8 or img.shape != (gh * block, gw * block, 3):
        raise ValueError(
            f"image_rgb must be uint8 of shape ({gh * block}, {gw * block}, 3) for grid {gh}x{gw} of "
            f"{block}-pixel blocks, got {img.dtype} {img.shape}"
        )
    return ui_edges(img, config).reshape(gh, block, gw, block).any(axis=(1, 3))


def ui_foreground_from_pixel_values(
    pixel_values,
    image_grid_thw,
    family: str | FamilySpec,
    image: int = -1,
    config: ForegroundConfig | None = None,
) -> np.ndarray:
    """:func:`ui_foreground` of image ``image`` (default: the last, i.e. the current screenshot) of a
    processor batch; pixels are recovered by undoing the family's normalisation (same mask as the
    image route)."""
    spec = get_family(family)
    grids = BlockGrid.from_pixel_values(pixel_values, image_grid_thw, spec)
    if not -len(grids) <= image < len(grids):
        raise ValueError(f"image={image} is out of range for a batch of {len(grids)} images")
    grid = grids[image]
    return ui_foreground(grid.image(), grid.shape, spec.block, config)


# ---------------------------------------------------------------------------------------- selection
@dataclass(frozen=True, eq=False)
class SspSelection:
    """Result of :func:`ssp_select`; index arrays are sorted int64 positions into the n tokens.

    kept = fg_top | bg_top | grid (disjoint); ``budget`` = M = len(kept).
    """

    kept: np.ndarray
    fg_top: np.ndarray
    bg_top: np.ndarray
    grid: np.ndarray
    n_fg: int
    n_bg: int
    budget: int


def round_half_up(x: float) -> int:
    """floor(x + 0.5): 2.5 -> 3 (Python's round() would give 2)."""
    return math.floor(x + 0.5)


def ssp_budget(n: int, mu: float) -> int:
    """M = round_half_up(mu * n), at least 1 token of a non-empty screenshot."""
    return max(1, round_half_up(mu * n))


def _top(importance: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """The k members of ``pool`` (ascending indices) with the highest importance; ties: lower index."""
    order = np.argsort(-importance[pool], kind="stable")
    return np.sort(pool[order[:k]])


def _edt_sq(seeds: np.ndarray) -> np.ndarray:
    """Exact squared Euclidean distance (int64, (gh, gw)) of every cell to the nearest True cell."""
    gh, gw = seeds.shape
    big = (gh + gw) ** 2 + 1
    rows = np.arange(gh)[:, None]
    above = np.where(seeds, rows, -big)
    above = np.maximum.accumulate(above, axis=0)
    below = np.where(seeds, rows, big + gh)
    below = np.minimum.accumulate(below[::-1], axis=0)[::-1]
    vert = np.minimum(rows - above, below - rows).astype(np.int64)  # column-wise distance
    vert = np.minimum(vert, big) ** 2
    cols = np.arange(gw)
    dj2 = (cols[:, None] - cols[None, :]) ** 2  # (gw, gw)
    out = np.empty((gh, gw), np.int64)
    step = max(1, 4_000_000 // max(1, gw * gw))
    for r0 in range(0, gh, step):
        out[r0 : r0 + step] = (vert[r0 : r0 + step, None, :] + dj2[None]).min(axis=2)
    return out


def grid_sample(
    positions: np.ndarray, grid_shape: tuple[int, int], candidates: np.ndarray, kept: np.ndarray, k: int
) -> np.ndarray:
    """Pick k of ``candidates`` (token indices) spread evenly over the block grid.

    Greedy farthest-point sampling on the grid (squared Euclidean distance in blocks), seeded with
    the ``kept`` tokens: each pick is the candidate farthest from everything kept so far (ties: lower
    token index; with nothing kept, the first pick is the candidate nearest the grid centre). Bound:
    with R the largest distance from an unpicked candidate to the kept set afterwards, every two picks
    and every pick and kept token are at least R apart, and R is at most twice the smallest
    achievable with k picks.
    """
    gh, gw = grid_shape
    if k <= 0:
        return np.zeros(0, np.int64)
    if k >= candidates.size:
        return np.sort(candidates).astype(np.int64)
    r, c = positions[:, 0], positions[:, 1]
    token_at = np.full((gh, gw), -1, np.int64)
    token_at[r, c] = np.arange(positions.shape[0])
    dist = np.full(positions.shape[0], -1, np.int64)  # -1: not a candidate (kept, picked or absent)
    far = (gh + gw) ** 2  # above any squared distance on the grid
    if kept.size:
        seeds = np.zeros((gh, gw), bool)
        seeds[r[kept], c[kept]] = True
        dist[candidates] = _edt_sq(seeds)[r[candidates], c[candidates]]
        p = int(np.argmax(dist))
    else:  # nothing to be far from yet: start next to the grid centre
        dist[candidates] = far
        p = int(candidates[np.argmin((2 * r[candidates] - gh + 1) ** 2 + (2 * c[candidates] - gw + 1) ** 2)])
    picks = []
    while True:
        picks.append(p)
        if len(picks) == k:
            break
        rad = math.isqrt(int(dist[p])) + 1  # only tokens nearer to p than its distance (the max) change
        dist[p] = -1
        pr, pc = r[p], c[p]
        win = token_at[max(0, pr - rad) : pr + rad + 1, max(0, pc - rad) : pc + rad + 1]
        ids = win[win >= 0]
        ids = ids[dist[ids] >= 0]
        dist[ids] = np.minimum(dist[ids], (r[ids] - pr) ** 2 + (c[ids] - pc) ** 2)
        p = int(np.argmax(dist))
    return np.sort(np.asarray(picks, np.int64))


def _check_tokens(importance, foreground, positions, grid_shape) -> tuple:
    imp = np.asarray(importance)
    if imp.ndim != 1 or imp.size == 0 or not np.issubdtype(imp.dtype, np.number):
        raise ValueError(f"importance must be a non-empty 1-D array of scores, got {imp.dtype} {imp.shape}")
    imp = imp.astype(np.float64)
    if not np.isfinite(imp).all():
        raise ValueError(f"importance has {int((~np.isfinite(imp)).sum())} non-finite scores (NaN or inf)")
    n = imp.size
    fg = np.asarray(foreground)
    if fg.dtype != np.bool_ or fg.shape != (n,):
        raise ValueError(f"foreground must be a bool array of shape ({n},), got {fg.dtype} {fg.shape}")
    if (
        not isinstance(grid_shape, (tuple, list)) or len(grid_shape) != 2
        or not all(isinstance(v, numbers.Integral) and v > 0 for v in grid_shape)
    ):
        raise ValueError(f"grid_shape must be (rows, cols) of positive integers, got {grid_shape!r}")
    gh, gw = int(grid_shape[0]), int(grid_shape[1])
    if positions is None:
        if n != gh * gw:
            raise ValueError(
                f"{n} tokens but grid_shape {gh}x{gw} has {gh * gw} blocks; pass positions for a subset"
            )
        pos = np.stack(np.divmod(np.arange(n), gw), axis=1)
    else:
        pos = np.asarray(positions)
        if pos.shape != (n, 2) or not np.issubdtype(pos.dtype, np.integer):
            raise ValueError(
                f"positions must be an integer array of shape ({n}, 2) (row, col), got {pos.dtype} {pos.shape}"
            )
        pos = pos.astype(np.int64)
        bad = (pos[:, 0] < 0) | (pos[:, 0] >= gh) | (pos[:, 1] < 0) | (pos[:, 1] >= gw)
        if bad.any():
            raise ValueError(f"positions[{int(np.argmax(bad))}] = {pos[bad][0].tolist()} is outside the {gh}x{gw} grid")
        if np.unique(pos[:, 0] * gw + pos[:, 1]).size != n:
            raise ValueError("positions hold the same block twice")
    return imp, fg, pos, (gh, gw)


#: how SSP fills the budget left after the two saliency strata (``ssp_select(fill=...)``)
FILLS = ("grid", "random")


def random_fill(candidates: np.ndarray, k: int, seed: int, n: int) -> np.ndarray:
    """k of ``candidates`` drawn uniformly without replacement (the "random sampling" ablation of the
    structure stratum), seeded by (seed, n, k): the same screenshot gets the same picks."""
    if k <= 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng([seed, n, k])
    return np.sort(rng.choice(np.asarray(candidates, np.int64), size=min(k, candidates.size), replace=False))


def ssp_select(
    importance,
    foreground,
    mu: float,
    rho: float,
    *,
    grid_shape: tuple[int, int],
    positions=None,
    fill: str = "grid",
    seed: int = 0,
) -> SspSelection:
    """SSP's stratified selection of the current screenshot's tokens (GUIPruner, SSP section).

    importance: (n,) float, per-token score (higher = keep first), tokens in raster order.
    foreground: (n,) bool, from :func:`ui_foreground`.
    grid_shape: (gh, gw), the image's full block grid; positions: (n, 2) int (row, col) of each token
                on it (default: the n = gh * gw tokens of the full grid in raster order).
    fill:       ``"grid"`` (the paper's uniform grid sampling, :func:`grid_sample`) or ``"random"`` (the
                paper's ablation: a seeded uniform random subset, :func:`random_fill`).

    Budget M = max(1, floor(mu * n + 0.5)); keep the top floor(mu * n_fg) foreground tokens, then the
    top floor(mu * rho * n_bg) background tokens (these two never exceed M; rho = 0 drops the background
    stratum), then fill up to M over the tokens not yet kept. Ties go to the lower index; deterministic.
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    imp, fg, pos, shape = _check_tokens(importance, foreground, positions, grid_shape)
    n = imp.size
    fg_idx, bg_idx = np.flatnonzero(fg), np.flatnonzero(~fg)
    budget = ssp_budget(n, mu)
    # floor(mu*n_fg) + floor(mu*rho*n_bg) <= mu*n < M + 0.5, so both fit; min() only guards rounding
    k_fg = min(math.floor(mu * fg_idx.size), budget)
    k_bg = min(math.floor(mu * rho * bg_idx.size), budget - k_fg)
    fg_top = _top(imp, fg_idx, k_fg)
    bg_top = _top(imp, bg_idx, k_bg)
    taken = np.concatenate([fg_top, bg_top])
    rest = np.setdiff1d(np.arange(n), taken)
    if fill == "grid":
        grid = grid_sample(pos, shape, rest, taken, budget - taken.size)
    else:
        grid = random_fill(rest, budget - taken.size, seed, n)
    kept = np.sort(np.concatenate([taken, grid]))
    return SspSelection(kept, fg_top, bg_top, grid, int(fg_idx.size), int(bg_idx.size), budget)

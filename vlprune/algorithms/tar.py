"""GUIPruner's Temporal-Adaptive Resolution (TAR) for history screenshots.

GUIPruner (Xu et al., 2026, arXiv 2602.23235), Sec. "Temporal-Adaptive Resolution": the history
frames of a GUI-agent step share one token budget ``B = lam * sum_k T_k`` that is split by a linear
"fading memory" schedule, newest frame largest; each frame is then resized once, before the image
processor, so that it yields its share of tokens. The current screenshot is never touched.

Frame ``k = 1`` is the newest, ``k = N`` the oldest::

    w_k = gamma + (1 - gamma) * (N - k) / (N - 1)      (w = 1 when N = 1)
    q_k = B * w_k / sum(w)

so the newest frame has weight 1 and the oldest weight ``gamma``. ``allocation="uniform"`` (the paper's
ablation of the schedule) gives every frame ``q_k = lam * T_k`` instead: all frames scaled by the same
factor (for frames of one size the same as ``gamma = 1``). Quotas are computed in exact
rational arithmetic (``lam`` and ``gamma`` converted exactly), so the per-side floors below are exact
and ``lam = gamma = 1`` keeps same-size frames whole. The rules for sides, caps and the processor's
``min_pixels`` floor are documented in ``docs/guipruner.md``.

The functions take validated options (``lam`` in (0, 1], ``gamma`` in [0, 1], ``allocation``, pixel
bounds): the ``tar`` method and :func:`vlprune.resize_history` check them with vlprune's option rules.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
from PIL import Image

from vlprune.families import FamilySpec, get_family
from vlprune.grid import MAX_IMAGE_PIXELS, ImageError, ImageLike, load_image, smart_resize


@dataclass(frozen=True)
class TarFrame:
    """The TAR plan of one history frame (sizes are (width, height) in pixels).

    index:         position in the history, 0 = oldest.
    age:           k of the paper, 1 = newest ... N = oldest.
    size:          the frame's original size.
    full_size:     the processor's resize of the original (``smart_resize``, factor = block).
    target:        the size to resize the original to; multiples of the block, mapped to itself by
                   the processor configured with the same min/max pixels.
    tokens_before: T_k, LLM tokens of the frame at ``full_size``.
    tokens_after:  LLM tokens at ``target`` (``<= tokens_before``).
    weight:        w_k.
    quota:         q_k = B * w_k / sum(w) (may exceed ``tokens_before``; the frame is then kept whole).
    """

    index: int
    age: int
    size: tuple[int, int]
    full_size: tuple[int, int]
    target: tuple[int, int]
    tokens_before: int
    tokens_after: int
    weight: float
    quota: float

    @property
    def resized(self) -> bool:
        """True when TAR shrinks the frame below the processor's own resize."""
        return self.target != self.full_size


#: how TAR splits the history budget (``tar_plan(allocation=...)``)
ALLOCATIONS = ("linear", "uniform")


def _exact_weights(n: int, gamma: float) -> list[Fraction]:
    g = Fraction(gamma)
    if n == 1:
        return [Fraction(1)]
    return [g + (1 - g) * Fraction(n - k, n - 1) for k in range(1, n + 1)]


def tar_weights(n: int, gamma: float) -> np.ndarray:
    """float64 (n,) weights w_k, k = 1 (newest) ... n (oldest): from 1 down to ``gamma``."""
    return np.array([float(w) for w in _exact_weights(n, gamma)], dtype=np.float64)


def _scaled_grid(gh: int, gw: int, quota: Fraction) -> tuple[int, int]:
    """Grid of a (gh, gw) frame scaled by sqrt(quota / T) per side, each side floored, never enlarged.

    ``floor(g * sqrt(q / T)) == isqrt(floor(q * g**2 / T))`` exactly. When one side would be 0 blocks
    (a frame far more elongated than the per-side scale allows) it is kept at one block and the other
    side is capped at ``floor(q)`` blocks, so the frame still holds at most ``max(q, 1)`` tokens.
    """
    t = gh * gw
    if quota >= t:
        return gh, gw
    rows = math.isqrt(math.floor(quota * gh * gh / t))
    cols = math.isqrt(math.floor(quota * gw * gw / t))
    if rows == 0:
        return 1, max(1, min(gw, math.floor(quota)))
    if cols == 0:
        return max(1, min(gh, math.floor(quota))), 1
    return rows, cols


def _floor_grid(gh: int, gw: int, min_blocks: Fraction) -> tuple[int, int]:
    """Smallest grid on the frame's scaling path s -> (max(1, floor(gh s)), max(1, floor(gw s))),
    s in (0, 1], with at least ``min_blocks`` blocks (the processor's min_pixels floor)."""
    cands = [(a, max(1, gw * a // gh)) for a in range(1, gh + 1)]
    cands += [(max(1, gh * b // gw), b) for b in range(1, gw + 1)]
    ok = [c for c in cands if c[0] * c[1] >= min_blocks]
    return min(ok, key=lambda c: c[0] * c[1]) if ok else (gh, gw)


def _full_grid(size, i: int, spec: FamilySpec, lo: int, hi: int) -> tuple[int, int]:
    if (
        not isinstance(size, (tuple, list)) or len(size) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValueError(f"sizes[{i}] must be a (width, height) pair of positive integers, got {size!r}")
    w, h = int(size[0]), int(size[1])
    try:
        fh, fw = smart_resize(h, w, spec.block, lo, hi)
    except ImageError as exc:
        raise ImageError(f"history frame {i}: {exc}") from None
    return fh // spec.block, fw // spec.block


def tar_plan(
    sizes: Sequence[tuple[int, int]],
    lam: float,
    gamma: float,
    family: str | FamilySpec,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    allocation: str = "linear",
) -> list[TarFrame]:
    """TAR sizes for history frames of (width, height) ``sizes``, chronological (oldest first).

    ``allocation``: ``"linear"`` (the paper's fading-memory quotas) or ``"uniform"`` (``q_k = lam * T_k``).

    ``min_pixels`` / ``max_pixels`` are the image processor's (family defaults when None); the
    processor run with the same values maps every ``target`` to itself, so its token count equals
    ``tokens_after``. Guarantees: ``sum(tokens_after) <= lam * sum(tokens_before)`` (else
    ``ValueError`` naming the frames that cannot shrink further), ``tokens_after <= tokens_before``,
    and a newer frame of the same size never gets fewer tokens than an older one.
    """
    spec = get_family(family)
    lam_f = Fraction(lam)
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {', '.join(ALLOCATIONS)}, got {allocation!r}")
    lo = spec.min_pixels if min_pixels is None else int(min_pixels)
    hi = spec.max_pixels if max_pixels is None else int(max_pixels)
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        raise ValueError("sizes must be a non-empty sequence of (width, height) history frame sizes, oldest first")
    n = len(sizes)
    weights = _exact_weights(n, gamma)[::-1]  # chronological: oldest (k = n) first
    grids = [_full_grid(s, i, spec, lo, hi) for i, s in enumerate(sizes)]
    budget = lam_f * sum(gh * gw for gh, gw in grids)
    total_w = sum(weights)
    min_blocks = Fraction(lo, spec.block**2)
    plan = []
    for i, ((gh, gw), w) in enumerate(zip(grids, weights)):
        quota = budget * w / total_w if allocation == "linear" else lam_f * gh * gw
        rows, cols = _scaled_grid(gh, gw, quota)
        if rows * cols < min_blocks:  # the processor would upscale it: raise it to its floor
            rows, cols = _floor_grid(gh, gw, min_blocks)
        b = spec.block
        if smart_resize(rows * b, cols * b, b, lo, hi) != (rows * b, cols * b):
            raise ValueError(
                f"history frame {i}: the processor (min_pixels={lo}, max_pixels={hi}) would resize its "
                f"{cols * b}x{rows * b} target again; widen the min_pixels..max_pixels range"
            )
        plan.append(TarFrame(
            index=i, age=n - i, size=(int(sizes[i][0]), int(sizes[i][1])), full_size=(gw * b, gh * b),
            target=(cols * b, rows * b), tokens_before=gh * gw, tokens_after=rows * cols,
            weight=float(w), quota=float(quota),
        ))
    used = sum(f.tokens_after for f in plan)
    if used > budget:
        over = [f.index for f in plan if f.tokens_after > f.quota]
        raise ValueError(
            f"TAR cannot fit {n} history frames into lam * sum(T) = {float(budget):.1f} tokens "
            f"(lam={float(lam_f)}, gamma={gamma}): they need {used} tokens because frames {over} "
            f"(0 = oldest) cannot go below the processor's floor of max(1 token, min_pixels={lo}); raise lam "
            f"or gamma, or run the image processor with a lower min_pixels (e.g. {spec.block**2}, one token) "
            f"and pass the same min_pixels here"
        )
    return plan


def _history_list(history) -> list:
    if isinstance(history, (str, bytes, Image.Image)) or hasattr(history, "shape") or not isinstance(history, Sequence):
        raise ValueError(
            f"history must be a list of history screenshots (oldest first), got {type(history).__name__}"
        )
    if len(history) == 0:
        raise ValueError("history is empty: pass at least one history screenshot (oldest first)")
    return list(history)


def resize_history(
    history: Sequence[ImageLike],
    lam: float,
    gamma: float = 0.2,
    family: str | FamilySpec = "qwen2-vl",
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    allocation: str = "linear",
) -> list[Image.Image]:
    """TAR on history screenshots (paths, PIL images or uint8 arrays; chronological, oldest first;
    never the current screenshot): RGB PIL images resized once (bicubic, as the processor does)
    straight to each frame's :func:`tar_plan` target. A frame already at its target is returned
    unresampled. Feed the results to the image processor with the same min/max pixels.
    """
    frames = _history_list(history)
    images = []
    for i, src in enumerate(frames):
        try:
            images.append(load_image(src, max_image_pixels=max_image_pixels))
        except ImageError as exc:
            raise ImageError(f"history[{i}]: {exc}") from None
    plan = tar_plan([im.size for im in images], lam, gamma, family, min_pixels, max_pixels, allocation)
    return [
        im if im.size == f.target else im.resize(f.target, resample=Image.Resampling.BICUBIC)
        for im, f in zip(images, plan)
    ]

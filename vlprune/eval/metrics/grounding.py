"""Point-in-box grounding accuracy and the ScreenSpot aggregations.

Rule (SeeClick ``pretrain/screenspot_test.py``; ScreenSpot-Pro ``eval_screenspot_pro.py``): a predicted
point is correct iff ``x1 <= px <= x2 and y1 <= py <= y2`` (edges inclusive), point and box in the same
frame -- here normalised [0, 1] of the original screenshot. A box answer is scored by its centre
(:func:`vlprune.eval.coords.find_point` does that); an unparseable answer is wrong and stays in the
denominator.

The ScreenSpot aggregations (``micro``, ``cell_mean``) are in :mod:`vlprune.eval.metrics.aggregate`.
"""

from __future__ import annotations

import math
from typing import Sequence


def _finite(values, n: int, what: str) -> tuple[float, ...]:
    if len(values) != n or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be {n} finite numbers, got {values!r}")
    return tuple(float(v) for v in values)


def point_in_box(point: Sequence[float], box: Sequence[float]) -> bool:
    """Inclusive containment of ``point`` (x, y) in ``box`` (x1, y1, x2, y2), both in one frame."""
    px, py = _finite(point, 2, "point")
    x1, y1, x2, y2 = _finite(box, 4, "box")
    return x1 <= px <= x2 and y1 <= py <= y2


def xywh_to_xyxy(box: Sequence[float]) -> tuple[float, float, float, float]:
    """[left, top, width, height] -> [left, top, right, bottom] (ScreenSpot v1 / v2 boxes)."""
    x, y, w, h = _finite(box, 4, "xywh box")
    if w < 0 or h < 0:
        raise ValueError(f"xywh box has a negative width or height: {box!r}")
    return x, y, x + w, y + h


def normalise_box(box: Sequence[float], size: Sequence[int]) -> tuple[float, float, float, float]:
    """Pixel xyxy box -> normalised xyxy, dividing by the image (width, height)."""
    x1, y1, x2, y2 = _finite(box, 4, "box")
    w, h = _finite(size, 2, "image size")
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive, got {size!r}")
    if x2 < x1 or y2 < y1:
        raise ValueError(f"box has x2 < x1 or y2 < y1: {box!r}")
    return x1 / w, y1 / h, x2 / w, y2 / h

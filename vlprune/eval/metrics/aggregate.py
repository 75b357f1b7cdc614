"""Aggregations of per-sample scores into dataset numbers.

* ``micro``     -- all samples pooled (every ScreenSpot-Pro filter, ``eval_screenspot_pro.py``;
  VLMEvalKit ``Overall_Accuracy``; the mean of per-question scores for the VQA metrics).
* ``cell_mean`` -- unweighted mean of per-cell accuracies, cells = split x {text, icon}
  (ShowUI ``main/eval_screenspot.py`` "Avg").

Empty groups give None (no accuracy is defined), never 0.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence


def micro(values: Iterable[float]) -> float | None:
    """Mean of all values (pooled samples); None when there are none."""
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


def cell_mean(cells: Mapping[Any, Sequence[float]]) -> float | None:
    """Unweighted mean of the non-empty cells' means; None when every cell is empty."""
    means = [m for m in (micro(v) for v in cells.values()) if m is not None]
    return sum(means) / len(means) if means else None


def group(items: Iterable[tuple[Any, float]]) -> dict[Any, list[float]]:
    """(key, value) pairs -> key -> values, keys in first-seen order."""
    out: dict[Any, list[float]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


AGGREGATIONS: dict[str, Callable[[Mapping[Any, Sequence[float]]], float | None]] = {
    "micro": lambda cells: micro(v for vals in cells.values() for v in vals),
    "cell_mean": cell_mean,
}

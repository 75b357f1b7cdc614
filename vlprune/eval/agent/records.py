"""Typed records of multi-step GUI-agent data: :class:`Action`, :class:`Step`, :class:`Episode`.

Every benchmark loader (AITW, Mind2Web, GUI-Odyssey, AndroidControl) and the trajectory reader
produce these records, so prompts, parsers and metrics see one vocabulary:

* points are **normalised (x, y) in [0, 1] of the original screenshot** (x to the right, y down);
* a scroll's ``direction`` is the **content-scroll direction**: ``down`` reveals what lies below, the
  finger moves up (AndroidControl's ``direction``, AITW's ``scroll down``; GUI-Odyssey's
  ``SCROLL: UP`` names the finger and is flipped on load).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vlprune.eval.base import ImageRef

#: action type -> (needs a point, needs text field name or None)
ACTION_TYPES: dict[str, tuple[bool, str | None]] = {
    "click": (True, None),
    "long_press": (True, None),
    "hover": (True, None),
    "select": (True, "text"),  # web <select>: point of the element, text = option chosen
    "type": (False, "text"),  # point optional (web forms type into an element)
    "scroll": (False, None),  # needs ``direction``
    "open_app": (False, "app"),
    "enter": (False, None),  # point optional (Mind2Web ENTER on an element)
    "back": (False, None),
    "home": (False, None),
    "recent": (False, None),  # the app switcher (Android KEY_APPSELECT)
    "wait": (False, None),
    "finish": (False, None),  # task complete
    "impossible": (False, None),  # task judged infeasible
}
#: types that may carry a point without requiring one
OPTIONAL_POINT = ("type", "enter", "scroll")

DIRECTIONS = ("up", "down", "left", "right")
OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}
#: content-scroll direction -> a fixed finger swipe (start, end) as normalised (x, y): the swipes AITW's
#: evaluators substitute for scrolls (SeeClick ``agent_tasks/action_matching.py``), also used to write a
#: scroll as a swipe into a prompt
FIXED_SWIPES = {
    "down": ((0.5, 0.8), (0.5, 0.2)),
    "up": ((0.5, 0.2), (0.5, 0.8)),
    "left": ((0.2, 0.5), (0.8, 0.5)),
    "right": ((0.8, 0.5), (0.2, 0.5)),
}


class RecordError(ValueError):
    """An action / step / episode with missing or malformed fields."""


def swipe_direction(start, end) -> str:
    """Finger direction of a swipe from ``start`` to ``end`` ((x, y), y down): the dominant axis of
    ``end - start``; a tie is vertical (GUI-Odyssey ``data/format_converter.py``)."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    if abs(dx) > abs(dy):
        return "left" if dx < 0 else "right"
    return "up" if dy < 0 else "down"


def _check_point(point, what: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError):
        raise RecordError(f"{what}: point must be two numbers, got {point!r}") from None
    if not (math.isfinite(x) and math.isfinite(y) and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise RecordError(f"{what}: point must be normalised (x, y) in [0, 1], got {point!r}")
    return (x, y)


@dataclass(frozen=True)
class Action:
    """One GUI action.

    type:      one of :data:`ACTION_TYPES`.
    point:     normalised (x, y) of the original screenshot, or None.
    text:      typed text (``type``) or chosen option (``select``).
    direction: content-scroll direction of a ``scroll`` (see the module docstring).
    app:       app name of ``open_app``.
    """

    type: str
    point: tuple[float, float] | None = None
    text: str | None = None
    direction: str | None = None
    app: str | None = None

    def __post_init__(self):
        if self.type not in ACTION_TYPES:
            raise RecordError(f"unknown action type {self.type!r}; expected one of {', '.join(ACTION_TYPES)}")
        needs_point, needs_field = ACTION_TYPES[self.type]
        if self.point is not None:
            if not needs_point and self.type not in OPTIONAL_POINT:
                raise RecordError(f"action {self.type!r} takes no point, got {self.point!r}")
            object.__setattr__(self, "point", _check_point(self.point, f"action {self.type!r}"))
        elif needs_point:
            raise RecordError(f"action {self.type!r} needs a point")
        if needs_field is not None and not isinstance(getattr(self, needs_field), str):
            raise RecordError(f"action {self.type!r} needs a string {needs_field!r}")
        if self.type == "scroll":
            if self.direction not in DIRECTIONS:
                raise RecordError(f"scroll direction must be one of {DIRECTIONS}, got {self.direction!r}")
        elif self.direction is not None:
            raise RecordError(f"action {self.type!r} takes no direction")

    def to_json(self) -> dict[str, Any]:
        """Plain dict with only the fields that are set (points as lists)."""
        out: dict[str, Any] = {"type": self.type}
        if self.point is not None:
            out["point"] = [self.point[0], self.point[1]]
        for name in ("text", "direction", "app"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Action":
        if not isinstance(d, dict) or "type" not in d:
            raise RecordError(f"an action must be a dict with a 'type', got {d!r}")
        unknown = set(d) - {"type", "point", "text", "direction", "app"}
        if unknown:
            raise RecordError(f"action has unknown fields {sorted(unknown)}")
        point = d.get("point")
        return cls(d["type"], tuple(point) if point is not None else None, d.get("text"), d.get("direction"),
                   d.get("app"))


@dataclass
class Step:
    """One step of an episode: the screenshot the agent saw and the ground-truth action it took.

    id:          the step's id inside its episode (sample id = ``<episode id>:<step id>``).
    instruction: low-level instruction of this step (AndroidControl / GUI-Odyssey), if any.
    reasoning:   free-text rationale of the step, if the data has one.
    scored:      False for a step kept only as history (the published evaluator skips scoring it).
    meta:        dataset-specific ground truth the metric needs (boxes, ...), JSON-able.
    """

    id: str
    screenshot: ImageRef
    action: Action
    instruction: str | None = None
    reasoning: str | None = None
    scored: bool = True
    meta: dict = field(default_factory=dict)


@dataclass
class Episode:
    """A task demonstration: ``goal`` (high-level instruction) and its steps in order."""

    id: str
    goal: str
    steps: list[Step]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.goal, str) or not self.goal.strip():
            raise RecordError(f"episode {self.id!r}: goal must be a non-empty string")
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise RecordError(f"episode {self.id!r}: step ids repeat: {ids}")

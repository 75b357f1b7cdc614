"""AITW action matching and step accuracy, as SeeClick scores its AITW split.

Source: SeeClick ``agent_tasks/action_matching.py`` (adapted from google-research
``android_in_the_wild/action_matching.py``) and ``agent_tasks/aitw_test.py``; ShowUI ``main/utils_aitw.py``
computes the same matching.

An AITW action here is :class:`AitwAction`: the AITW action-type id, touch and lift points as
**(y, x)** normalised, and the lowercased typed text. Gesture-free actions have touch = lift = (-1, -1).
Scrolls, ground truth and prediction alike, are replaced by fixed swipes, so only their axis counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from vlprune.eval.agent.records import FIXED_SWIPES  # content direction -> fixed (touch, lift), (x, y)

# AITW ``action_type`` enum ids
TYPE, DUAL_POINT, PRESS_BACK, PRESS_HOME, PRESS_ENTER = 3, 4, 5, 6, 7
STATUS_TASK_COMPLETE, STATUS_TASK_IMPOSSIBLE = 10, 11
NO_ID = -1  # a predicted action type AITW has no id for

TAP_DISTANCE = 0.14  # two taps outside a common box match within this (y, x) distance
SWIPE_DISTANCE = 0.04  # a dual-point action is a tap iff touch and lift are within this
BOX_ENLARGE = 1.4  # each annotation box grows by 1.4x its height / width in total

#: canonical gesture-free action types -> AITW id
SIMPLE_IDS = {"type": TYPE, "back": PRESS_BACK, "home": PRESS_HOME, "enter": PRESS_ENTER,
              "finish": STATUS_TASK_COMPLETE, "impossible": STATUS_TASK_IMPOSSIBLE}
CATEGORIES = ("general", "install", "googleapps", "single", "webshopping")


@dataclass(frozen=True)
class AitwAction:
    action_type: int
    touch_yx: tuple[float, float] = (-1.0, -1.0)
    lift_yx: tuple[float, float] = (-1.0, -1.0)
    typed_text: str = ""


def from_action(action: dict) -> AitwAction:
    """A canonical action dict (``{"type", "point", "text", "direction"}``) -> :class:`AitwAction`.

    Taps keep their point; scrolls become the fixed swipe of their direction; everything else is
    gesture-free. Types AITW has no id for (long_press, open_app, ...) get id -1, equal to no
    ground-truth type.
    """
    kind = action["type"]
    if kind == "click":
        x, y = action["point"]
        return AitwAction(DUAL_POINT, (y, x), (y, x))
    if kind == "scroll":
        (tx, ty), (lx, ly) = FIXED_SWIPES[action["direction"]]
        return AitwAction(DUAL_POINT, (ty, tx), (ly, lx))
    text = (action.get("text") or "").lower() if kind == "type" else ""
    return AitwAction(SIMPLE_IDS.get(kind, NO_ID), typed_text=text)


def is_tap(touch_yx, lift_yx) -> bool:
    return math.dist(touch_yx, lift_yx) <= SWIPE_DISTANCE


def enlarge_boxes(boxes_yxhw: Sequence[Sequence[float]], factor: float = BOX_ENLARGE) -> list[tuple]:
    """(y, x, h, w) boxes grown by ``factor`` x their height / width in total, centred, clipped:
    y' = max(0, y - factor*h/2), h' = min(1, h + factor*h) (same for x / w)."""
    out = []
    for y, x, h, w in boxes_yxhw:
        dh, dw = factor * h, factor * w
        out.append((max(0.0, y - dh / 2), max(0.0, x - dw / 2), min(1.0, h + dh), min(1.0, w + dw)))
    return out


def inside(yx, box) -> bool:
    """(y, x) inside a (y, x, h, w) box, edges included."""
    y, x = yx
    top, left, h, w = box
    return top <= y <= top + h and left <= x <= left + w


def taps_match(pred_yx, gt_yx, boxes_yxhw) -> bool:
    """Both points inside one enlarged box, or within :data:`TAP_DISTANCE` of each other."""
    boxes = enlarge_boxes(boxes_yxhw)
    if any(inside(pred_yx, b) and inside(gt_yx, b) for b in boxes):
        return True
    return math.dist(pred_yx, gt_yx) <= TAP_DISTANCE


def _main_axis(touch_yx, lift_yx) -> int:
    """0 (y) or 1 (x): the axis of the larger |delta|; a tie is y (numpy argmax takes the first)."""
    dy, dx = abs(lift_yx[0] - touch_yx[0]), abs(lift_yx[1] - touch_yx[1])
    return 1 if dx > dy else 0


def actions_match(pred: AitwAction, gt: AitwAction, boxes_yxhw: Sequence[Sequence[float]]) -> bool:
    """SeeClick / AITW ``check_actions_match``.

    Raises ValueError when ``boxes_yxhw`` is empty: the reference builds the annotation array before
    looking at the action types and fails on an empty one, so such a step scores 0 whatever the action.
    """
    if len(boxes_yxhw) == 0:
        raise ValueError("empty annot_position")
    if pred.action_type != DUAL_POINT or gt.action_type != DUAL_POINT:
        return pred.action_type == gt.action_type  # typed text is not compared here
    pred_tap, gt_tap = is_tap(pred.touch_yx, pred.lift_yx), is_tap(gt.touch_yx, gt.lift_yx)
    if pred_tap != gt_tap:
        return False
    if pred_tap:
        return taps_match(pred.touch_yx, gt.touch_yx, boxes_yxhw)
    return _main_axis(pred.touch_yx, pred.lift_yx) == _main_axis(gt.touch_yx, gt.lift_yx)


def text_match(pred_text: str, gt_text: str) -> bool:
    """Text accuracy of ``aitw_test.py``: equal, or either contains the other (both lowercased)."""
    return pred_text == gt_text or pred_text in gt_text or gt_text in pred_text


def step_scores(pred: AitwAction, gt: AitwAction, boxes_yxhw) -> dict[str, float]:
    """Per-step numbers of ``aitw_test.py``: ``correct`` (action match), ``type_correct``, and, where the
    ground truth has them, ``text_correct`` (TYPE), ``click_correct`` (tap) / ``scroll_correct`` (swipe)."""
    try:
        correct = float(actions_match(pred, gt, boxes_yxhw))
    except ValueError:
        return zero_scores(gt) | {"empty_annotations": 1.0}
    out = {"correct": correct, "type_correct": float(pred.action_type == gt.action_type)}
    if gt.action_type == TYPE:
        out["text_correct"] = float(text_match(pred.typed_text, gt.typed_text))
    if gt.action_type == DUAL_POINT:
        out["click_correct" if is_tap(gt.touch_yx, gt.lift_yx) else "scroll_correct"] = correct
    return out


def zero_scores(gt: AitwAction) -> dict[str, float]:
    """The scores of an unparseable prediction (every applicable number 0)."""
    out = {"correct": 0.0, "type_correct": 0.0}
    if gt.action_type == TYPE:
        out["text_correct"] = 0.0
    if gt.action_type == DUAL_POINT:
        out["click_correct" if is_tap(gt.touch_yx, gt.lift_yx) else "scroll_correct"] = 0.0
    return out


_PER_CATEGORY = {"step_accuracy": "correct", "type_accuracy": "type_correct", "text_accuracy": "text_correct",
                 "click_accuracy": "click_correct", "scroll_accuracy": "scroll_correct"}


def summarize(scores_by_category: dict[str, list[dict]]) -> dict:
    """Per category: each accuracy = mean of its per-step number over the steps that have it (step
    accuracy over every step run, unparseable ones included as 0), also flat as
    ``<category>_step_accuracy``; overall ``step_accuracy`` = the **unweighted mean of the categories'
    step accuracies** (``aitw_test.py`` divides the sum by 5; here: the categories present)."""
    cats = {}
    for cat, rows in scores_by_category.items():
        entry = {"n": len(rows)}
        for name, key in _PER_CATEGORY.items():
            vals = [r[key] for r in rows if key in r]
            entry[name] = sum(vals) / len(vals) if vals else None
        cats[cat] = entry
    accs = [c["step_accuracy"] for c in cats.values() if c["step_accuracy"] is not None]
    out = {"step_accuracy": sum(accs) / len(accs) if accs else None}
    out.update({f"{cat}_step_accuracy": c["step_accuracy"] for cat, c in cats.items()})
    out["categories"] = cats
    return out

"""GUI-Odyssey action matching score (AMS) and success rate (SR).

Source: OpenGVLab/GUI-Odyssey ``src/eval_mm/GUIOdyssey_action_matching.py`` and
``src/eval_mm/evaluate_GUIOdyssey.py``; answer strings from ``data/format_converter.py``.

An action is compared as (command, info), the command being one of ``CLICK``, ``LONG_PRESS``,
``SCROLL``, ``TYPE``, ``PRESS_HOME``, ``PRESS_BACK``, ``PRESS_RECENT``, ``COMPLETE``, ``IMPOSSIBLE``.
Points are k-norm (0-1000) like the annotations; SCROLL info is the **finger** direction.

Variants of the click check (``click_rule``):

* ``"sam2"`` (2025 code): the point inside ``sam2_bbox`` (k-norm xyxy, inclusive) **or** within 0.14
  of the ground truth in 1000-normalised units; a click whose ``sam2_bbox`` is empty raises in the
  reference and is scored wrong;
* ``"distance"`` (2024 code): the 0.14 distance only.
"""

from __future__ import annotations

import math
from typing import Sequence

CLICK_DISTANCE = 0.14
TEXT_THRESHOLD = 0.5
CLICK_RULES = ("sam2", "distance")
CATEGORIES = ("Multi_Apps", "Web_Shopping", "General_Tool", "Information_Management",
              "Media_Entertainment", "Social_Sharing")
#: split name -> averaging of ``evaluate_GUIOdyssey.py`` (its labels)
SPLIT_METRIC = {"random": "micro", "task": "macro", "device": "macro", "app": "macro"}


_BUTTONS = {"home": "PRESS_HOME", "back": "PRESS_BACK", "recent": "PRESS_RECENT", "finish": "COMPLETE",
            "impossible": "IMPOSSIBLE"}
_FLIP = {"up": "DOWN", "down": "UP", "left": "RIGHT", "right": "LEFT"}


def type_info(text: str) -> str:
    """TYPE info as ``simple_decode`` reads it from ``"TYPE: <text>"``: up to the text's first ``:``."""
    return text.split(":")[0].strip()


def command_of(action: dict) -> tuple[str, object]:
    """A canonical action dict -> (command, info): points as k-norm (x, y), SCROLL info as the finger
    direction (the content direction flipped), TYPE info by :func:`type_info`. Types GUI-Odyssey has
    no command for get their own name (never equal to a ground-truth command)."""
    kind = action["type"]
    if kind in ("click", "long_press"):
        x, y = action["point"]
        return kind.upper(), (x * 1000, y * 1000)
    if kind == "scroll":
        return "SCROLL", _FLIP[action["direction"]]
    if kind == "type":
        return "TYPE", type_info(action.get("text") or "")
    return _BUTTONS.get(kind, kind), ""


def levenshtein(a: str, b: str) -> int:
    if len(a) > len(b):
        a, b = b, a
    prev = list(range(len(a) + 1))
    for j, cb in enumerate(b):
        cur = [j + 1]
        for i, ca in enumerate(a):
            cur.append(prev[i] if ca == cb else 1 + min(prev[i], prev[i + 1], cur[-1]))
        prev = cur
    return prev[-1]


def text_match(gt: str, pred: str) -> bool:
    """After strip: either contains the other, or 1 - Lev / max_len >= 0.5 (case-sensitive)."""
    gt, pred = gt.strip(), pred.strip()
    if gt in pred or pred in gt:
        return True
    longest = max(len(gt), len(pred))
    return 1 - (levenshtein(gt, pred) / longest if longest else 0.0) >= TEXT_THRESHOLD


def click_match(gt_xy, pred_xy, sam2_bbox: Sequence[float] | None, rule: str = "sam2") -> bool:
    """k-norm points. Raises ValueError for rule ``sam2`` with an empty / malformed box (the reference
    fails to unpack it; the step is then wrong)."""
    if rule == "sam2":
        if sam2_bbox is None or len(sam2_bbox) != 4:
            raise ValueError(f"sam2_bbox must hold 4 numbers, got {sam2_bbox!r}")
        x1, y1, x2, y2 = sam2_bbox
        if x1 <= pred_xy[0] <= x2 and y1 <= pred_xy[1] <= y2:
            return True
    elif rule != "distance":
        raise ValueError(f"click_rule must be one of {CLICK_RULES}, got {rule!r}")
    return math.dist((pred_xy[0] / 1000, pred_xy[1] / 1000), (gt_xy[0] / 1000, gt_xy[1] / 1000)) <= CLICK_DISTANCE


def actions_match(pred: tuple[str, object], gt: tuple[str, object], sam2_bbox=None, rule: str = "sam2") -> bool:
    """``(command, info)`` pairs; commands must be equal, then CLICK / LONG_PRESS by :func:`click_match`,
    SCROLL by direction (case-insensitive), TYPE by :func:`text_match`; other commands match on the
    command alone. An exception inside the check scores the step wrong, as the reference does."""
    (p_cmd, p_info), (g_cmd, g_info) = pred, gt
    if p_cmd.strip() != g_cmd.strip():
        return False
    try:
        if g_cmd in ("CLICK", "LONG_PRESS"):
            return click_match(g_info, p_info, sam2_bbox, rule)
        if g_cmd == "SCROLL":
            return str(g_info).lower() == str(p_info).lower()
        if g_cmd == "TYPE":
            return text_match(str(g_info), str(p_info))
    except (ValueError, TypeError, IndexError):
        return False
    return True


def episode_success(records: Sequence[tuple[str, int, float]]) -> tuple[int, int]:
    """``records`` = (episode, step_length, correct). SR counts episodes whose number of evaluated steps
    equals ``step_length`` (others are dropped, as ``check_SR`` does) and whose every step is correct.
    Returns (successful episodes, counted episodes)."""
    eps: dict[str, list] = {}
    lengths: dict[str, int] = {}
    for ep, length, ok in records:
        eps.setdefault(ep, []).append(ok)
        lengths[ep] = length
    counted = [v for k, v in eps.items() if len(v) == lengths[k]]
    return sum(all(x == 1.0 for x in v) for v in counted), len(counted)


def summarize(records: Sequence[tuple[str, str, int, float]], averaging: str) -> dict:
    """``records`` = (category, episode, step_length, correct).

    ``averaging="macro"`` (app / device / task splits): AMS = share of correct steps, SR over all episodes.
    ``averaging="micro"`` (random split): AMS and SR = unweighted means over categories of the per-category
    AMS and SR (the reference asserts all 6 categories are present; here the categories present count).
    """
    if averaging not in ("macro", "micro"):
        raise ValueError(f"averaging must be 'macro' or 'micro', got {averaging!r}")

    def ams_sr(rows):
        ok, tot = episode_success([(e, n, c) for _, e, n, c in rows])
        return sum(c for *_, c in rows) / len(rows), (ok / tot if tot else 0.0), tot

    by_cat: dict[str, list] = {}
    for r in records:
        by_cat.setdefault(r[0], []).append(r)
    cats = {k: dict(zip(("action_matching_score", "success_rate", "episodes"), ams_sr(v))) | {"n": len(v)}
            for k, v in by_cat.items()}
    if not records:
        return {"action_matching_score": None, "success_rate": None, "categories": {}}
    if averaging == "macro":
        ams, sr, _ = ams_sr(records)
    else:
        ams = sum(c["action_matching_score"] for c in cats.values()) / len(cats)
        sr = sum(c["success_rate"] for c in cats.values()) / len(cats)
    return {"action_matching_score": ams, "success_rate": sr, "categories": cats}

"""Mind2Web (screenshot version) step metrics, as SeeClick scores them.

Source: SeeClick ``agent_tasks/mind2web_test.py``; ShowUI ``main/eval_mind2web.py`` does the same maths.

* operation ids: CLICK / HOVER / ENTER -> 4, SELECT -> 2, TYPE -> 3;
* element match: the predicted normalised point inside the ground-truth box (normalised xyxy,
  rounded to 3 decimals, inclusive);
* operation F1: token-set F1 between ``"<id>"`` (+ ``" " + value.lower()`` for TYPE / SELECT) of the
  prediction and of the ground truth (both empty -> 1);
* step success: operation F1 == 1 and element match.
"""

from __future__ import annotations

from typing import Sequence

OP_IDS = {"CLICK": 4, "HOVER": 4, "ENTER": 4, "SELECT": 2, "TYPE": 3}
#: canonical action type -> Mind2Web operation id
ACTION_OP_IDS = {"click": 4, "hover": 4, "enter": 4, "select": 2, "type": 3}
VALUE_OPS = (2, 3)
OP_NAMES = {4: "click", 2: "select", 3: "type"}


def norm_box(bbox: dict, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """``{"x", "y", "width", "height"}`` pixels -> normalised xyxy rounded to 3 decimals."""
    w, h = size
    box = (bbox["x"] / w, bbox["y"] / h, (bbox["x"] + bbox["width"]) / w, (bbox["y"] + bbox["height"]) / h)
    return tuple(round(v, 3) for v in box)


def op_string(op_id: int, value: str | None) -> str:
    return f"{op_id} {(value or '').lower()}" if op_id in VALUE_OPS else str(op_id)


def token_f1(pred: str, label: str) -> float:
    """Token-set F1 of whitespace tokens (``calculate_f1``)."""
    p, g = set(pred.strip().split()), set(label.strip().split())
    if not p and not g:
        return 1.0
    if not p or not g:
        return 0.0
    tp = len(p & g)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(p), tp / len(g)
    return 2 * precision * recall / (precision + recall)


def element_match(point, box) -> bool:
    return point is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def step_scores(pred_op: int | None, pred_value: str | None, pred_point, gt_op: int, gt_value: str | None,
                gt_box) -> dict[str, float]:
    """``element_match``, ``op_f1``, ``step_success`` (and ``op_match``, logged by the reference)."""
    ele = element_match(pred_point, gt_box)
    f1 = token_f1(op_string(pred_op, pred_value), op_string(gt_op, gt_value)) if pred_op is not None else 0.0
    return {"element_match": float(ele), "op_f1": f1, "step_success": float(f1 == 1.0 and ele),
            "op_match": float(pred_op == gt_op)}


def _mean(vals: Sequence[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def summarize(steps: Sequence[tuple[str, int | None, dict]]) -> dict:
    """``steps`` = (episode, ground-truth op id or None, per-step scores).

    ``element_accuracy``, ``operation_f1``, ``step_success_rate``: **macro** = mean over episodes of each
    episode's mean (the reference's "Macro Ele Acc", "Macro Op F1", "Macro Step SR"; ShowUI selects on
    the last). ``*_micro``: element accuracy and step success pooled over steps; operation F1 = unweighted
    mean over the ground-truth op types CLICK(4) / SELECT(2) / TYPE(3) of each type's mean op F1 (the
    reference's "Operation F1"; a type with no steps is left out here, where the reference gives NaN).
    Also: episode success (every step of the episode succeeds) and per-op-type F1.
    """
    by_ep: dict[str, list[dict]] = {}
    by_op: dict[int, list[float]] = {4: [], 2: [], 3: []}
    for ep, op, s in steps:
        by_ep.setdefault(ep, []).append(s)
        if op is not None:  # a counted load problem has no known op type
            by_op.setdefault(op, []).append(s["op_f1"])
    rows = [s for _, _, s in steps]
    eps = list(by_ep.values())
    per_type = {OP_NAMES.get(op, str(op)): _mean(v) for op, v in by_op.items()}
    out = {}
    for name, key in (("element_accuracy", "element_match"), ("operation_f1", "op_f1"),
                      ("step_success_rate", "step_success")):
        out[name] = _mean([_mean([s[key] for s in e]) for e in eps])
        out[f"{name}_micro"] = _mean([s[key] for s in rows])
    out["operation_f1_micro"] = _mean([v for v in per_type.values() if v is not None])
    out["episode_success_rate"] = _mean([float(all(s["step_success"] == 1.0 for s in e)) for e in eps])
    out["operation_f1_by_type"] = per_type
    out["n_episodes"] = len(eps)
    return out

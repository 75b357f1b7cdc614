"""AndroidControl step metrics: type accuracy, grounding accuracy, step accuracy (exact match).

Actions are canonical dicts (``{"type", "point", "text", "app", "direction"}``, points normalised
(x, y) of the screenshot). A step is correct when the action type matches and its argument matches:
the point for click / long_press (by the click rule), the text for type / open_app, the direction for
scroll; other types match on the type alone.

Click rules (published evaluators disagree; the summary names the one used):

* ``"distance"`` -- ‖pred − gt‖₂ ≤ 0.14 in normalised coordinates (UI-TARS, following OS-Atlas;
  bytedance/UI-TARS, GitHub #79);
* ``"element"`` -- the Qwen2.5-VL rule as ported by AgentCPM-GUI (``eval/utils/evaluator.py`` with
  ``eval_android_control=True``): accessibility-node boxes (normalised y, x, h, w) enlarged 1.2x about
  their centre and clipped; the 5 whose centres are nearest the ground-truth point are kept; correct if
  the prediction is inside any of them, else if within 0.04 of the ground truth.
* ``"box"`` -- AndroidControl-Curated ``E_bbox`` (batechworks/AndroidControl_Curated
  ``src/eval``): the prediction inside the ground-truth element box (inclusive).

Text: AgentCPM-GUI / Qwen2.5-VL compare lowercased, stripped strings by containment either way;
AndroidControl-Curated additionally accepts a token-set F1 >= 0.5 (:func:`curated_text_match`).
Grounding accuracy is scored on ground-truth click / long_press steps from the predicted point alone
(the type is not required), as AndroidControl-Curated and GUI-R1 count it.
"""

from __future__ import annotations

import math
from typing import Sequence

from vlprune.eval.metrics import aitw, mind2web

DISTANCE = 0.14
ELEMENT_ENLARGE = 1.2
ELEMENT_NEAREST = 5
ELEMENT_FALLBACK_DISTANCE = 0.04
CLICK_RULES = ("distance", "element", "box")
POINT_TYPES = ("click", "long_press")
TEXT_FIELDS = {"type": "text", "open_app": "app"}


def element_match(pred, gt, boxes_yxhw: Sequence[Sequence[float]]) -> bool:
    """The ``"element"`` rule (points are (x, y) normalised). Boxes grow by (1.2 - 1) x their size in
    total, centred and clipped, as AgentCPM-GUI ``_resize_annotation_bounding_boxes`` does."""
    boxes = aitw.enlarge_boxes(boxes_yxhw, ELEMENT_ENLARGE - 1)
    nearest = sorted(boxes, key=lambda b: math.dist((b[1] + b[3] / 2, b[0] + b[2] / 2), gt))[:ELEMENT_NEAREST]
    if any(aitw.inside((pred[1], pred[0]), b) for b in nearest):
        return True
    return math.dist(pred, gt) <= ELEMENT_FALLBACK_DISTANCE


def in_box(pred, box_xyxy) -> bool:
    return box_xyxy[0] <= pred[0] <= box_xyxy[2] and box_xyxy[1] <= pred[1] <= box_xyxy[3]


def point_match(pred, gt_point, rule: str, *, boxes_yxhw=None, box_xyxy=None) -> bool:
    if pred is None:
        return False
    if rule == "distance":
        return math.dist(pred, gt_point) <= DISTANCE
    if rule == "element":
        return element_match(pred, gt_point, boxes_yxhw or [])
    if rule == "box":
        if box_xyxy is None:
            raise ValueError("click rule 'box' needs the ground-truth element box")
        return in_box(pred, box_xyxy)
    raise ValueError(f"click rule must be one of {CLICK_RULES}, got {rule!r}")


def text_match(pred: str, gt: str) -> bool:
    """Lowercased, stripped; either contains the other (AgentCPM-GUI / Qwen2.5-VL)."""
    p, g = pred.lower().strip(), gt.lower().strip()
    return p in g or g in p


def token_f1(pred: str, gt: str) -> float:
    """GUI-R1 ``calculate_f1_score``: token-set F1 of lowercased whitespace tokens, except that two single
    tokens match when either contains the other; an empty side scores 0."""
    p, g = pred.lower().split(), gt.lower().split()
    if len(set(p)) == 1 and len(set(g)) == 1 and (p[0] in g[0] or g[0] in p[0]):
        return 1.0
    return mind2web.token_f1(" ".join(p), " ".join(g)) if p and g else 0.0


def curated_text_match(pred: str, gt: str) -> bool:
    """AndroidControl-Curated: containment either way (case-sensitive, brackets dropped) or token F1 >= 0.5."""
    p, g = pred.replace("[", "").replace("]", ""), gt.replace("[", "").replace("]", "")
    return g in p or p in g or token_f1(p, g) >= 0.5


def step_scores(pred: dict, gt: dict, rule: str, *, boxes_yxhw=None, box_xyxy=None, text_rule=text_match,
                type_includes_argument: bool = False) -> dict[str, float]:
    """``type_match``, ``step_match`` and, on click / long_press ground truth, ``grounding_match``.

    ``type_includes_argument``: AndroidControl-Curated's "type" check also compares the text of
    type / open_app and the direction of scroll (its ``type_acc`` on ``"<type>:<argument>"`` strings).
    """
    type_ok = pred["type"] == gt["type"]
    out = {}
    if gt["type"] in POINT_TYPES:
        grounded = point_match(pred.get("point"), gt["point"], rule, boxes_yxhw=boxes_yxhw, box_xyxy=box_xyxy)
        out["grounding_match"] = float(grounded)
        arg_ok, step_arg = True, grounded
    else:
        if gt["type"] in TEXT_FIELDS:
            f = TEXT_FIELDS[gt["type"]]
            arg_ok = text_rule(pred.get(f) or "", gt.get(f) or "")
        elif gt["type"] == "scroll":
            arg_ok = pred.get("direction") == gt.get("direction")
        else:
            arg_ok = True
        step_arg = arg_ok
    out["type_match"] = float(type_ok and (arg_ok or not type_includes_argument))
    out["step_match"] = float(type_ok and step_arg)
    return out


def zero_scores(gt_type: str) -> dict[str, float]:
    out = {"type_match": 0.0, "step_match": 0.0}
    if gt_type in POINT_TYPES:
        out["grounding_match"] = 0.0
    return out


def summarize(rows: Sequence[dict]) -> dict:
    """``type_accuracy`` and ``step_accuracy`` over every step; ``grounding_accuracy`` over the steps
    that carry ``grounding_match`` (ground-truth click / long_press)."""

    def mean(key):
        vals = [r[key] for r in rows if key in r]
        return sum(vals) / len(vals) if vals else None

    return {"type_accuracy": mean("type_match"), "grounding_accuracy": mean("grounding_match"),
            "step_accuracy": mean("step_match"), "n_grounding": sum("grounding_match" in r for r in rows)}

"""MMLongBench-Doc scoring (Ma et al., NeurIPS 2024): per-question score by answer format, accuracy and F1.

As the benchmark's ``eval/eval_score.py`` (mayubo2333/MMLongBench-Doc) and VLMEvalKit's port
(``vlmeval/dataset/mmlongbenchdoc.py``) compute them, on the *extracted* answer:

* ``Int``: ``int(gt) == int(float(pred))`` (a prediction that does not parse scores 0);
* ``Float``: both cleaned (:func:`clean`), equal when within 1 % relative (``isclose``) or equal when rounded
  to the shorter precision (at least 2 decimals), the ground truth also tried as x/100 and x*100;
* ``Str``: cleaned; exact equality for URLs, file names, page refs, phone numbers, times, dates, e-mail
  addresses (:func:`needs_exact`), else ANLS with threshold 0.5 (distance on the cleaned strings, length
  of the longer, ``score <= 0.5 -> 0``);
* ``List``: both parsed as Python lists (one-element lists otherwise); a different length scores 0; the
  sorted cleaned items joined by "-" must be equal when the first ground-truth item is a number or needs
  exact match, else the minimum ANLS over item pairs;
* ``None`` (unanswerable, ground truth "Not answerable"): as ``Str`` in the benchmark's code
  (``variant="mmlongbench-doc"``), through the ``List`` branch in VLMEvalKit's (``variant="vlmevalkit"``).

Accuracy = mean score. F1 = 2PR / (P + R) with recall = mean score over questions whose answer is not
"Not answerable"; precision: the benchmark divides the same sum by the number of predictions that are
not "Not answerable", VLMEvalKit divides the sum of scores of those predictions by their number.
Unparseable list literals score 0 (VLMEvalKit catches the error the same way).
"""

from __future__ import annotations

import ast
import math
import re
from typing import Sequence

from vlprune.eval.metrics.vqa import levenshtein

NOT_ANSWERABLE = "Not answerable"
VARIANTS = ("vlmevalkit", "mmlongbench-doc")
ANSWER_FORMATS = ("Int", "Float", "Str", "List", "None")


def clean(s) -> str:
    """Lowercase, strip, parenthesised parts and surrounding quotes removed, a leading ``$`` and a
    trailing ``%`` dropped (the published code's trailing-unit lines have no effect and are left out)."""
    s = str(s).lower().strip()
    s = re.sub(r"\s*\([^)]*\)", "", s).strip()
    s = re.sub(r"^['\"]|['\"]$", "", s).strip()
    return s.strip().lstrip("$").strip().rstrip("%").strip()


def needs_exact(s: str) -> bool:
    return ("https://" in s or s.endswith(".py") or s.endswith("ipynb") or s.startswith("page")
            or re.fullmatch(r"\b\d+(-\d+|\s\d+)?\b", s) is not None or "a.m." in s or "p.m." in s
            or re.fullmatch(r"\b\d{4}[-\s]\d{2}[-\s]\d{2}\b", s) is not None
            or re.fullmatch(r"\b\d{4}[-\s]\d{2}\b", s) is not None
            or re.fullmatch(r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", s) is not None)


def anls(gt: str, pred: str, threshold: float = 0.5) -> float:
    length = max(len(gt.upper()), len(pred.upper()))
    value = 1.0 - (0.0 if length == 0 else levenshtein(gt, pred) / length)
    return 0.0 if value <= threshold else value


def _precision(x: float) -> int:
    return len(str(x).split(".")[-1]) if "." in str(x) else 3


def float_equal(reference: float, prediction) -> bool:
    try:
        prediction = float(str(prediction).strip().rstrip("%").strip())
    except ValueError:
        return False
    for item in (reference / 100, reference, reference * 100):
        if math.isclose(item, prediction, rel_tol=0.01):
            return True
        p = max(min(_precision(prediction), _precision(item)), 2)
        if round(prediction, p) == round(item, p):
            return True
    return False


def _isfloat(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _as_list(v) -> list:
    if isinstance(v, str) and v.startswith("["):
        v = ast.literal_eval(v)
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _score_str(gt, pred) -> float:
    gt, pred = clean(gt), clean(pred)
    return float(gt == pred) if needs_exact(gt) else anls(gt, pred)


def _score_list(gt, pred) -> float:
    gt, pred = _as_list(gt), _as_list(pred)
    if len(gt) != len(pred):
        return 0.0
    gt, pred = sorted(clean(a) for a in gt), sorted(clean(a) for a in pred)
    if _isfloat(gt[0]) or needs_exact(gt[0]):
        return float("-".join(gt) == "-".join(pred))
    return min(anls(g, p) for g, p in zip(gt, pred))


def score(gt, pred, answer_format: str, variant: str = "vlmevalkit") -> float:
    """Score of one extracted answer ``pred`` against ``gt`` of ``answer_format`` (Int/Float/Str/List/None)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown MMLongBench-Doc variant {variant!r}; expected one of: {', '.join(VARIANTS)}")
    try:
        if answer_format == "Int":
            try:
                return float(int(gt) == int(float(pred)))
            except (TypeError, ValueError, OverflowError):
                return 0.0
        if answer_format == "Float":
            try:
                ref, pred = float(clean(gt)), float(clean(pred))
            except ValueError:
                return 0.0
            return float(float_equal(ref, pred))
        if answer_format == "Str" or (answer_format == "None" and variant == "mmlongbench-doc"):
            return _score_str(gt, pred)
        return _score_list(gt, pred)
    except (ValueError, SyntaxError, TypeError, IndexError, MemoryError, RecursionError):
        return 0.0  # an unparseable list literal (the published evaluators count it wrong)


def accuracy_f1(items: Sequence[tuple[bool, str, float]], variant: str = "vlmevalkit") -> tuple[float | None, float | None]:
    """(accuracy, F1) from (ground truth answerable, extracted prediction, score) triples; None when empty.
    A prediction equal to "Not answerable" counts as not predicting an answer."""
    if not items:
        return None, None
    acc = sum(s for _, _, s in items) / len(items)
    answerable = [s for g, _, s in items if g]
    predicted = [s for _, p, s in items if p != NOT_ANSWERABLE]
    if not answerable or not predicted:
        return acc, 0.0
    recall = sum(answerable) / len(answerable)
    precision = (sum(predicted) if variant == "vlmevalkit" else sum(answerable)) / len(predicted)
    return acc, (2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0)

"""Text-answer metrics: ANLS (DocVQA, InfographicVQA), ChartQA relaxed accuracy, OCRBench matching.

Every metric scores one prediction against the list of ground-truth answers of one question; the
variants are the published evaluators that disagree on a detail, keyed by name:

ANLS (``ANLS_VARIANTS``; Biten et al. 2019, tau = 0.5):

* ``lmms-eval`` (default) -- lmms-eval ``lmms_eval/api/metrics.py::anls`` (a port of Qwen-VL
  ``eval_mm/infographicsvqa_eval.py``): the prediction is stripped; the edit distance is taken on both
  strings stripped, lowercased and with internal whitespace collapsed, but divided by
  ``max(len(gt.upper()), len(pred.upper()))`` of the *un-normalised* strings; ``s = 1 - min_gt NL``,
  zeroed when ``s < 0.5`` (s = 0.5 is kept).
* ``vlmevalkit`` -- VLMEvalKit ``vlmeval/dataset/utils/vqa_eval.py::anls_compute``: the same, without
  stripping the prediction first (surrounding whitespace counts in the length).
* ``pix2struct`` -- pix2struct ``anls_metric``: lowercase only; ``1 - NL`` if ``NL < 0.5`` else 0
  (s = 0.5 scores 0); both strings empty -> 1.

ChartQA relaxed accuracy (``RELAXED_VARIANTS``; pix2struct, Methani et al. 2020):
a string parses to float (a trailing ``%`` is stripped and the value divided by 100); if the
prediction parses and the target parses to a non-zero float, correct iff ``|p - t| / |t| <= 0.05``,
otherwise case-insensitive exact string equality. No comma or unit stripping.

* ``lmms-eval`` (default) -- lmms-eval ``lmms_eval/tasks/chartqa/utils.py``: (prediction, target)
  in the signature's order; the prediction is stripped.
* ``vlmevalkit`` -- VLMEvalKit ``vlmeval/dataset/utils/vqa_eval.py`` since its 2025-09-01 fix of the
  argument order: the same as ``lmms-eval``.
* ``qwen-vl`` -- Qwen-VL ``eval_mm/evaluate_vqa.py`` (and VLMEvalKit before 2025-09): the arguments
  swapped, so the non-zero test and the division use the prediction (GT 100, prediction 95.2 is
  correct in ``lmms-eval``, wrong here).

OCRBench (``OCRBENCH_VARIANTS``; Yuliang-Liu/MultimodalOCR ``OCRBench/scripts/qwenvl.py``):
correct iff any ground-truth answer is a substring of the prediction after normalising both:
``HME100k`` items strip, turn newlines into spaces, then remove every space (no lowercasing); all
other items lowercase, strip, newline -> space.

* ``multimodalocr`` (default; VLMEvalKit and lmms-eval give the same) -- as above.
* ``lmms-eval`` -- lmms-eval ``tasks/ocrbench/utils.py`` since 2026-07: non-HME items also fold
  fullwidth ASCII (U+FF01-FF5E -> U+0021-007E, U+3000 -> space) in answer and prediction.

Category scores: the ten OCRBench types fall into five reported categories with fixed totals
(``OCRBENCH_CAPS``, 1,000 items in all); the final score is the integer number of correct items.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

ANLS_THRESHOLD = 0.5
RELAXED_TOLERANCE = 0.05


# ---------------------------------------------------------------------------------------------- ANLS
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _collapse(s: str) -> str:
    return " ".join(s.strip().lower().split())


def _nl_raw_length(gt: str, pred: str) -> float:
    """Normalised distance of the Qwen-VL / lmms-eval / VLMEvalKit ANLS: distance on normalised
    strings, length of the raw strings."""
    length = max(len(gt.upper()), len(pred.upper()))
    return 0.0 if length == 0 else levenshtein(_collapse(gt), _collapse(pred)) / length


def _anls_lmms_eval(pred: str, answers: Sequence[str]) -> float:
    return _anls_vlmevalkit(pred.strip(), answers)


def _anls_vlmevalkit(pred: str, answers: Sequence[str]) -> float:
    s = 1.0 - min(_nl_raw_length(gt, pred) for gt in answers)
    return 0.0 if s < ANLS_THRESHOLD else s


def _anls_pix2struct(pred: str, answers: Sequence[str]) -> float:
    def one(gt: str) -> float:
        gt, p = gt.lower(), pred.lower()
        length = max(len(gt), len(p))
        nl = 0.0 if length == 0 else levenshtein(gt, p) / length
        return 1.0 - nl if nl < ANLS_THRESHOLD else 0.0

    return max(one(gt) for gt in answers)


ANLS_VARIANTS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "lmms-eval": _anls_lmms_eval,
    "vlmevalkit": _anls_vlmevalkit,
    "pix2struct": _anls_pix2struct,
}


def _variant(table: dict, variant: str, metric: str):
    if variant not in table:
        raise ValueError(f"unknown {metric} variant {variant!r}; expected one of: {', '.join(table)}")
    return table[variant]


def _answers(answers: Sequence[str] | str, metric: str) -> list[str]:
    out = [answers] if isinstance(answers, str) else list(answers)
    if not out or not all(isinstance(a, str) for a in out):
        raise ValueError(f"{metric}: ground-truth answers must be a non-empty list of strings, got {answers!r}")
    return out


def anls(prediction: str, answers: Sequence[str] | str, variant: str = "lmms-eval") -> float:
    """ANLS of one question in [0, 1]: best over the ground-truth answers, 0 below the threshold."""
    return _variant(ANLS_VARIANTS, variant, "ANLS")(prediction, _answers(answers, "ANLS"))


# ---------------------------------------------------------------------------------------------- ChartQA
def _to_float(text: str) -> float | None:
    """pix2struct's parse: ``float(text)``, a trailing ``%`` stripped and divided by 100, else None."""
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def _relaxed(prediction: str, target: str) -> bool:
    p, t = _to_float(prediction), _to_float(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= RELAXED_TOLERANCE
    return prediction.lower() == target.lower()


RELAXED_VARIANTS: dict[str, Callable[[str, str], bool]] = {
    "lmms-eval": lambda pred, gt: _relaxed(pred.strip(), gt),
    "vlmevalkit": lambda pred, gt: _relaxed(pred.strip(), gt),  # since 2025-09-01: lmms-eval's order
    "qwen-vl": lambda pred, gt: _relaxed(gt, pred.strip()),
}


def relaxed_accuracy(prediction: str, answers: Sequence[str] | str, variant: str = "lmms-eval") -> float:
    """ChartQA relaxed accuracy of one question: 1.0 if any ground-truth answer matches, else 0.0."""
    fn = _variant(RELAXED_VARIANTS, variant, "relaxed accuracy")
    return float(any(fn(prediction, gt) for gt in _answers(answers, "relaxed accuracy")))


# ---------------------------------------------------------------------------------------------- OCRBench
HME_DATASET = "HME100k"

#: OCRBench ``type`` -> reported category (snake_case of the evaluator's printed names)
OCRBENCH_CATEGORIES: dict[str, str] = {
    "Regular Text Recognition": "text_recognition",
    "Irregular Text Recognition": "text_recognition",
    "Artistic Text Recognition": "text_recognition",
    "Handwriting Recognition": "text_recognition",
    "Digit String Recognition": "text_recognition",
    "Non-Semantic Text Recognition": "text_recognition",
    "Scene Text-centric VQA": "scene_text_centric_vqa",
    "Doc-oriented VQA": "doc_oriented_vqa",
    "Key Information Extraction": "key_information_extraction",
    "Handwritten Mathematical Expression Recognition": "handwritten_mathematical_expression_recognition",
}

#: items per reported category in OCRBench v1 (sum 1,000)
OCRBENCH_CAPS: dict[str, int] = {
    "text_recognition": 300,
    "scene_text_centric_vqa": 200,
    "doc_oriented_vqa": 200,
    "key_information_extraction": 200,
    "handwritten_mathematical_expression_recognition": 100,
}

_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _ocr_plain(s: str) -> str:
    return s.lower().strip().replace("\n", " ")


def _ocr_hme(s: str) -> str:
    return s.strip().replace("\n", " ").replace(" ", "")


OCRBENCH_VARIANTS: dict[str, Callable[[str], str]] = {
    "multimodalocr": _ocr_plain,
    "lmms-eval": lambda s: _ocr_plain(s.translate(_FULLWIDTH)),
}


def ocrbench_match(
    prediction: str, answers: Sequence[str] | str, dataset_name: str, variant: str = "multimodalocr"
) -> float:
    """1.0 if any normalised ground-truth answer is a substring of the normalised prediction."""
    norm = _ocr_hme if dataset_name == HME_DATASET else _variant(OCRBENCH_VARIANTS, variant, "OCRBench")
    pred = norm(prediction)
    return float(any(norm(gt) in pred for gt in _answers(answers, "OCRBench")))


def ocrbench_category_counts(items: Iterable[tuple[str, float]]) -> dict[str, tuple[int, int]]:
    """(type, correct) pairs -> category -> (correct, items). Raises ValueError for an unknown type or
    a category with more items than OCRBench v1 holds (not an OCRBench file)."""
    counts = {c: [0, 0] for c in OCRBENCH_CAPS}
    for qtype, correct in items:
        if qtype not in OCRBENCH_CATEGORIES:
            raise ValueError(f"unknown OCRBench type {qtype!r}; expected one of: {', '.join(OCRBENCH_CATEGORIES)}")
        cell = counts[OCRBENCH_CATEGORIES[qtype]]
        cell[0] += int(bool(correct))
        cell[1] += 1
    for cat, (_, n) in counts.items():
        if n > OCRBENCH_CAPS[cat]:
            raise ValueError(f"OCRBench category {cat} has {n} items; OCRBench v1 has {OCRBENCH_CAPS[cat]}")
    return {c: (k, n) for c, (k, n) in counts.items()}


def ocrbench_final_score(items: Iterable[tuple[str, float]]) -> int:
    """The published final score: the number of correct items (out of 1,000 on the full benchmark)."""
    return sum(k for k, _ in ocrbench_category_counts(items).values())

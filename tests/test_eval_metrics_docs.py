"""ANLS, ChartQA relaxed accuracy, OCRBench matching and point-in-box, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from vlprune.eval.metrics import vqa
from vlprune.eval.metrics.aggregate import AGGREGATIONS, cell_mean, group, micro
from vlprune.eval.metrics.grounding import normalise_box, point_in_box, xywh_to_xyxy


# ---------------------------------------------------------------------------------------------- ANLS
@pytest.mark.parametrize(
    "pred, answers, variant, want",
    [
        ("Smith", ["Smith"], "lmms-eval", 1.0),
        (" SMITH ", ["smith"], "lmms-eval", 1.0),
        # raw-length max_len: distance 1 on "march 3"/"march 8", length 8 of the raw GT
        ("march 8", ["march  3"], "lmms-eval", 1 - 1 / 8),
        ("march 8", ["march  3"], "vlmevalkit", 1 - 1 / 8),
        ("march 8", ["march  3"], "pix2struct", 1 - 2 / 8),  # no whitespace collapse: distance 2
        # s exactly 0.5 is kept, except in pix2struct (NL < 0.5 required)
        ("abxy", ["abcd"], "lmms-eval", 0.5),
        ("abxy", ["abcd"], "vlmevalkit", 0.5),
        ("abxy", ["abcd"], "pix2struct", 0.0),
        ("axyz", ["abcd"], "lmms-eval", 0.0),  # s = 0.25 < 0.5
        # surrounding whitespace: lmms-eval strips the prediction, VLMEvalKit counts it in the length
        (" smitj ", ["smith"], "lmms-eval", 1 - 1 / 5),
        (" smitj ", ["smith"], "vlmevalkit", 1 - 1 / 7),
        ("", ["abc"], "lmms-eval", 0.0),
        ("", [""], "lmms-eval", 1.0),
        ("", [""], "pix2struct", 1.0),
        ("1,250.00", ["$1,250.00", "1,250.00"], "lmms-eval", 1.0),  # best ground truth
        ("$1,250", ["$1,250.00", "1,250.00"], "lmms-eval", 1 - 3 / 9),
        # the length is len(s.upper()): "straße" counts 7, distance 2 on the lowercased strings
        ("strasse", ["straße"], "lmms-eval", 1 - 2 / 7),
    ],
)
def test_anls(pred, answers, variant, want):
    assert math.isclose(vqa.anls(pred, answers, variant), want, abs_tol=1e-12)


def test_anls_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        vqa.anls("x", [])
    with pytest.raises(ValueError, match="unknown ANLS variant"):
        vqa.anls("x", ["x"], "rrc")


def test_levenshtein():
    assert vqa.levenshtein("kitten", "sitting") == 3
    assert vqa.levenshtein("", "abc") == 3
    assert vqa.levenshtein("abc", "abc") == 0


# ---------------------------------------------------------------------------------------------- ChartQA
@pytest.mark.parametrize(
    "pred, answers, variant, want",
    [
        ("23.5", ["23.5"], "lmms-eval", 1.0),
        ("24.6", ["23.5"], "lmms-eval", 1.0),   # 1.1 / 23.5 = 0.0468
        ("24.7", ["23.5"], "lmms-eval", 0.0),   # 1.2 / 23.5 = 0.0511
        ("5%", ["0.05"], "lmms-eval", 1.0),
        ("0.05", ["5%"], "lmms-eval", 1.0),
        ("95.2", ["100"], "lmms-eval", 1.0),    # 4.8 / 100
        ("95.2", ["100"], "qwen-vl", 0.0),      # 4.8 / 95.2 = 0.0504
        ("0.0", ["0"], "lmms-eval", 0.0),       # zero target: string compare
        ("0", ["0"], "lmms-eval", 1.0),
        ("1000", ["1,000"], "lmms-eval", 0.0),  # no comma stripping
        ("1,000", ["1,000"], "lmms-eval", 1.0),
        (" Apple\n", ["apple"], "lmms-eval", 1.0),
        (" Apple\n", ["apple"], "qwen-vl", 1.0),
        ("Apple Inc", ["apple"], "lmms-eval", 0.0),
        ("7", ["5", "7"], "lmms-eval", 1.0),
        ("", ["5"], "lmms-eval", 0.0),
    ],
)
def test_relaxed_accuracy(pred, answers, variant, want):
    assert vqa.relaxed_accuracy(pred, answers, variant) == want


# ---------------------------------------------------------------------------------------------- OCRBench
@pytest.mark.parametrize(
    "pred, answers, source, variant, want",
    [
        ("The word is HARBOR.", "harbor", "svt", "multimodalocr", 1.0),
        ("harb or", "harbor", "svt", "multimodalocr", 0.0),
        ("New\nYork", ["new york"], "IIIT5K", "multimodalocr", 1.0),
        ("x^{2}+y", ["x ^ { 2 } + y"], "HME100k", "multimodalocr", 1.0),  # spaces removed
        ("X^{2}+y", ["x ^ { 2 } + y"], "HME100k", "multimodalocr", 0.0),  # no lowercasing
        ("$$x ^ {2}\n+ y$$", ["x^{2}+y"], "HME100k", "multimodalocr", 1.0),
        ("ＨＡＲＢＯＲ", "harbor", "svt", "multimodalocr", 0.0),
        ("ＨＡＲＢＯＲ", "harbor", "svt", "lmms-eval", 1.0),  # fullwidth folded
        ("it says 3 March", ["March 3", "3 March"], "docVQA", "multimodalocr", 1.0),
        ("", ["a"], "svt", "multimodalocr", 0.0),
    ],
)
def test_ocrbench_match(pred, answers, source, variant, want):
    assert vqa.ocrbench_match(pred, answers, source, variant) == want


def test_ocrbench_categories_and_caps():
    assert sum(vqa.OCRBENCH_CAPS.values()) == 1000
    assert sum(c == "text_recognition" for c in vqa.OCRBENCH_CATEGORIES.values()) == 6
    items = [("Regular Text Recognition", 1.0), ("Digit String Recognition", 0.0), ("Doc-oriented VQA", 1.0),
             ("Handwritten Mathematical Expression Recognition", 1.0)]
    counts = vqa.ocrbench_category_counts(items)
    assert counts["text_recognition"] == (1, 2)
    assert counts["doc_oriented_vqa"] == (1, 1)
    assert counts["handwritten_mathematical_expression_recognition"] == (1, 1)
    assert counts["key_information_extraction"] == (0, 0)
    assert vqa.ocrbench_final_score(items) == 3
    with pytest.raises(ValueError, match="has 201 items"):
        vqa.ocrbench_category_counts([("Doc-oriented VQA", 1.0)] * 201)
    assert vqa.ocrbench_final_score([("Doc-oriented VQA", 1.0)] * 200) == 200
    with pytest.raises(ValueError, match="unknown OCRBench type"):
        vqa.ocrbench_category_counts([("Text Recognition", 1.0)])


# ---------------------------------------------------------------------------------------------- grounding
def test_point_in_box_inclusive_edges():
    box = (0.4, 0.4, 0.6, 0.6)
    assert point_in_box((0.4, 0.4), box) and point_in_box((0.6, 0.6), box) and point_in_box((0.5, 0.6), box)
    assert not point_in_box((0.6000001, 0.5), box)
    assert not point_in_box((0.5, 0.3999999), box)
    with pytest.raises(ValueError):
        point_in_box((0.5,), box)


def test_box_conversions():
    assert xywh_to_xyxy([412, 88, 120, 44]) == (412, 88, 532, 132)
    assert normalise_box((412, 88, 532, 132), (1000, 400)) == pytest.approx((0.412, 0.22, 0.532, 0.33))
    with pytest.raises(ValueError, match="negative"):
        xywh_to_xyxy([0, 0, -1, 5])
    with pytest.raises(ValueError, match="x2 < x1"):
        normalise_box((10, 0, 5, 5), (100, 100))


def test_aggregations():
    cells = {("mobile", "text"): [1.0, 1.0, 1.0, 0.0], ("mobile", "icon"): [0.0]}
    assert micro([1.0, 0.0, 1.0, 1.0]) == 0.75
    assert cell_mean(cells) == pytest.approx((0.75 + 0.0) / 2)
    assert AGGREGATIONS["micro"](cells) == pytest.approx(3 / 5)
    assert AGGREGATIONS["cell_mean"](cells) == pytest.approx(0.375)
    assert micro([]) is None and cell_mean({"a": []}) is None
    assert group([("a", 1.0), ("b", 0.0), ("a", 0.0)]) == {"a": [1.0, 0.0], "b": [0.0]}

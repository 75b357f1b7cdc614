"""Agent-benchmark metrics on hand-computed cases, edges included (values worked out in the comments)."""

from __future__ import annotations

import pytest

from vlprune.eval.metrics import aitw, androidcontrol as ac, mind2web, odyssey

TAP = aitw.DUAL_POINT


# ---------------------------------------------------------------------------------------------- AITW
def test_aitw_enlarge_boxes_by_1_4_centred_and_clipped():
    # y' = 0.28 - 0.7*0.04 = 0.252, x' = 0.40 - 0.7*0.20 = 0.26, h' = 0.04*2.4 = 0.096, w' = 0.20*2.4 = 0.48
    assert aitw.enlarge_boxes([(0.28, 0.40, 0.04, 0.20)])[0] == pytest.approx((0.252, 0.26, 0.096, 0.48))
    # clipping: y' = max(0, 0 - 0.35) = 0, x' = max(0, 0.9 - 0.35) = 0.55, h' = w' = min(1, 1.2) = 1
    assert aitw.enlarge_boxes([(0.0, 0.9, 0.5, 0.5)])[0] == pytest.approx((0.0, 0.55, 1.0, 1.0))


def test_aitw_box_edges_are_inclusive():
    assert aitw.inside((0.75, 0.75), (0.25, 0.25, 0.5, 0.5))
    assert not aitw.inside((0.75, 0.7501), (0.25, 0.25, 0.5, 0.5))


def test_aitw_taps_match_by_common_box_or_distance():
    boxes = [(0.28, 0.40, 0.04, 0.20)]  # enlarged: y in [0.252, 0.348], x in [0.26, 0.74]
    gt = (0.30, 0.50)  # (y, x)
    assert aitw.taps_match((0.34, 0.70), gt, boxes)  # same box; distance 0.204 > 0.14
    assert aitw.taps_match((0.36, 0.50), gt, boxes)  # outside the box; distance 0.06
    assert not aitw.taps_match((0.50, 0.70), gt, boxes)  # outside; distance 0.283
    # the distance is inclusive: exactly 0.14 matches
    far = [(0.9, 0.9, 0.01, 0.01)]
    assert aitw.taps_match((0.0, 0.14), (0.0, 0.0), far)
    assert not aitw.taps_match((0.0, 0.1401), (0.0, 0.0), far)


def test_aitw_tap_threshold_0_04():
    assert aitw.is_tap((0.0, 0.0), (0.0, 0.04))
    assert not aitw.is_tap((0.0, 0.0), (0.0, 0.05))
    boxes = [(0.1, 0.1, 0.1, 0.1)]
    tap = aitw.AitwAction(TAP, (0.5, 0.5), (0.5, 0.5))
    swipe = aitw.AitwAction(TAP, (0.5, 0.5), (0.5, 0.6))  # 0.1 apart: a swipe
    assert not aitw.actions_match(tap, swipe, boxes)


def test_aitw_scrolls_compare_axis_not_sign():
    boxes = [(0.1, 0.1, 0.1, 0.1)]
    down = aitw.from_action({"type": "scroll", "direction": "down"})
    assert (down.touch_yx, down.lift_yx) == ((0.8, 0.5), (0.2, 0.5))  # (x, y) (0.5, 0.8) -> (0.5, 0.2), as (y, x)
    up = aitw.from_action({"type": "scroll", "direction": "up"})
    left = aitw.from_action({"type": "scroll", "direction": "left"})
    assert aitw.actions_match(up, down, boxes)
    assert not aitw.actions_match(left, down, boxes)
    # a tie of |dy| and |dx| is the y axis (numpy argmax takes the first)
    diag = aitw.AitwAction(TAP, (0.2, 0.2), (0.6, 0.6))
    assert aitw.actions_match(diag, down, boxes) and not aitw.actions_match(diag, left, boxes)


def test_aitw_non_dual_point_actions_compare_types_only():
    boxes = [(0.1, 0.1, 0.1, 0.1)]
    gt = aitw.from_action({"type": "type", "text": "WiFi"})
    assert gt.typed_text == "wifi"
    wrong_text = aitw.from_action({"type": "type", "text": "bluetooth"})
    s = aitw.step_scores(wrong_text, gt, boxes)
    assert s == {"correct": 1.0, "type_correct": 1.0, "text_correct": 0.0}  # text is not part of the match
    home = aitw.from_action({"type": "home"})
    # aitw_test.py compares the texts of any prediction on TYPE steps: "" is contained in "wifi"
    assert aitw.step_scores(home, gt, boxes) == {"correct": 0.0, "type_correct": 0.0, "text_correct": 1.0}
    tap_gt = aitw.AitwAction(TAP, (0.15, 0.15), (0.15, 0.15))
    assert aitw.step_scores(home, tap_gt, boxes) == {"correct": 0.0, "type_correct": 0.0, "click_correct": 0.0}
    # an action AITW has no id for never equals a ground-truth type
    assert aitw.from_action({"type": "long_press", "point": [0.1, 0.1]}).action_type == aitw.NO_ID


def test_aitw_empty_annot_position_scores_zero_whatever_the_action():
    gt = aitw.AitwAction(aitw.PRESS_HOME)
    s = aitw.step_scores(aitw.AitwAction(aitw.PRESS_HOME), gt, [])
    assert s["correct"] == 0.0 and s["type_correct"] == 0.0 and s["empty_annotations"] == 1.0


def test_aitw_text_accuracy_containment():
    assert aitw.text_match("wi", "wifi") and aitw.text_match("turn on wifi", "wifi")
    assert not aitw.text_match("wlan", "wifi")


def test_aitw_overall_is_unweighted_mean_of_categories():
    general = [{"correct": 1.0, "type_correct": 1.0}, {"correct": 1.0, "type_correct": 1.0},
               {"correct": 0.0, "type_correct": 1.0, "text_correct": 0.0}]
    install = [{"correct": 1.0, "type_correct": 1.0}]
    out = aitw.summarize({"general": general, "install": install})
    assert out["categories"]["general"]["step_accuracy"] == pytest.approx(2 / 3)
    assert out["categories"]["general"]["text_accuracy"] == 0.0
    assert out["categories"]["install"]["text_accuracy"] is None
    assert out["step_accuracy"] == pytest.approx((2 / 3 + 1.0) / 2)  # 0.8333, not the pooled 3/4
    assert out["general_step_accuracy"] == pytest.approx(2 / 3) and out["install_step_accuracy"] == 1.0


# ---------------------------------------------------------------------------------------------- Mind2Web
def test_mind2web_box_normalised_and_rounded():
    assert mind2web.norm_box({"x": 16, "y": 9, "width": 32, "height": 18}, (160, 90)) == (0.1, 0.1, 0.3, 0.3)
    assert mind2web.norm_box({"x": 1, "y": 0, "width": 1, "height": 3}, (3, 3)) == (0.333, 0.0, 0.667, 1.0)


def test_mind2web_op_f1():
    assert mind2web.op_string(3, "Boston MA") == "3 boston ma" and mind2web.op_string(4, "ignored") == "4"
    # pred {3, boston} vs gt {3, boston, ma}: P = 1, R = 2/3 -> F1 = 0.8
    assert mind2web.token_f1("3 boston", "3 boston ma") == pytest.approx(0.8)
    assert mind2web.token_f1("", "") == 1.0 and mind2web.token_f1("", "4") == 0.0
    assert mind2web.token_f1("3 boston", "4") == 0.0


def test_mind2web_step_scores():
    box = (0.1, 0.1, 0.3, 0.3)
    # right element, wrong operation: element 1, op F1("3 boston", "4") = 0 -> no step success
    s = mind2web.step_scores(3, "Boston", (0.3, 0.3), 4, "", box)
    assert s == {"element_match": 1.0, "op_f1": 0.0, "step_success": 0.0, "op_match": 0.0}
    # right operation and value, point just outside the box
    s = mind2web.step_scores(3, "boston", (0.3001, 0.2), 3, "Boston", box)
    assert s["op_f1"] == 1.0 and s["element_match"] == 0.0 and s["step_success"] == 0.0
    s = mind2web.step_scores(2, "2 adults", (0.2, 0.2), 2, "2 Adults", box)
    assert s["step_success"] == 1.0


def test_mind2web_micro_macro_and_op_type_mean():
    def row(ele, f1):
        return {"element_match": ele, "op_f1": f1, "step_success": float(ele == 1.0 and f1 == 1.0), "op_match": 0.0}

    steps = [("A", 4, row(1.0, 1.0)), ("A", 4, row(1.0, 0.0)), ("A", 3, row(0.0, 0.8)), ("B", 4, row(0.0, 1.0))]
    out = mind2web.summarize(steps)
    assert out["element_accuracy_micro"] == 0.5  # 2 of 4 steps
    assert out["element_accuracy"] == pytest.approx((2 / 3 + 0) / 2)  # macro: per-episode means
    # CLICK F1s [1, 0, 1] -> 2/3, TYPE [0.8]; SELECT absent: mean(2/3, 0.8) = 0.7333 (pooled would be 0.7)
    assert out["operation_f1_micro"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert out["operation_f1"] == pytest.approx(((1 + 0 + 0.8) / 3 + 1.0) / 2)
    assert out["step_success_rate_micro"] == 0.25 and out["step_success_rate"] == pytest.approx(1 / 6)
    assert out["operation_f1_by_type"]["select"] is None and out["episode_success_rate"] == 0.0


# ---------------------------------------------------------------------------------------------- GUI-Odyssey
def test_odyssey_levenshtein_and_text_rule():
    assert odyssey.levenshtein("kitten", "sitting") == 3
    assert odyssey.text_match("abcd", "abxd")  # 1 - 1/4 = 0.75
    assert odyssey.text_match("abcd", "axyd")  # 1 - 2/4 = 0.5, threshold inclusive
    assert not odyssey.text_match("abcd", "wxyz")
    assert not odyssey.text_match("ABCD", "abcd")  # case-sensitive: 1 - 4/4 = 0
    assert odyssey.text_match(" hello ", "say hello there") and odyssey.text_match("hello", "")  # empty pred


def test_odyssey_click_sam2_box_or_distance():
    box = [100, 100, 900, 300]
    assert odyssey.click_match((500, 200), (880, 290), box, "sam2")  # inside the box, 0.39 away
    assert not odyssey.click_match((500, 200), (880, 290), box, "distance")
    assert odyssey.click_match((0, 0), (0, 140), None, "distance")  # 0.14 exactly
    assert not odyssey.click_match((0, 0), (0, 141), None, "distance")
    with pytest.raises(ValueError, match="sam2_bbox"):
        odyssey.click_match((500, 500), (500, 500), [], "sam2")
    # through actions_match the empty box scores the step wrong, even for the exact point
    assert not odyssey.actions_match(("CLICK", (500, 500)), ("CLICK", (500, 500)), [], "sam2")
    assert odyssey.actions_match(("CLICK", (500, 500)), ("CLICK", (500, 500)), [], "distance")


def test_odyssey_commands():
    assert odyssey.command_of({"type": "scroll", "direction": "down"}) == ("SCROLL", "UP")  # finger up
    assert odyssey.command_of({"type": "click", "point": [0.5, 0.25]}) == ("CLICK", (500.0, 250.0))
    assert odyssey.command_of({"type": "recent"}) == ("PRESS_RECENT", "")
    assert odyssey.type_info("a:b") == "a"  # simple_decode keeps the text up to its first ':'
    assert odyssey.actions_match(("SCROLL", "up"), ("SCROLL", "UP"))
    assert not odyssey.actions_match(("LONG_PRESS", (5, 5)), ("CLICK", (5, 5)), [0, 0, 10, 10])
    assert odyssey.actions_match(("PRESS_HOME", ""), ("PRESS_HOME", ""))


def test_odyssey_sr_drops_incomplete_episodes_and_split_averaging():
    recs = [("A", "e1", 2, 1.0), ("A", "e1", 2, 1.0), ("A", "e2", 1, 0.0),
            ("B", "e3", 2, 1.0), ("B", "e3", 2, 0.0), ("B", "e4", 2, 1.0)]  # e4: 1 of 2 steps evaluated
    assert odyssey.episode_success([(e, n, c) for _, e, n, c in recs]) == (1, 3)
    macro = odyssey.summarize(recs, "macro")
    assert macro["action_matching_score"] == pytest.approx(4 / 6) and macro["success_rate"] == pytest.approx(1 / 3)
    micro = odyssey.summarize(recs, "micro")
    # A: AMS 2/3, SR 1/2 (e1 ok, e2 not); B: AMS 2/3, SR 0/1 (e3 fails, e4 dropped)
    assert micro["action_matching_score"] == pytest.approx(2 / 3) and micro["success_rate"] == pytest.approx(0.25)
    assert micro["categories"]["B"]["episodes"] == 1


# ---------------------------------------------------------------------------------------------- AndroidControl
def test_androidcontrol_distance_rule():
    assert ac.point_match((0.0, 0.14), (0.0, 0.0), "distance")
    assert not ac.point_match((0.1, 0.1), (0.0, 0.0), "distance")  # 0.1414
    assert not ac.point_match(None, (0.0, 0.0), "distance")


def test_androidcontrol_element_rule():
    gt = (0.5, 0.5)
    # enlarged 1.2x: y' = 0.4 - 0.01 = 0.39, h' = 0.12 -> x in [0.39, 0.51]; 0.505 is inside only when enlarged
    box = [0.4, 0.4, 0.1, 0.1]
    assert ac.element_match((0.505, 0.45), gt, [box])
    tall = [0.0, 0.0, 1.0, 0.2]  # centre (x 0.1, y 0.5), 0.4 from the ground truth; holds (0.05, 0.5)
    tiny = [[0.5 + d, 0.5, 0.002, 0.002] for d in (0.01, 0.02, 0.03, 0.04, 0.05)]  # 5 boxes nearer the gt
    assert ac.element_match((0.05, 0.5), gt, [tall] + tiny[:4])
    assert not ac.element_match((0.05, 0.5), gt, [tall] + tiny)  # not among the 5 nearest; 0.45 > 0.04
    assert ac.element_match((0.5, 0.53), gt, [tall] + tiny)  # fallback: within 0.04 (0.03)
    assert not ac.element_match((0.5, 0.55), gt, [])


def test_androidcontrol_text_rules():
    assert ac.text_match("Pizza ", "pizza places") and not ac.text_match("order pizza now", "pizza order")
    # token F1: P = 2/3, R = 1 -> 0.8 >= 0.5
    assert ac.curated_text_match("order pizza now", "pizza order")
    assert ac.token_f1("abc", "ab") == 1.0 and ac.token_f1("", "x") == 0.0


def test_androidcontrol_step_scores():
    click = {"type": "click", "point": [0.5, 0.5]}
    s = ac.step_scores({"type": "long_press", "point": [0.5, 0.55]}, click, "distance")
    assert s == {"grounding_match": 1.0, "type_match": 0.0, "step_match": 0.0}  # grounding needs no type match
    s = ac.step_scores({"type": "click", "point": [0.9, 0.9]}, click, "distance")
    assert s == {"grounding_match": 0.0, "type_match": 1.0, "step_match": 0.0}
    gt_type = {"type": "type", "text": "pizza"}
    s = ac.step_scores({"type": "type", "text": "burger"}, gt_type, "distance")
    assert s == {"type_match": 1.0, "step_match": 0.0}
    s = ac.step_scores({"type": "type", "text": "burger"}, gt_type, "box", type_includes_argument=True)
    assert s == {"type_match": 0.0, "step_match": 0.0}
    s = ac.step_scores({"type": "scroll", "direction": "up"}, {"type": "scroll", "direction": "down"}, "distance")
    assert s == {"type_match": 1.0, "step_match": 0.0}
    s = ac.step_scores({"type": "click", "point": [0.3, 0.3]}, click, "box", box_xyxy=[0.2, 0.2, 0.3, 0.3])
    assert s["step_match"] == 1.0  # box edge inclusive
    assert ac.step_scores({"type": "back"}, {"type": "back"}, "distance") == {"type_match": 1.0, "step_match": 1.0}


def test_androidcontrol_summary_grounding_denominator():
    rows = [{"type_match": 1.0, "step_match": 1.0, "grounding_match": 1.0},
            {"type_match": 1.0, "step_match": 0.0, "grounding_match": 0.0},
            {"type_match": 0.0, "step_match": 0.0}, {"type_match": 1.0, "step_match": 1.0}]
    out = ac.summarize(rows)
    assert out["type_accuracy"] == 0.75 and out["step_accuracy"] == 0.5
    assert out["grounding_accuracy"] == 0.5 and out["n_grounding"] == 2

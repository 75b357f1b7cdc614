"""Coordinate frames and output parsers of vlprune.eval.coords, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from vlprune.eval.coords import FRAMES, ParseError, find_point, find_tool_call, from_norm, to_norm

PHONE = (1092, 2408)  # the canvas Qwen2.5-VL sees for a 1080x2400 phone screenshot


def close(a, b, tol=1e-9):
    return all(math.isclose(x, y, abs_tol=tol) for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------------------------------------- frames
def test_frames_table():
    assert FRAMES == {"qwen2-vl": "knorm", "qwen2.5-vl": "canvas_px", "qwen3-vl": "knorm", "qwen3.5": "knorm"}


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl", "qwen3.5", "qwen3_vl"])
def test_to_norm_knorm_ignores_canvas(family):
    assert close(to_norm((500, 250), family, PHONE), (0.5, 0.25))
    assert close(to_norm((500, 250), family), (0.5, 0.25))


def test_to_norm_canvas_pixels():
    assert close(to_norm((546, 602), "qwen2.5-vl", PHONE), (0.5, 0.25))
    assert close(to_norm((546, 602), "qwen2_5_vl", PHONE), (0.5, 0.25))  # model_type name


def test_to_norm_accepts_closed_range_and_refuses_outside():
    assert close(to_norm((1000, 0), "qwen3-vl"), (1.0, 0.0))
    assert close(to_norm((1092, 2408), "qwen2.5-vl", PHONE), (1.0, 1.0))
    for bad, fam in [((1001, 5), "qwen3-vl"), ((-1, 5), "qwen2-vl"), ((1093, 0), "qwen2.5-vl"),
                     ((0, 2409), "qwen2.5-vl")]:
        with pytest.raises(ParseError, match="outside"):
            to_norm(bad, fam, PHONE)


@pytest.mark.parametrize("bad", [(float("nan"), 1), (1,), (1, 2, 3), ("1", 2), (True, 2)])
def test_to_norm_refuses_non_numbers(bad):
    with pytest.raises(ParseError):
        to_norm(bad, "qwen3-vl")


def test_canvas_family_needs_canvas():
    with pytest.raises(ValueError, match="canvas") as info:
        to_norm((1, 1), "qwen2.5-vl")
    assert not isinstance(info.value, ParseError)  # a harness bug, not a model format error
    with pytest.raises(ValueError, match="unknown model family"):
        to_norm((1, 1), "llava")


def test_from_norm():
    assert from_norm((0.5, 0.25), "qwen2-vl") == (500, 250)
    assert from_norm((1.0, 1.0), "qwen3-vl") == (999, 999)  # last cell of the 0..999 grid
    assert from_norm((0.5, 0.25), "qwen2.5-vl", PHONE) == (546, 602)
    assert from_norm((1.0, 1.0), "qwen2.5-vl", PHONE) == (1091, 2407)
    assert from_norm((0.1234, 0.9876), "qwen3.5") == (123, 988)
    with pytest.raises(ValueError):
        from_norm((1.2, 0.5), "qwen2-vl")


def test_from_norm_round_trip_within_one_cell():
    for xy in [(0.0, 0.0), (0.3333, 0.6667), (0.999, 0.001)]:
        back = to_norm(from_norm(xy, "qwen2.5-vl", PHONE), "qwen2.5-vl", PHONE)
        assert abs(back[0] - xy[0]) <= 1 / PHONE[0] and abs(back[1] - xy[1]) <= 1 / PHONE[1]


# ---------------------------------------------------------------------------------------------- tool calls
CALL = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [546, 1204]}}\n</tool_call>'


def test_find_tool_call_shapes():
    want = {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [546, 1204]}}
    assert find_tool_call(CALL) == want
    assert find_tool_call("I will click it.\n" + CALL + "\nDone.") == want
    assert find_tool_call(CALL.replace("\n</tool_call>", "")) == want  # cut before the closing tag
    assert find_tool_call('```json\n{"a": 1}\n```') == {"a": 1}
    assert find_tool_call('The answer is {"a": [1, 2]} here.') == {"a": [1, 2]}
    assert find_tool_call("nothing here") is None
    assert find_tool_call("use {curly} braces") is None


def test_find_tool_call_is_strict_inside_tags():
    with pytest.raises(ParseError, match="not valid JSON"):
        find_tool_call('<tool_call>{"name": "x", "arguments": {</tool_call>')
    with pytest.raises(ParseError, match="not valid JSON"):
        find_tool_call("```json\n{'single': 'quotes'}\n```")
    with pytest.raises(ParseError, match="JSON object"):
        find_tool_call("<tool_call>[1, 2]</tool_call>")
    with pytest.raises(ParseError, match="text after"):
        find_tool_call('<tool_call>{"a": 1} trailing</tool_call>')


# ---------------------------------------------------------------------------------------------- points
@pytest.mark.parametrize(
    "text, family, want",
    [
        ("<|object_ref_start|>the button<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>",
         "qwen2-vl", (0.2, 0.3)),
        ("the button(100,200),(300,400)", "qwen2-vl", (0.2, 0.3)),  # special tokens skipped in decoding
        ("(250, 750)", "qwen2-vl", (0.25, 0.75)),
        ("<box>(100,200),(300,400)</box>", "qwen2-vl", (0.2, 0.3)),
        ('{"point_2d": [546, 1204], "label": "ok"}', "qwen2.5-vl", (0.5, 0.5)),
        ('```json\n[{"bbox_2d": [0, 0, 1092, 1204], "label": "a"}]\n```', "qwen2.5-vl", (0.5, 0.25)),
        (CALL, "qwen2.5-vl", (0.5, 0.5)),
        (CALL.replace("[546, 1204]", "[500, 1000]"), "qwen3-vl", (0.5, 1.0)),
        ('<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [100, 200, 300, 400]}}'
         "</tool_call>", "qwen3.5", (0.2, 0.3)),
        ("[100, 200]", "qwen3-vl", (0.1, 0.2)),
        ('(10,10) then {"point_2d": [500, 500]}', "qwen3-vl", (0.5, 0.5)),  # JSON shapes come first
    ],
)
def test_find_point_shapes(text, family, want):
    assert close(find_point(text, family, PHONE), want)


@pytest.mark.parametrize(
    "text, family, match",
    [
        ("I cannot find that element.", "qwen3-vl", "no point"),
        ('<tool_call>{"name": "computer_use", "arguments": {"action": "type", "text": "hi"}}</tool_call>',
         "qwen3-vl", "no point"),
        ('{"point_2d": [1, 2, 3]}', "qwen3-vl", "2 \\(point\\) or 4"),
        ('{"point_2d": ["a", 2]}', "qwen3-vl", "list of numbers"),
        ("(1,2),(3,4),(5,6)", "qwen2-vl", "neither one point"),
        ("click (10,20) or (30,40)", "qwen2-vl", "neither one point"),
        ("<|box_start|>(1,2),(3,4),(5,6)<|box_end|>", "qwen2-vl", "1 or 2"),
        ("(1200, 40)", "qwen2-vl", "outside"),
        ('{"point_2d": [1100, 40]}', "qwen2.5-vl", "outside"),  # 1100 > W_r = 1092
    ],
)
def test_find_point_refuses(text, family, match):
    with pytest.raises(ParseError, match=match):
        find_point(text, family, PHONE)

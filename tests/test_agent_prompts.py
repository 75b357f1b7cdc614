"""Agent records, per-family action conventions (write / parse) and step prompts."""

from __future__ import annotations

import json

import pytest

from corpus import CORPUS, needs_corpus
from vlprune.eval.agent import (
    Action,
    Episode,
    PromptConfig,
    RecordError,
    Step,
    TaskSpec,
    action_arguments,
    build_messages,
    format_action,
    load_trajectories,
    load_trajectory,
    parse_action,
    step_views,
    swipe_direction,
)
from vlprune.eval.base import DatasetError, ImageRef, PromptContext
from vlprune.eval.coords import ParseError

MOBILE = TaskSpec("mobile", ("click", "long_press", "scroll", "type", "open_app", "back", "home", "wait", "finish",
                             "impossible"), "Operate the phone.")
WEB = TaskSpec("web", ("click", "hover", "scroll", "type", "select", "enter", "back", "finish"), "Operate the browser.")


# ---------------------------------------------------------------------------------------------- records
def test_action_validation():
    with pytest.raises(RecordError, match="needs a point"):
        Action("click")
    with pytest.raises(RecordError, match=r"\[0, 1\]"):
        Action("click", (1.2, 0.5))
    with pytest.raises(RecordError, match="direction"):
        Action("scroll", direction="sideways")
    with pytest.raises(RecordError, match="takes no point"):
        Action("home", (0.5, 0.5))
    with pytest.raises(RecordError, match="'text'"):
        Action("type")
    with pytest.raises(RecordError, match="unknown action type"):
        Action("fly")
    a = Action("type", (0.25, 0.5), text="Boston")
    assert a.to_json() == {"type": "type", "point": [0.25, 0.5], "text": "Boston"}
    assert Action.from_json(a.to_json()) == a


def test_swipe_direction_dominant_axis_tie_vertical():
    assert swipe_direction((500, 800), (500, 200)) == "up"
    assert swipe_direction((100, 500), (600, 400)) == "right"
    assert swipe_direction((500, 500), (400, 600)) == "down"  # |dx| == |dy| -> vertical


# ---------------------------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("family,canvas,text", [
    # Qwen2.5-VL: absolute pixels of the 1092x2408 canvas; 0.5 * 1092 = 546, 0.25 * 2408 = 602
    ("qwen2.5-vl", (1092, 2408),
     '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [546, 602]}}\n</tool_call>'),
    ("qwen3-vl", None,
     '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [500, 250]}}\n</tool_call>'),
    ("qwen2-vl", None, '{"action": "click", "coordinate": [500, 250]}'),
])
def test_format_and_parse_click(family, canvas, text):
    a = Action("click", (0.5, 0.25))
    assert format_action(a, "mobile", family, canvas) == text
    assert parse_action(text, family, canvas) == a


def test_parse_maps_canvas_pixels_back_to_the_original():
    # a 1080x2400 phone seen as 1092x2408: pixel (273, 1806) is (0.25, 0.75) of the canvas and the original
    out = '<tool_call>{"name": "mobile_use", "arguments": {"action": "long_press", "coordinate": [273, 1806]}}</tool_call>'
    assert parse_action(out, "qwen2.5-vl", (1092, 2408)) == Action("long_press", (0.25, 0.75))
    # a box gives its centre: (100+300)/2 = 200 on a 0-1000 grid -> 0.2
    assert parse_action('{"action": "click", "coordinate": [100, 400, 300, 600]}', "qwen3-vl").point == (0.2, 0.5)


def test_swipe_is_read_as_the_opposite_content_direction():
    up = '{"action": "swipe", "coordinate": [500, 800], "coordinate2": [500, 200]}'  # finger moves up
    assert parse_action(up, "qwen3-vl") == Action("scroll", direction="down")
    left = '{"action": "swipe", "coordinate": [800, 500], "coordinate2": [200, 520]}'  # finger moves left
    assert parse_action(left, "qwen2-vl") == Action("scroll", direction="right")
    # writing a scroll down uses the fixed swipe (0.5, 0.8) -> (0.5, 0.2)
    args = action_arguments(Action("scroll", direction="down"), "mobile", "qwen3-vl")
    assert args == {"action": "swipe", "coordinate": [500, 800], "coordinate2": [500, 200]}


@pytest.mark.parametrize("args,expected", [
    ({"action": "type", "text": "pizza"}, Action("type", text="pizza")),
    ({"action": "open", "text": "Clock"}, Action("open_app", app="Clock")),
    ({"action": "system_button", "button": "Back"}, Action("back")),
    ({"action": "system_button", "button": "home"}, Action("home")),
    ({"action": "terminate", "status": "success"}, Action("finish")),
    ({"action": "terminate", "status": "failure"}, Action("impossible")),
    ({"action": "wait", "time": 2}, Action("wait")),
    ({"action": "left_click", "coordinate": [100, 900]}, Action("click", (0.1, 0.9))),
    ({"action": "mouse_move", "coordinate": [100, 900]}, Action("hover", (0.1, 0.9))),
    ({"action": "select", "coordinate": [500, 500], "text": "2 Adults"}, Action("select", (0.5, 0.5), text="2 Adults")),
    ({"action": "key", "keys": ["Enter"], "coordinate": [0, 1000]}, Action("enter", (0.0, 1.0))),
    ({"action": "scroll", "pixels": -300}, Action("scroll", direction="down")),
])
def test_parse_action_forms(args, expected):
    text = "<tool_call>" + json.dumps({"name": "computer_use", "arguments": args}) + "</tool_call>"
    assert parse_action(text, "qwen3-vl") == expected


@pytest.mark.parametrize("text,match", [
    ("I would tap the search bar.", "no action JSON"),
    ('{"action": "click", "coordinate": [1001, 10]}', "outside"),
    ('{"action": "click"}', '"coordinate"'),
    ('{"action": "type"}', '"text"'),
    ('{"action": "double_click", "coordinate": [1, 1]}', "unsupported action"),
    ('{"action": "swipe", "coordinate": [5, 5], "coordinate2": [5, 5]}', "no direction"),
    ('{"action": "terminate", "status": "maybe"}', "status"),
    ('{"action": "system_button", "button": "Power"}', "system_button"),
    ('<tool_call>{"name": "shell", "arguments": {"action": "wait"}}</tool_call>', "unknown tool"),
    ('<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [1, </tool_call>', "not valid JSON"),
])
def test_unparseable_outputs_are_errors(text, match):
    with pytest.raises(ParseError, match=match):
        parse_action(text, "qwen3-vl")


def test_canvas_pixels_outside_the_canvas_are_refused():
    with pytest.raises(ParseError, match="outside"):
        parse_action('{"action": "click", "coordinate": [1093, 10]}', "qwen2.5-vl", (1092, 2408))


# ---------------------------------------------------------------------------------------------- prompts
def _episode(n: int) -> Episode:
    steps = [Step(str(k), ImageRef(path=f"/x/{k}.png"), Action("click", (0.1 * (k + 1), 0.5))) for k in range(n)]
    return Episode("ep", "Open the settings", steps)


def test_step_views_take_last_n_images_and_last_k_actions():
    ep = _episode(5)
    views = dict(step_views(ep, PromptConfig(history_actions=2, history_images=3)))
    assert [r.path for r in views[0].images] == ["/x/0.png"]
    assert [r.path for r in views[4].images] == ["/x/1.png", "/x/2.png", "/x/3.png", "/x/4.png"]  # current last
    assert [a.point[0] for a in views[4].history] == pytest.approx([0.3, 0.4])
    ep.steps[2].scored = False  # kept as history, no sample of its own
    views = dict(step_views(ep, PromptConfig(history_actions=4, history_images=0)))
    assert sorted(views) == [0, 1, 3, 4] and len(views[3].history) == 3


def test_prompt_config_is_validated():
    with pytest.raises(ValueError, match="history_images"):
        PromptConfig(history_images=-1)
    with pytest.raises(ValueError, match="history_actions"):
        PromptConfig(history_actions=1.5)


def _texts(messages) -> str:
    return "\n".join(c["text"] for m in messages for c in m["content"] if c["type"] == "text")


def test_build_messages_layout_and_history():
    history = [Action("click", (0.5, 0.25)), Action("scroll", direction="down"), Action("type", text="wifi")]
    ctx = PromptContext("qwen2.5-vl", ((1080, 2400),) * 3, ((1092, 2408),) * 3)
    msgs = build_messages("Turn on wifi", history, 3, ctx, MOBILE, PromptConfig(history_actions=2),
                          instruction="tap the toggle")
    user = msgs[1]["content"]
    kinds = [c["type"] for c in user]
    assert kinds.count("image") == 3
    # the current screenshot is the last image, preceded by its label; text follows it
    last = max(i for i, k in enumerate(kinds) if k == "image")
    assert user[last - 1]["text"] == "Current screenshot:" and kinds[last + 1:] == ["text"]
    text = user[-1]["text"]
    assert "Task: Turn on wifi" in text and "Step instruction: tap the toggle" in text
    # only the last 2 actions, numbered, in the family's argument JSON (fixed swipe in canvas pixels)
    assert "1. " + json.dumps({"action": "swipe", "coordinate": [546, 1926], "coordinate2": [546, 482]}) in text
    assert '2. {"action": "type", "text": "wifi"}' in text and "coordinate\": [546, 602]" not in text
    system = msgs[0]["content"][0]["text"]
    assert "1092x2408" in system and '"name": "mobile_use"' in system


def test_build_messages_frames_and_empty_history():
    ctx = PromptContext("qwen2-vl", ((1920, 1080),), ((1932, 1092),))
    msgs = build_messages("Find the docs", [], 1, ctx, WEB)
    assert [c["type"] for c in msgs[1]["content"]].count("image") == 1
    assert "Previous actions:\nNone" in _texts(msgs)
    assert "1000x1000 grid" in msgs[0]["content"][0]["text"] and "<tool_call>" not in msgs[0]["content"][0]["text"]
    with pytest.raises(ValueError, match="describes 1 images"):
        build_messages("x", [], 2, ctx, WEB)


def test_task_spec_refuses_actions_without_a_platform_form():
    with pytest.raises(ValueError, match="hover"):
        TaskSpec("mobile", ("click", "hover"), "x")


# ---------------------------------------------------------------------------------------------- trajectories
@needs_corpus
def test_load_trajectories_from_the_corpus():
    eps = {e.id: e for e in load_trajectories(CORPUS / "trajectories")}
    ep = eps["mob_git_tutorial_pull"]  # 1170x2532; step 3 clicks (613, 1581), step 5 goes back
    assert ep.goal.startswith("Read the git tutorial")
    assert [s.action.type for s in ep.steps] == ["scroll", "scroll", "scroll", "click", "scroll", "back", "finish"]
    assert ep.steps[0].action.direction == "down"
    assert ep.steps[3].action.point == pytest.approx((613 / 1170, 1581 / 2532))
    assert ep.steps[3].meta["target"] == "git-pull(1)"
    web = eps["web_flask_search_blueprints"]  # step 0 types "blueprint" at (460, 432) of 1920x1080
    assert web.steps[0].action == Action("type", (460 / 1920, 432 / 1080), text="blueprint")
    assert web.steps[0].meta["submit"] is True and web.meta["platform"] == "web"


def test_load_trajectory_errors(tmp_path):
    with pytest.raises(DatasetError, match="no episode.json"):
        load_trajectory(tmp_path)
    ep = {"episode_id": "e", "goal": "g", "width": 100, "height": 50,
          "steps": [{"step": 0, "screenshot": "step_00.png", "action": {"type": "click", "x": 120, "y": 10}}]}
    (tmp_path / "episode.json").write_text(json.dumps(ep))
    with pytest.raises(DatasetError, match="not found"):
        load_trajectory(tmp_path)
    (tmp_path / "step_00.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"outside the 100x50"):
        load_trajectory(tmp_path)
    with pytest.raises(DatasetError, match="no <episode>"):
        load_trajectories(tmp_path / "nothing")


@needs_corpus
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5"])
def test_every_recorded_episode_prompts_in_every_family(family):
    from vlprune.eval.agent import trajectory_spec

    cfg = PromptConfig(history_actions=3, history_images=2)
    for ep in load_trajectories(CORPUS / "trajectories"):
        spec = trajectory_spec(ep)
        assert spec.platform == ep.meta["platform"]
        w, h = ep.meta["size"]
        for i, view in step_views(ep, cfg):
            n = len(view.images)
            assert n == min(i, 2) + 1 and view.images[-1] is ep.steps[i].screenshot
            ctx = PromptContext(family, ((w, h),) * n, ((w // 2, h // 2),) * n)
            text = build_messages(ep.goal, view.history, n, ctx, spec, cfg)[1]["content"][-1]["text"]
            assert text.count("\n") == 1 + max(1, min(i, 3))  # task line, "Previous actions:", one line each
            for a in view.history:  # every recorded action has a form on its platform
                action_arguments(a, spec.platform, family, (w // 2, h // 2))

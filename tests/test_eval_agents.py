"""Agent benchmarks end to end on fixture files in the published layouts: load, prompt, parse, score, summarize."""

from __future__ import annotations

import gzip
import json

import pytest

from eval_fixtures_agents import (
    AGENT_FIXTURES,
    PHONE,
    write_aitw,
    write_androidcontrol,
    write_androidcontrol_curated,
    write_gui_odyssey,
    write_mind2web,
)
from vlprune.eval import DatasetError, Parsed, PromptContext, Sample, create_dataset
from vlprune.eval.agent.tfrecord import crc32c, encode_example, parse_example, read_records, TFRecordError


def _ctx(sample, family="qwen3-vl", scale=1):
    sizes = tuple(r.size() for r in sample.images)
    return PromptContext(family, sizes, tuple((w * scale, h * scale) for w, h in sizes))


def _tool(args: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": "mobile_use", "arguments": args}) + "\n</tool_call>"


def _run(ds, samples, outputs, family="qwen3-vl", scale=1):
    """Parse and score ``outputs[id]`` for every sample; return the summary and the records."""
    records = []
    for s in samples:
        ctx = _ctx(s, family, scale)
        msgs = ds.messages(s, ctx)
        assert sum(c["type"] == "image" for m in msgs for c in m["content"]) == len(s.images)
        parsed = ds.parse(outputs[s.id], s, ctx)
        records.append({"id": s.id, "meta": s.meta, "scores": ds.score(parsed, s), "format_error": parsed.format_error})
    return ds.summarize(records), records


def _stand_in(ds, problem_id: str) -> dict:
    """The record a runner writes for a counted load problem: a target-less sample, scored as failed."""
    stub = Sample(problem_id, [], "", None, {"load_problem": "file [record 9]: bad"})
    reason = "sample failed: file [record 9]: bad"
    return {"id": stub.id, "meta": stub.meta, "scores": ds.score(Parsed(None, reason), stub),
            "format_error": reason, "failed": True}


# ---------------------------------------------------------------------------------------------- AITW
def test_aitw_load(tmp_path):
    res = create_dataset("aitw").load(write_aitw(tmp_path))
    by_id = {s.id: s for s in res.samples}
    assert list(by_id) == ["101:0", "101:1", "101:2", "202:0", "202:2", "303:0"]
    (p,) = res.problems
    assert not p.counted and "202_1.png" in p.reason and p.id == "202:1"
    assert by_id["202:2"].meta["history"] == [{"type": "home"}]  # the skipped step is not history
    t = by_id["101:0"].target
    assert t["touch_yx"] == [0.30, 0.50] and t["annot_position"][1] == [0.80, 0.10, 0.06, 0.30]
    assert t["action"] == {"type": "click", "point": [0.5, 0.3]}
    assert by_id["101:1"].target["touch_yx"] == [0.8, 0.5]  # fixed swipe, whatever touch/lift say
    assert by_id["101:0"].meta["category"] == "general" and len(by_id["101:2"].images) == 1


def test_aitw_end_to_end(tmp_path):
    ds = create_dataset("aitw")
    samples = ds.load(write_aitw(tmp_path)).samples
    outputs = {
        "101:0": _tool({"action": "click", "coordinate": [690, 330]}),  # (y 0.33, x 0.69): in the gt's box
        "101:1": _tool({"action": "swipe", "coordinate": [500, 300], "coordinate2": [500, 700]}),  # vertical
        "101:2": _tool({"action": "type", "text": "wlan"}),  # right type, wrong text
        "202:0": "press the home button",  # format error
        "202:2": _tool({"action": "terminate", "status": "success"}),
        "303:0": _tool({"action": "click", "coordinate": [200, 900]}),  # exact, but empty annot_position
    }
    summary, records = _run(ds, samples, outputs)
    cats = summary["categories"]
    assert cats["general"]["step_accuracy"] == 1.0 and cats["general"]["text_accuracy"] == 0.0
    assert cats["install"]["step_accuracy"] == 0.5 and summary["single_step_accuracy"] == 0.0
    assert summary["step_accuracy"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert summary["format_errors"] == 1 and summary["empty_annotations"] == 1 and summary["n"] == 6
    assert "aitw_test.py" in summary["variants"]["step_accuracy"]
    # a counted load problem scores 0 in its episode's category; one of an unknown episode is reported
    summary = ds.summarize(records + [_stand_in(ds, "202:9"), _stand_in(ds, "999:0")])
    assert summary["categories"]["install"]["step_accuracy"] == pytest.approx(1 / 3)
    assert summary["load_problems"] == 2 and summary["uncategorized"] == 1 and summary["format_errors"] == 1


# ---------------------------------------------------------------------------------------------- Mind2Web
def test_mind2web_load(tmp_path):
    res = create_dataset("mind2web").load(write_mind2web(tmp_path))
    by_id = {s.id: s for s in res.samples}
    assert list(by_id) == ["a1:u1", "a1:u2", "a1:u3", "b2:v1", "b2:v4"]
    assert [p.counted for p in res.problems] == [False, False]
    assert "no bbox" in res.problems[0].reason and "kept as history" in res.problems[1].reason
    t = by_id["a1:u2"].target
    assert t["box"] == [0.5, 0.5, 0.75, 0.6] and t["op"] == 3 and t["value"] == "Boston"
    assert by_id["b2:v1"].target["box"] == [0.75, 0.667, 0.85, 0.867]
    # v2 (no bbox) is not history, v3 (unparseable value) is
    assert [h["type"] for h in by_id["b2:v4"].meta["history"]] == ["hover", "type"]
    assert by_id["a1:u1"].meta["website"] == "united" and by_id["b2:v4"].meta["op"] == 4


def test_mind2web_end_to_end_canvas_pixels(tmp_path):
    ds = create_dataset("mind2web")
    samples = ds.load(write_mind2web(tmp_path)).samples

    def web(args):
        return "<tool_call>" + json.dumps({"name": "computer_use", "arguments": args}) + "</tool_call>"

    # Qwen2.5-VL seeing the 160x90 screenshots as 320x180: pixels / 320, / 180
    outputs = {
        "a1:u1": web({"action": "left_click", "coordinate": [64, 36]}),  # (0.2, 0.2): in box, op 4
        "a1:u2": web({"action": "type", "coordinate": [192, 99], "text": "boston"}),  # (0.6, 0.55), F1 1
        "a1:u3": web({"action": "select", "coordinate": [288, 162], "text": "2 adults"}),  # (0.9, 0.9) outside
        "b2:v1": web({"action": "mouse_move", "coordinate": [256, 144]}),  # (0.8, 0.8) in box
        "b2:v4": "Enter",
    }
    summary, _ = _run(ds, samples, outputs, family="qwen2.5-vl", scale=2)
    assert summary["element_accuracy_micro"] == pytest.approx(3 / 5)
    assert summary["element_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)  # macro over episodes
    assert summary["step_success_rate_micro"] == pytest.approx(3 / 5)
    assert summary["step_success_rate"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # op F1 by type: click (u1 1, v1 1, v4 0) 2/3; type 1; select 1
    assert summary["operation_f1_micro"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert summary["operation_f1"] == pytest.approx((1.0 + 1 / 2) / 2)
    assert summary["format_errors"] == 1 and summary["n_episodes"] == 2


def test_mind2web_unknown_operation_counts(tmp_path):
    write_mind2web(tmp_path, split="website")
    f = tmp_path / "mind2web_data_test_website.json"
    data = json.loads(f.read_text())
    data[0]["actions"][0]["operation"]["original_op"] = "DRAG"
    f.write_text(json.dumps(data))
    res = create_dataset("mind2web", split="website").load(tmp_path)
    (p,) = [p for p in res.problems if p.counted]
    assert "DRAG" in p.reason and p.index == 0 and p.id == "a1:u1"
    with pytest.raises(ValueError, match="split"):
        create_dataset("mind2web", split="cross")


# ---------------------------------------------------------------------------------------------- GUI-Odyssey
def test_gui_odyssey_load(tmp_path):
    res = create_dataset("gui-odyssey").load(write_gui_odyssey(tmp_path))
    by_id = {s.id: s for s in res.samples}
    assert len(by_id) == 7 and not res.problems
    assert [len(by_id[f"e1:{k}"].images) for k in range(4)] == [1, 2, 3, 4]  # up to 4 history screenshots
    assert by_id["e1:3"].images[-1].path.endswith("e1_3.png")
    assert by_id["e1:1"].target["command"] == ["SCROLL", "UP"]
    assert by_id["e1:1"].target["action"] == {"type": "scroll", "direction": "down"}
    assert by_id["e1:0"].target["command"] == ["CLICK", [512.0, 880.0]]
    assert by_id["e2:0"].target["command"] == ["PRESS_HOME", ""] and by_id["e2:1"].meta["step_length"] == 3
    low = create_dataset("gui-odyssey", instruction="low", history_images=0).load(tmp_path).samples
    assert low[0].question == "Tap Search" and len(low[3].images) == 1


def test_gui_odyssey_end_to_end(tmp_path):
    write_gui_odyssey(tmp_path)
    outputs = {
        "e1:0": _tool({"action": "click", "coordinate": [590, 900]}),  # inside sam2 [430, 850, 600, 910]
        "e1:1": _tool({"action": "swipe", "coordinate": [500, 900], "coordinate2": [500, 100]}),  # finger UP
        "e1:2": _tool({"action": "type", "text": "hello world"}),  # contains "hello"
        "e1:3": _tool({"action": "terminate", "status": "success"}),
        "e2:0": _tool({"action": "system_button", "button": "Home"}),
        "e2:1": _tool({"action": "long_press", "coordinate": [400, 400]}),  # outside, 0.42 away
        "e2:2": _tool({"action": "terminate", "status": "failure"}),
    }
    ds = create_dataset("gui-odyssey")
    summary, _ = _run(ds, ds.load(tmp_path).samples, outputs)
    # random split: mean over categories (General_Tool 4/4, Web_Shopping 2/3); SR 1 and 0
    assert summary["action_matching_score"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["success_rate"] == pytest.approx(0.5)
    ds = create_dataset("gui-odyssey", split="task")
    summary, _ = _run(ds, ds.load(tmp_path).samples, outputs)
    assert summary["action_matching_score"] == pytest.approx(6 / 7) and summary["success_rate"] == 0.5
    assert "macro" in summary["variants"]["action_matching_score"]


def test_gui_odyssey_bad_action_is_a_counted_problem(tmp_path):
    write_gui_odyssey(tmp_path)
    f = tmp_path / "annotations" / "e2.json"
    data = json.loads(f.read_text())
    data["steps"][1]["action"] = "PINCH"
    f.write_text(json.dumps(data))
    res = create_dataset("gui-odyssey").load(tmp_path)
    (p,) = res.problems
    assert p.counted and p.id == "e2:1" and "PINCH" in p.reason and str(f) == p.file
    assert "e2:1" not in {s.id for s in res.samples}


# ---------------------------------------------------------------------------------------------- AndroidControl
def test_example_wire_format_read_from_hand_written_bytes():
    # tf.train.Example {features {feature {key: "episode_id" value {int64_list {value: [7]}}}}}, bytes by hand
    packed = b"\x0a\x01\x07"  # Int64List.value (field 1, packed): [7]
    unpacked = b"\x08\x07\x08\x09"  # the same field as two varints: [7, 9]
    for body, values in ((packed, [7]), (unpacked, [7, 9])):
        feature = b"\x1a" + bytes([len(body)]) + body  # Feature.int64_list = field 3
        entry = b"\x0a\x0aepisode_id\x12" + bytes([len(feature)]) + feature
        features = b"\x0a" + bytes([len(entry)]) + entry
        assert parse_example(b"\x0a" + bytes([len(features)]) + features) == {"episode_id": values}
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    ex = encode_example({"goal": ["hé"], "n": [-2, 3], "f": [0.5]})
    assert parse_example(ex) == {"goal": ["hé".encode()], "n": [-2, 3], "f": [0.5]}


def test_androidcontrol_load(tmp_path):
    res = create_dataset("androidcontrol").load(write_androidcontrol(tmp_path))
    by_id = {s.id: s for s in res.samples}
    assert sorted(by_id) == ["7:0", "7:1", "7:2", "8:0", "8:1"] and not res.problems
    assert by_id["7:0"].target["action"] == {"type": "click", "point": [0.5, 0.5]}  # (45, 100) of 90x200
    assert by_id["7:1"].target["action"] == {"type": "type", "text": "pizza"}
    assert by_id["8:0"].target["action"] == {"type": "open_app", "app": "Clock"}
    assert by_id["7:2"].images[0].size() == PHONE and by_id["7:2"].images[0].data[:4] == b"\x89PNG"
    assert "instruction" not in by_id["7:0"].meta
    idd = create_dataset("androidcontrol", subsplit="IDD").load(tmp_path).samples
    assert [s.id for s in idd] == ["7:0", "7:1", "7:2"]
    low = {s.id: s for s in create_dataset("androidcontrol", mode="low").load(tmp_path).samples}
    assert low["7:1"].meta["instruction"] == "type pizza"
    s = low["7:0"]
    text = create_dataset("androidcontrol", mode="low").messages(s, _ctx(s))[1]["content"][-1]["text"]
    assert text.startswith("Task: Search for pizza places\nStep instruction: open search\n")
    elem = {s.id: s for s in create_dataset("androidcontrol", click_rule="element").load(tmp_path).samples}
    # (30, 90)-(60, 110) -> y 0.45, x 1/3, h 0.1, w 1/3; (0, 0)-(90, 20) -> 0, 0, 0.1, 1
    boxes = elem["7:0"].target["elements"]
    assert len(boxes) == 2 and boxes[0] == pytest.approx([0.45, 1 / 3, 0.1, 1 / 3])
    assert boxes[1] == pytest.approx([0.0, 0.0, 0.1, 1.0])


def test_androidcontrol_end_to_end(tmp_path):
    ds = create_dataset("androidcontrol")
    samples = ds.load(write_androidcontrol(tmp_path)).samples
    outputs = {
        "7:0": _tool({"action": "click", "coordinate": [500, 500]}),
        "7:1": _tool({"action": "type", "text": "Pizza"}),
        "7:2": _tool({"action": "swipe", "coordinate": [500, 200], "coordinate2": [500, 800]}),  # content up
        "8:0": _tool({"action": "open", "text": "Clock"}),
        "8:1": _tool({"action": "click", "coordinate": [100, 100]}),
    }
    summary, _ = _run(ds, samples, outputs)
    assert summary["type_accuracy"] == 0.8 and summary["step_accuracy"] == 0.6
    assert summary["grounding_accuracy"] == 1.0 and summary["n_grounding"] == 1
    assert summary["mode"] == "high" and "0.14" in summary["variants"]["grounding_accuracy"]


def _raw_records(shard):
    return gzip.decompress(shard.read_bytes())


def test_androidcontrol_corrupt_shards_are_reported(tmp_path):
    write_androidcontrol(tmp_path)
    shard = tmp_path / "android_control-00001-of-00002"  # episode 8
    raw = bytearray(_raw_records(shard))
    raw[200] ^= 0xFF  # one flipped byte inside the screenshot data
    shard.write_bytes(gzip.compress(bytes(raw)))
    assert len(create_dataset("androidcontrol").load(tmp_path).samples) == 5  # data CRC not checked by default
    res = create_dataset("androidcontrol", verify_crc=True).load(tmp_path)
    assert {s.id for s in res.samples} == {"7:0", "7:1", "7:2"}
    msgs = [str(p) for p in res.problems]
    assert any("data CRC mismatch" in m and "00001-of-00002" in m for m in msgs)
    assert any("episode 8 not found" in m for m in msgs) and all(p.counted for p in res.problems)
    shard.write_bytes(gzip.compress(bytes(raw[:-10])))  # truncated record
    with pytest.raises(TFRecordError, match=r"\[record 0\]: truncated"):
        list(read_records(shard))
    shard.write_bytes(b"not a gzip file")
    res = create_dataset("androidcontrol").load(tmp_path)
    assert any("shard unreadable" in str(p) for p in res.problems)


def test_androidcontrol_curated(tmp_path):
    write_androidcontrol_curated(tmp_path)
    ds = create_dataset("androidcontrol", variant="curated")
    res = ds.load(tmp_path)
    by_id = {s.id: s for s in res.samples}
    t = by_id["android_control_high_bbox:0"].target
    assert t["box"] == pytest.approx([20 / 90, 40 / 200, 60 / 90, 80 / 200])
    assert by_id["android_control_high_bbox:2"].target["action"] == {"type": "scroll", "direction": "down"}
    assert by_id["android_control_high_bbox:1"].meta["history_text"] == "Step 1: click"
    s = by_id["android_control_high_bbox:1"]
    assert ds.messages(s, _ctx(s))[1]["content"][-1]["text"].endswith("Previous actions:\nStep 1: click")
    outputs = {
        "android_control_high_bbox:0": _tool({"action": "click", "coordinate": [400, 300]}),  # inside the box
        "android_control_high_bbox:1": _tool({"action": "type", "text": "pizza hut"}),
        "android_control_high_bbox:2": _tool({"action": "swipe", "coordinate": [500, 900],
                                              "coordinate2": [500, 100]}),  # finger up = content down
    }
    summary, _ = _run(ds, res.samples, outputs)
    assert (summary["type_accuracy"], summary["grounding_accuracy"], summary["step_accuracy"]) == (1.0, 1.0, 1.0)
    outputs["android_control_high_bbox:0"] = _tool({"action": "click", "coordinate": [900, 900]})
    outputs["android_control_high_bbox:1"] = _tool({"action": "type", "text": "burgers"})
    summary, _ = _run(ds, res.samples, outputs)
    # curated "type" includes the text: 2/3; grounding 0/1; step 1/3
    assert summary["type_accuracy"] == pytest.approx(2 / 3) and summary["grounding_accuracy"] == 0.0
    assert summary["step_accuracy"] == pytest.approx(1 / 3)
    # the point file, scored by distance: gt (40/90, 60/200) vs (0.4, 0.3) -> 0.044
    dist = create_dataset("androidcontrol", variant="curated", click_rule="distance")
    pts = dist.load(tmp_path).samples
    outputs = {s.id: _tool({"action": "click", "coordinate": [400, 300]}) for s in pts}
    summary, _ = _run(dist, pts, outputs)
    assert summary["grounding_accuracy"] == 1.0 and pts[0].id == "android_control_high_point:0"


def test_androidcontrol_options_are_validated():
    assert create_dataset("androidcontrol", variant="curated", history_images=2).prompt.history_images == 2
    with pytest.raises(ValueError, match="improved"):
        create_dataset("androidcontrol", improved=True)
    with pytest.raises(ValueError, match="click_rule"):
        create_dataset("androidcontrol", click_rule="box")
    with pytest.raises(ValueError, match="unknown option.*colour"):
        create_dataset("androidcontrol", colour="red")


# ---------------------------------------------------------------------------------------------- all
@pytest.mark.parametrize("name", sorted(AGENT_FIXTURES))
def test_every_prompt_has_one_image_entry_per_image(tmp_path, name):
    ds = create_dataset(name, history_images=2, history_actions=1)
    for s in ds.load(AGENT_FIXTURES[name](tmp_path)).samples:
        for family in ("qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5"):
            msgs = ds.messages(s, _ctx(s, family))
            assert sum(c["type"] == "image" for m in msgs for c in m["content"]) == len(s.images) <= 3
            assert msgs[1]["content"][-1]["text"].count("\n1. ") <= 1  # at most K = 1 history action


@pytest.mark.parametrize("name", sorted(AGENT_FIXTURES))
def test_wrong_layout_is_a_dataset_error(tmp_path, name):
    with pytest.raises(DatasetError, match=name):
        create_dataset(name).load(tmp_path)

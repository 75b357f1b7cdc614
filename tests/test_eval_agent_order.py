"""Agent datasets keep the dataset's order for entries they cannot read: the failure record of a broken
entry stands at that entry's index and the entries after it follow (as the document loaders do).

Each test writes a benchmark in its published layout (``eval_fixtures_agents``), breaks one entry in the
middle, scores a prediction for every loaded step with ``eval score`` and reads back the records'
``(id, index, failed)`` in file order; the expected lists are written by hand from the fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_fixtures_agents import (
    write_aitw,
    write_androidcontrol,
    write_androidcontrol_curated,
    write_gui_odyssey,
    write_mind2web,
)
from vlprune.eval.agent.tfrecord import encode_example, parse_example, read_records, write_records
from vlprune.eval.cli import main


def folder(tmp_path: Path) -> Path:
    (tmp_path / "d").mkdir()
    return tmp_path / "d"


def scored_records(tmp_path: Path, dataset: str, data: Path, *options: str) -> list[tuple[str, int, bool]]:
    """``eval score`` with one prediction per loaded sample; ``(id, index, failed)`` of every record written."""
    from vlprune.eval import create_dataset

    opts = dict(o.split("=", 1) for o in options)
    ids = [s.id for s in create_dataset(dataset, **opts).load(data).samples]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "prediction": "x"}) + "\n" for i in ids), encoding="utf-8")
    argv = ["score", "--dataset", dataset, "--data", str(data), "--family", "qwen2.5-vl", "--predictions", str(preds),
            "--out", str(tmp_path / "o")]
    for o in options:
        argv += ["--dataset-opt", o]
    assert main(argv) == 1  # the broken entry is a failed sample
    lines = (tmp_path / "o" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r["id"], r["index"], r["failed"]) for r in map(json.loads, lines)]


def test_aitw_broken_step_stands_at_its_place(tmp_path):
    """general / episode 101 step 1 gets an unknown action type; 202 step 1 has no screenshot (skipped,
    uncounted, as aitw_test.py does: no record)."""
    data = write_aitw(folder(tmp_path))
    file = data / "aitw_data_test.json"
    eps = json.loads(file.read_text())
    eps["general"][0][1]["action_type_id"] = 99
    file.write_text(json.dumps(eps))
    assert scored_records(tmp_path, "aitw", data) == [
        ("101:0", 0, False), ("101:1", 1, True), ("101:2", 2, False),
        ("202:0", 3, False), ("202:2", 4, False), ("303:0", 5, False)]


@pytest.mark.parametrize("case", ["episode", "step after a history-only step"])
def test_mind2web_broken_entry_stands_at_its_place(tmp_path, case):
    """``episode``: an episode without ``actions`` between a1 and b2 (one record, named by file and index).
    ``step``: b2's v4 gets an unknown operation and a copy of a1 (``c3``) follows b2; before v4 come v1
    (scored), v2 (no bbox: skipped, no record) and v3 (history only: no record)."""
    data = write_mind2web(folder(tmp_path))
    file = data / "mind2web_data_test_task.json"
    eps = json.loads(file.read_text())
    if case == "episode":
        eps.insert(1, {"annotation_id": "x9", "confirmed_task": "Broken", "website": "w", "domain": "d",
                       "subdomain": "s"})
        expected = [("a1:u1", 0, False), ("a1:u2", 1, False), ("a1:u3", 2, False),
                    ("mind2web_data_test_task:1", 3, True), ("b2:v1", 4, False), ("b2:v4", 5, False)]
    else:
        eps[1]["actions"][3]["operation"]["original_op"] = "DRAG"
        eps.append(dict(eps[0], annotation_id="c3"))
        for uid in ("u1", "u2", "u3"):
            (data / "mind2web_images" / f"c3-{uid}.jpg").write_bytes((data / "mind2web_images" / f"a1-{uid}.jpg").read_bytes())
        expected = [("a1:u1", 0, False), ("a1:u2", 1, False), ("a1:u3", 2, False), ("b2:v1", 3, False),
                    ("b2:v4", 4, True), ("c3:u1", 5, False), ("c3:u2", 6, False), ("c3:u3", 7, False)]
    file.write_text(json.dumps(eps))
    assert scored_records(tmp_path, "mind2web", data) == expected


def test_gui_odyssey_broken_step_stands_at_its_place(tmp_path):
    """e1 step 2 loses its screenshot field; e1 step 3 and episode e2 follow it."""
    data = write_gui_odyssey(folder(tmp_path))
    file = data / "annotations" / "e1.json"
    anno = json.loads(file.read_text())
    del anno["steps"][2]["screenshot"]
    file.write_text(json.dumps(anno))
    assert scored_records(tmp_path, "gui-odyssey", data) == [
        ("e1:0", 0, False), ("e1:1", 1, False), ("e1:2", 2, True), ("e1:3", 3, False),
        ("e2:0", 4, False), ("e2:1", 5, False), ("e2:2", 6, False)]


def test_gui_odyssey_unreadable_annotation_stands_at_its_place(tmp_path):
    """A third episode listed between e1 and e2 whose annotation file is not JSON: one record, named by the
    split file and the list index."""
    data = write_gui_odyssey(folder(tmp_path))
    (data / "annotations" / "e9.json").write_text("{not json")
    split = data / "splits" / "random_split.json"
    split.write_text(json.dumps({"train": [], "test": ["e1.json", "e9.json", "e2.json"]}))
    assert scored_records(tmp_path, "gui-odyssey", data) == [
        ("e1:0", 0, False), ("e1:1", 1, False), ("e1:2", 2, False), ("e1:3", 3, False),
        ("random_split:1", 4, True), ("e2:0", 5, False), ("e2:1", 6, False), ("e2:2", 7, False)]


def test_androidcontrol_broken_step_stands_at_its_place(tmp_path):
    """Episode 7 (shard 0) step 1 gets an unknown action type; 7:2 and episode 8 (shard 1) follow it."""
    data = write_androidcontrol(folder(tmp_path))
    shard = data / "android_control-00000-of-00002"
    examples = [parse_example(r) for r in read_records(shard)]
    assert [ex["episode_id"] for ex in examples] == [[7], [9]]
    examples[0]["actions"][1] = json.dumps({"action_type": "teleport"}).encode()
    write_records(shard, [encode_example(ex) for ex in examples])
    assert scored_records(tmp_path, "androidcontrol", data) == [
        ("7:0", 0, False), ("7:1", 1, True), ("7:2", 2, False), ("8:0", 3, False), ("8:1", 4, False)]


def test_androidcontrol_curated_broken_record_stands_at_its_place(tmp_path):
    """Curated record 1's screenshot is missing; record 2 follows it."""
    data = write_androidcontrol_curated(folder(tmp_path))
    (data / "images" / "ac_1.png").unlink()
    assert scored_records(tmp_path, "androidcontrol", data, "variant=curated") == [
        ("android_control_high_bbox:0", 0, False), ("android_control_high_bbox:1", 1, True),
        ("android_control_high_bbox:2", 2, False)]

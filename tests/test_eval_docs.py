"""Document-VQA and GUI-grounding datasets: loading the published layouts, problems, prompts, parsing,
scoring and summaries, on fixture files written in each benchmark's real format."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from vlprune.eval import DatasetError, PromptContext, create_dataset

try:
    import eval_fixtures_docs as fx
except ImportError:  # tests/ imported as a package
    from tests import eval_fixtures_docs as fx


def load(name, folder, layout="json", **options):
    return create_dataset(name, **options).load(fx.DOC_FIXTURES[name](folder, layout))


def run(ds, samples, outputs, ctx):
    """The runner's per-sample records for ``outputs`` (sample id -> model text)."""
    records = []
    for s in samples:
        parsed = ds.parse(outputs[s.id], s, ctx)
        records.append({"id": s.id, "meta": s.meta, "scores": ds.score(parsed, s), "format_error": parsed.format_error})
    return records


DOC_CTX = PromptContext("qwen2-vl", ((160, 120),), ((168, 112),))


# ---------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("layout", ["json", "parquet"])
def test_docvqa_loads_both_layouts(tmp_path, layout):
    res = load("docvqa", tmp_path, layout)
    assert res.problems == []
    assert [s.id for s in res.samples] == ["901", "902", "903"]
    s = res.samples[0]
    assert s.question == "What is the invoice total?"
    assert s.target == {"answers": ["$1,250.00", "1,250.00"]}
    assert s.meta["question_types"] == ["form"]
    assert s.images[0].open().size == fx.DOC_SIZE


@pytest.mark.parametrize("layout", ["json", "parquet"])
def test_infovqa_loads_both_layouts(tmp_path, layout):
    res = load("infovqa", tmp_path, layout)
    assert [s.id for s in res.samples] == ["65001", "65002"]
    assert res.samples[1].target == {"answers": ["45%", "45 %"]}
    assert res.samples[1].images[0].size() == fx.DOC_SIZE


@pytest.mark.parametrize("layout", ["json", "jsonl", "parquet"])
def test_chartqa_loads_all_layouts(tmp_path, layout):
    res = load("chartqa", tmp_path, layout)
    assert res.problems == []
    assert [s.meta["split"] for s in res.samples] == ["human", "human", "augmented"]
    assert [s.target["answers"] for s in res.samples] == [["23.5"], ["2016"], ["45%"]]
    stem = {"json": "test_human", "jsonl": "test_human", "parquet": "test-00000-of-00001"}[layout]
    assert res.samples[1].id == f"{stem}:1"
    assert res.samples[0].images[0].size() == fx.DOC_SIZE


def test_chartqa_single_split_file_and_incomplete_folder(tmp_path):
    root = fx.write_chartqa(tmp_path)
    one = create_dataset("chartqa").load(root / "test" / "test_augmented.json")
    assert [s.id for s in one.samples] == ["test_augmented:0"]
    (root / "test" / "test_augmented.json").unlink()
    with pytest.raises(DatasetError, match="test_augmented.json") as info:
        create_dataset("chartqa").load(root)
    assert str(root) in str(info.value)


@pytest.mark.parametrize("layout", ["json", "parquet"])
def test_ocrbench_loads_both_layouts(tmp_path, layout):
    res = load("ocrbench", tmp_path, layout)
    assert res.problems == []
    ids = ["12", "900", "500"] if layout == "json" else [f"test-00000-of-00001:{i}" for i in range(3)]
    assert [s.id for s in res.samples] == ids
    hme = res.samples[1]
    assert hme.target == {"answers": ["x ^ { 2 } + y"], "dataset_name": "HME100k"}
    assert hme.meta["type"] == "Handwritten Mathematical Expression Recognition"
    assert res.samples[0].target["answers"] == ["harbor"]  # a single string becomes a list


def test_ocrbench_needs_its_image_folder(tmp_path):
    root = fx.write_ocrbench(tmp_path)
    shutil.rmtree(root / "OCRBench_Images")
    with pytest.raises(DatasetError, match="OCRBench_Images"):
        create_dataset("ocrbench").load(root)


@pytest.mark.parametrize("name, layout", [("screenspot", "json"), ("screenspot", "parquet"), ("screenspot-v2", "json")])
def test_screenspot_boxes_are_normalised(tmp_path, name, layout):
    res = load(name, tmp_path, layout)
    assert res.problems == []
    by_split = {(s.meta["split"], s.meta["ui_type"]): s.target["bbox"] for s in res.samples}
    # mobile icon: xywh (40, 80, 20, 40) on 100x200; desktop icon (100, 50, 50, 25) on 200x100
    assert by_split[("mobile", "icon")] == pytest.approx([0.4, 0.4, 0.6, 0.6])
    assert by_split[("desktop", "icon")] == pytest.approx([0.5, 0.5, 0.75, 0.75])
    assert by_split[("web", "text")] == pytest.approx([0.1, 0.1, 0.4, 0.3])  # (20, 10, 60, 20) on 200x100
    if layout == "json":
        suffix = "_v2" if name == "screenspot-v2" else ""
        assert res.samples[1].id == f"screenspot_mobile{suffix}:1"


def test_screenspot_pro_uses_record_ids_and_img_size(tmp_path):
    res = load("screenspot-pro", tmp_path)
    assert [s.id for s in res.samples] == ["excel_macos_3", "excel_macos_4", "vscode_windows_1"]
    assert res.samples[0].target["bbox"] == pytest.approx([240 / 320, 13 / 180, 246 / 320, 17 / 180])
    assert res.samples[2].meta == {"group": "Dev", "ui_type": "icon", "application": "vscode", "platform": "windows"}
    one = create_dataset("screenspot-pro").load(tmp_path / "annotations" / "vscode_windows.json")
    assert [s.id for s in one.samples] == ["vscode_windows_1"]


@pytest.mark.parametrize("name", sorted(fx.DOC_FIXTURES))
def test_wrong_layout_names_path_and_expected_layout(tmp_path, name):
    (tmp_path / "notes.txt").write_text("x")
    ds = create_dataset(name)
    for bad in (tmp_path, tmp_path / "notes.txt"):
        with pytest.raises(DatasetError) as info:
            ds.load(bad)
        assert str(bad) in str(info.value) and "expected" in str(info.value)
    with pytest.raises(DatasetError, match="does not exist"):
        ds.load(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------- problems
def test_bad_records_become_counted_problems(tmp_path):
    root = fx.write_docvqa(tmp_path)
    data = json.loads((root / "val_v1.0.json").read_text())
    data["data"][1]["image"] = "documents/missing.png"
    del data["data"][2]["answers"]
    data["data"].append({"questionId": 904, "question": 7, "image": "documents/abcd0001_2.png", "answers": ["a"]})
    data["data"].append("not a record")
    (root / "val_v1.0.json").write_text(json.dumps(data))
    res = create_dataset("docvqa").load(root)
    assert [s.id for s in res.samples] == ["901"]
    got = [(p.index, p.id, p.counted) for p in res.problems]
    assert got == [(1, "902", True), (2, "903", True), (3, "904", True), (4, None, True)]
    reasons = [p.reason for p in res.problems]
    assert "missing.png" in reasons[0] and "'answers' is missing" in reasons[1]
    assert "'question' must be str" in reasons[2] and "not an object" in reasons[3]
    assert all(p.file == str(root / "val_v1.0.json") for p in res.problems)
    assert "[record 1]" in str(res.problems[0])


def test_screenspot_bad_records(tmp_path):
    root = fx.write_screenspot(tmp_path)
    recs = json.loads((root / "screenspot_web.json").read_text())
    recs.append({**recs[0], "data_type": "widget"})
    recs.append({**recs[0], "bbox": [1, 2, 3]})
    (root / "screenspot_web.json").write_text(json.dumps(recs))
    res = create_dataset("screenspot").load(root)
    assert len(res.samples) == 4
    assert [(p.index, p.id) for p in res.problems] == [(1, "screenspot_web:1"), (2, "screenspot_web:2")]
    assert "'text' or 'icon'" in res.problems[0].reason and "4 numbers" in res.problems[1].reason


def test_jsonl_bad_line_is_a_problem(tmp_path):
    root = fx.write_chartqa(tmp_path, "jsonl")
    with open(root / "test_augmented.jsonl", "a", encoding="utf-8") as f:
        f.write('{"image": "x.png", "question": \n')
        f.write('{"image": "png/two_col_1.png", "question": "q?"}\n')
    res = create_dataset("chartqa").load(root)
    assert len(res.samples) == 3
    assert [(p.index, p.id) for p in res.problems] == [(1, "test_augmented:1"), (2, "test_augmented:2")]
    assert "not valid JSON" in res.problems[0].reason
    assert "'answer', 'label'" in res.problems[1].reason


def test_parquet_bad_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = fx.write_screenspot(tmp_path, "parquet")
    shard = root / "data" / "test-00000-of-00001.parquet"
    rows = pq.read_table(shard).to_pylist()
    rows[0]["bbox"] = [40.0, 80.0, 60.0, 120.0]  # pixels, not the mirror's normalised boxes
    rows[1]["image"] = {"bytes": b"", "path": "x.png"}
    pq.write_table(pa.Table.from_pylist(rows), shard)
    res = create_dataset("screenspot").load(root)
    assert [p.index for p in res.problems] == [0, 1]
    assert "normalised" in res.problems[0].reason and "image bytes" in res.problems[1].reason


def test_duplicate_ids_name_both_records(tmp_path):
    root = fx.write_screenspot_pro(tmp_path)
    path = root / "annotations" / "vscode_windows.json"
    recs = json.loads(path.read_text())
    recs[0]["id"] = "excel_macos_4"
    path.write_text(json.dumps(recs))
    with pytest.raises(DatasetError, match="duplicate sample id 'excel_macos_4'") as info:
        create_dataset("screenspot-pro").load(root)
    assert "excel_macos.json [record 1]" in str(info.value) and "vscode_windows.json [record 0]" in str(info.value)


def test_docvqa_test_split_is_refused(tmp_path):
    recs = [{k: v for k, v in r.items() if k != "answers"} for r in fx.DOCVQA_RECORDS]
    (tmp_path / "test_v1.0.json").write_text(json.dumps({"data": recs}))
    with pytest.raises(DatasetError, match="withheld"):
        create_dataset("docvqa").load(tmp_path / "test_v1.0.json")


# ---------------------------------------------------------------------------------------------- prompts
def test_vqa_prompts(tmp_path):
    doc = load("docvqa", tmp_path / "d").samples[0]
    msgs = create_dataset("docvqa").messages(doc, DOC_CTX)
    assert msgs == [{"role": "user", "content": [
        {"type": "image"},
        {"type": "text", "text": "What is the invoice total?\nAnswer the question using a single word or phrase."}]}]
    alt = create_dataset("docvqa", prompt="vlmevalkit").messages(doc, DOC_CTX)
    assert alt[0]["content"][1]["text"].endswith("\nPlease try to answer the question with short words or phrases if possible.")
    ocr = load("ocrbench", tmp_path / "o").samples[0]
    assert create_dataset("ocrbench").messages(ocr, DOC_CTX)[0]["content"][1]["text"] == "what is written in the image?"
    with pytest.raises(ValueError, match="unknown prompt"):
        create_dataset("chartqa", prompt="qwen")


def test_grounding_prompts_per_family(tmp_path):
    samples = {s.meta["split"]: s for s in load("screenspot", tmp_path).samples if s.meta["ui_type"] == "icon"}
    ds = create_dataset("screenspot")
    sizes = ((100, 200),)
    q2 = ds.messages(samples["mobile"], PromptContext("qwen2-vl", sizes, ((112, 224),)))
    assert q2[0]["content"][1]["text"] == ('In this UI screenshot, what is the position of the element '
                                           'corresponding to the command "open settings" (with bbox)?')
    q25 = ds.messages(samples["mobile"], PromptContext("qwen2.5-vl", sizes, ((112, 224),)))
    system = q25[0]["content"][0]["text"]
    assert q25[0]["role"] == "system" and '"name": "mobile_use"' in system
    assert "The screen's resolution is 112x224." in system and "<tool_call>" in system
    assert q25[1]["content"] == [{"type": "image"}, {"type": "text", "text": "open settings"}]
    q3 = ds.messages(samples["desktop"], PromptContext("qwen3-vl", ((200, 100),), ((224, 96),)))
    assert '"name": "computer_use"' in q3[0]["content"][0]["text"]
    assert "The screen's resolution is 1000x1000." in q3[0]["content"][0]["text"]


# ---------------------------------------------------------------------------------------------- scoring
def test_docvqa_summary(tmp_path):
    ds = create_dataset("docvqa")
    samples = load("docvqa", tmp_path).samples
    records = run(ds, samples, {"901": "1,250.00", "902": "march 8", "903": ""}, DOC_CTX)
    assert [r["scores"]["anls"] for r in records] == pytest.approx([1.0, 0.875, 0.0])
    summary = ds.summarize(records)
    assert summary["anls"] == pytest.approx(1.875 / 3)
    assert (summary["n"], summary["format_errors"], summary["load_problems"]) == (3, 0, 0)
    assert summary["variants"]["anls"] == "lmms-eval"


def test_chartqa_summary(tmp_path):
    ds = create_dataset("chartqa")
    samples = load("chartqa", tmp_path).samples
    outputs = {"test_human:0": "23.9", "test_human:1": "Apple", "test_augmented:0": "0.45"}
    summary = ds.summarize(run(ds, samples, outputs, DOC_CTX))
    assert summary["relaxed_overall"] == pytest.approx(2 / 3)
    assert summary["relaxed_human_split"] == pytest.approx(0.5)
    assert summary["relaxed_augmented_split"] == pytest.approx(1.0)
    assert summary["variants"]["relaxed_overall"] == "lmms-eval"


def test_ocrbench_summary(tmp_path):
    ds = create_dataset("ocrbench")
    samples = load("ocrbench", tmp_path).samples
    summary = ds.summarize(run(ds, samples, {"12": "HARBOR", "900": "x^{2}+y", "500": "unknown"}, DOC_CTX))
    assert summary["score"] == 2 and isinstance(summary["score"], int)
    assert summary["text_recognition"] == 1.0
    assert summary["handwritten_mathematical_expression_recognition"] == 1.0
    assert summary["doc_oriented_vqa"] == 0.0
    assert summary["scene_text_centric_vqa"] is None and summary["key_information_extraction"] is None


def test_screenspot_scoring_and_summary(tmp_path):
    ds = create_dataset("screenspot")
    samples = load("screenspot", tmp_path).samples
    ids = {(s.meta["split"], s.meta["ui_type"]): s.id for s in samples}
    ctx = PromptContext("qwen3-vl", ((100, 200),), ((96, 192),))
    outputs = {
        ids["mobile", "icon"]: '<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [500, 500]}}</tool_call>',
        ids["mobile", "text"]: "I cannot see it.",                     # format error, counted wrong
        ids["desktop", "icon"]: '{"bbox_2d": [500, 500, 750, 750]}',   # centre (0.625, 0.625) inside
        ids["web", "text"]: "[600, 200]",                              # x 0.6 > right edge 0.4
    }
    records = run(ds, samples, outputs, ctx)
    assert [r["scores"]["correct"] for r in records] == [1.0, 0.0, 1.0, 0.0]
    assert records[1]["format_error"] and "no point" in records[1]["format_error"]
    # the runner's stand-ins: a counted load problem and a sample that failed to run
    records.append({"id": "screenspot_web:9", "meta": {"load_problem": "screenspot_web.json [record 9]: ..."},
                    "scores": {"correct": 0.0}, "format_error": "sample failed: ...", "failed": True})
    records.append({"id": ids["web", "text"] + "b", "meta": {"split": "web", "ui_type": "text"},
                    "scores": {"correct": 0.0}, "format_error": "sample failed: OOM", "failed": True})
    s = ds.summarize(records)
    assert s["overall_accuracy"] == pytest.approx(2 / 6)  # problem and failure stay in the denominator
    assert s["text_accuracy"] == 0.0 and s["icon_accuracy"] == 1.0
    assert s["mobile_accuracy"] == 0.5 and s["mobile_icon_accuracy"] == 1.0 and s["mobile_text_accuracy"] == 0.0
    assert s["desktop_accuracy"] == 1.0 and s["desktop_text_accuracy"] is None and s["web_accuracy"] == 0.0
    assert s["overall_accuracy_cell_mean"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert (s["n"], s["format_errors"], s["failed"], s["load_problems"]) == (6, 1, 1, 1)
    assert s["format_error_rate"] == pytest.approx(1 / 6)
    assert s["variants"]["overall_accuracy"] == "micro" and s["variants"]["overall_accuracy_cell_mean"] == "cell_mean"


def test_screenspot_qwen25_answers_in_canvas_pixels(tmp_path):
    ds = create_dataset("screenspot")
    mobile_icon = next(s for s in load("screenspot", tmp_path).samples if s.meta["split"] == "mobile" and s.meta["ui_type"] == "icon")
    ctx = PromptContext("qwen2.5-vl", ((100, 200),), ((112, 224),))
    call = '<tool_call>\n{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [%d, %d]}}\n</tool_call>'
    assert ds.parse(call % (56, 112), mobile_icon, ctx).answer == pytest.approx([0.5, 0.5])
    assert ds.score(ds.parse(call % (56, 112), mobile_icon, ctx), mobile_icon) == {"correct": 1.0}
    # (45, 112) is 0.4018 of the canvas width: inside [0.4, 0.6]; (44, 112) = 0.3929 is outside
    assert ds.score(ds.parse(call % (45, 112), mobile_icon, ctx), mobile_icon) == {"correct": 1.0}
    assert ds.score(ds.parse(call % (44, 112), mobile_icon, ctx), mobile_icon) == {"correct": 0.0}
    out_of_canvas = ds.parse(call % (120, 112), mobile_icon, ctx)
    assert out_of_canvas.format_error and "outside" in out_of_canvas.format_error


def test_screenspot_pro_summary_groups_and_apps(tmp_path):
    ds = create_dataset("screenspot-pro")
    samples = load("screenspot-pro", tmp_path).samples
    ctx = PromptContext("qwen2-vl", ((320, 180),), ((308, 168),))
    # excel_macos_3 box x 0.75-0.76875, y 0.0722-0.0944; excel_macos_4 box x 0-0.5, y 0-0.111
    outputs = {"excel_macos_3": "(760,80)", "excel_macos_4": "(600,50)", "vscode_windows_1": "(50,100),(80,150)"}
    s = ds.summarize(run(ds, samples, outputs, ctx))
    assert s["overall_accuracy"] == pytest.approx(2 / 3)
    assert s["office_accuracy"] == 0.5 and s["office_icon_accuracy"] == 1.0 and s["office_text_accuracy"] == 0.0
    assert s["dev_accuracy"] == 1.0 and s["cad_accuracy"] is None
    assert s["app_excel_accuracy"] == 0.5 and s["app_vscode_accuracy"] == 1.0
    assert "overall_accuracy_cell_mean" not in s


# ---------------------------------------------------------------------------------------------- Hub
def test_hub_loading_uses_snapshot_and_unpacks_v2_images(tmp_path, monkeypatch):
    import huggingface_hub

    root = fx.write_screenspot_v2(tmp_path / "snap")
    images = root / "screenspotv2_image"
    with zipfile.ZipFile(root / "screenspotv2_image.zip", "w") as z:
        for f in images.iterdir():
            z.write(f, f"screenspotv2_image/{f.name}")
    shutil.rmtree(images)
    calls = []

    def fake_snapshot(repo_id, repo_type, allow_patterns):
        calls.append((repo_id, repo_type))
        return str(root)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    res = create_dataset("screenspot-v2").load("hub")
    assert calls == [("OS-Copilot/ScreenSpot-v2", "dataset")]
    assert len(res.samples) == 4 and res.problems == []

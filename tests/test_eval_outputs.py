"""What a careless user does to ``eval run`` / ``eval score``: re-scoring a run folder in place, an empty
``--out``, a missing / empty / folder predictions file, an output that is a file, a dataset file that is
not UTF-8, an unknown dataset option, a ScreenSpot folder missing a split; the order of records the loader
could not read; VQA scoring without an image; measurements kept when a run is re-scored.

No model is built here: where ``eval run`` must refuse before loading one, loading fails the test.
Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import eval_toy
from eval_fixtures_docs import DOCVQA_RECORDS, write_docvqa
from vlprune.eval.cli import main
from vlprune.eval.records import new_record


def score(*argv) -> int:
    return main(["score", *map(str, argv)])


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_model(monkeypatch):
    """eval run must refuse before any model is loaded."""
    import vlprune.eval.runner

    monkeypatch.setattr(vlprune.eval.runner, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))


def run_record(rid: str, index: int, prediction: str, *, raw: int, kept: int, canvas=None) -> dict:
    """A record as ``eval run`` writes it (every key), with hand-set measurements."""
    return new_record(id=rid, index=index, method="pixelprune", prediction=prediction, answer=prediction,
                      scores={"exact": 1.0}, meta={}, sizes=None, canvas=canvas, tokens={"raw": raw, "pre_vit": kept},
                      retain=kept / raw, prompt_tokens=raw + 20, new_tokens=3,
                      time_ms={"prefill": 10.0, "ttft": 12.0}, batch_size=1, cold=False,
                      flops={"vit": 0.5, "llm": 1.5, "total": 2.0})


@pytest.fixture
def run_folder(tmp_path) -> tuple[Path, Path]:
    """A toy-vqa dataset and an ``eval run`` method folder (records, summary, run.json) for it."""
    data = eval_toy.write_toy_vqa(tmp_path / "data", 2)
    folder = tmp_path / "R" / "pixelprune"
    write_jsonl(folder / "predictions.jsonl", [run_record("q0", 0, "ans0", raw=10, kept=4),
                                               run_record("q1", 1, "nope", raw=30, kept=6)])
    (folder / "summary.json").write_text('{"n": 2, "efficiency": {"samples": 2}}\n')
    (folder / "run.json").write_text('{"dataset": "toy-vqa"}\n')
    (tmp_path / "R" / "comparison.json").write_text("{}\n")
    return data, folder


# ---------------------------------------------------------------------------------------------- never overwrite
def test_rescoring_a_run_folder_in_place_is_refused_and_changes_nothing(run_folder, capsys):
    data, folder = run_folder
    before = snapshot(folder.parent)
    preds = folder / "predictions.jsonl"
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", preds, "--out", folder) == 2
    assert "is the --predictions file" in capsys.readouterr().err
    other = write_jsonl(folder.parent / "elsewhere" / "p.jsonl", [{"id": "q0", "prediction": "a"}])
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", other, "--out", folder) == 2
    assert "'eval run' method folder" in capsys.readouterr().err
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", preds, "--out", folder.parent) == 2
    assert "'eval run' output folder" in capsys.readouterr().err
    after = snapshot(folder.parent)
    del after["elsewhere/p.jsonl"]
    assert after == before  # records, summary and run.json as they were


def test_rescoring_a_run_keeps_its_measurements(run_folder, tmp_path):
    data, folder = run_folder
    out = tmp_path / "scored"
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", folder / "predictions.jsonl",
                 "--out", out) == 0
    recs = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["method"] for r in recs] == ["pixelprune", "pixelprune"]
    assert [r["tokens"] for r in recs] == [{"raw": 10, "pre_vit": 4}, {"raw": 30, "pre_vit": 6}]
    assert [r["scores"]["exact"] for r in recs] == [1.0, 0.0]  # re-scored: "nope" is not "ans1"
    s = json.loads((out / "summary.json").read_text())
    # retain = Σ kept / Σ raw = (4 + 6) / (10 + 30); mean of the shares = (0.4 + 0.2) / 2
    assert s["efficiency"]["samples"] == 2 and s["efficiency"]["retain"] == pytest.approx(0.25)
    assert s["efficiency"]["retain_mean"] == pytest.approx(0.3)
    assert s["efficiency"]["tflops"] == {"vit": 0.5, "llm": 1.5, "total": 2.0}
    assert s["run"]["command"] == "eval score" and s["metrics"]["accuracy"] == 0.5
    # the same command again replaces its own earlier output
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", folder / "predictions.jsonl",
                 "--out", out) == 0


def test_score_uses_the_canvas_a_run_record_carries(tmp_path):
    # 1000x500 px image. A run whose method showed the model a 500x250 canvas answered (250, 125) in
    # Qwen2.5-VL pixels: (250/500, 125/250) = (0.5, 0.5), inside the box. Recomputed with the default
    # limits the canvas is 1008x504 and the same pixels are (0.248, 0.248), outside.
    data = eval_toy.write_toy_point(tmp_path / "data", [("p0", (1000, 500), [0.45, 0.45, 0.55, 0.55])])
    text = '{"point_2d": [250, 125]}'
    rec = run_record("p0", 0, text, raw=12, kept=12, canvas=[[500, 250]])
    run_preds = write_jsonl(tmp_path / "run.jsonl", [rec])
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"id": "p0", "prediction": text}])
    assert score("--dataset", "toy-point", "--data", data, "--family", "qwen2.5-vl", "--predictions", run_preds,
                 "--out", tmp_path / "a") == 0
    assert score("--dataset", "toy-point", "--data", data, "--family", "qwen2.5-vl", "--predictions", plain,
                 "--out", tmp_path / "b") == 0
    a, b = (json.loads((tmp_path / o / "predictions.jsonl").read_text()) for o in "ab")
    assert a["canvas"] == [[500, 250]] and a["answer"] == [0.5, 0.5] and a["scores"]["correct"] == 1.0
    assert b["canvas"] == [[1008, 504]] and b["scores"]["correct"] == 0.0


def test_score_refuses_a_folder_holding_other_results(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 1)
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "q0", "prediction": "ans0"}])
    mine = write_jsonl(tmp_path / "o" / "predictions.jsonl", [{"id": "x", "note": "someone's file"}])
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", preds, "--out", tmp_path / "o") == 2
    assert f"{mine} exists and is not an earlier 'eval score' output" in capsys.readouterr().err
    assert json.loads(mine.read_text()) == {"id": "x", "note": "someone's file"}


@pytest.mark.parametrize("command", ["run", "score"])
def test_empty_out_is_refused_and_the_current_folder_untouched(tmp_path, monkeypatch, capsys, command, no_model):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 1)
    preds = write_jsonl(tmp_path / "predictions.jsonl", [{"id": "q0", "prediction": "ans0"}])
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    extra = (["--predictions", "predictions.jsonl"] if command == "score"
             else ["--model", "random:qwen2-vl-tiny", "--no-progress"])
    assert main([command, "--dataset", "toy-vqa", "--data", str(data), "--out", "", *extra]) == 2
    assert "argument --out: empty path" in capsys.readouterr().err
    assert snapshot(tmp_path) == before and preds.read_text() == '{"id": "q0", "prediction": "ans0"}\n'


def test_unusable_predictions_file_exits_2_and_writes_nothing(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 2)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    (tmp_path / "dir").mkdir()
    cases = [(tmp_path / "missing.jsonl", "no such file"), (empty, "holds no predictions"),
             (tmp_path / "dir", "is a folder; give the JSON Lines file")]
    for path, message in cases:
        out = tmp_path / f"out-{path.name}"
        assert score("--dataset", "toy-vqa", "--data", data, "--predictions", path, "--out", out) == 2, path
        assert f"{path}" in (err := capsys.readouterr().err) and message in err, err
        assert not out.exists()


def test_out_that_is_a_file_exits_2_before_any_model(tmp_path, capsys, no_model):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 1)
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "q0", "prediction": "ans0"}])
    file = tmp_path / "file"
    file.write_text("x")
    assert score("--dataset", "toy-vqa", "--data", data, "--predictions", preds, "--out", file) == 2
    assert f"--out {file}: is a file, not a folder" in capsys.readouterr().err
    base = ["run", "--dataset", "toy-vqa", "--data", str(data), "--model", "random:qwen2-vl-tiny", "--no-progress"]
    assert main([*base, "--out", str(file)]) == 2
    assert f"--out {file}: is a file, not a folder" in capsys.readouterr().err
    assert main([*base, "--out", str(file / "sub")]) == 2
    assert f"cannot make the folder: {file} is a file" in capsys.readouterr().err
    (tmp_path / "o" / "full" / "predictions.jsonl").mkdir(parents=True)  # a folder where the records go
    assert main([*base, "--out", str(tmp_path / "o")]) == 2
    assert "predictions.jsonl is a folder" in capsys.readouterr().err
    assert file.read_text() == "x"


def test_run_refuses_records_it_did_not_write(tmp_path, capsys, no_model):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 1)
    foreign = write_jsonl(tmp_path / "o" / "full" / "predictions.jsonl", [{"id": "q0", "prediction": "ans0"}])
    rc = main(["run", "--dataset", "toy-vqa", "--data", str(data), "--model", "random:qwen2-vl-tiny", "--out",
               str(tmp_path / "o"), "--no-progress"])
    assert rc == 2 and "holds records without a run.json" in capsys.readouterr().err
    assert foreign.read_text() == '{"id": "q0", "prediction": "ans0"}\n' and not (foreign.parent / "run.json").exists()


# ---------------------------------------------------------------------------------------------- bad datasets
def test_dataset_json_that_is_not_utf8_exits_2(tmp_path, capsys, no_model):
    write_docvqa(tmp_path / "d")
    raw = (tmp_path / "d" / "val_v1.0.json").read_bytes().replace(b"invoice", b"factur\xe9")  # latin-1 byte
    (tmp_path / "d" / "val_v1.0.json").write_bytes(raw)
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "901", "prediction": "x"}])
    assert score("--dataset", "docvqa", "--data", tmp_path / "d", "--predictions", preds, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'd' / 'val_v1.0.json'}: not UTF-8 text" in err and "Traceback" not in err
    assert main(["run", "--dataset", "docvqa", "--data", str(tmp_path / "d"), "--model", "random:qwen2-vl-tiny",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


def test_unknown_dataset_option_lists_the_valid_ones(tmp_path, capsys):
    write_docvqa(tmp_path / "d")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "901", "prediction": "x"}])
    assert score("--dataset", "docvqa", "--data", tmp_path / "d", "--dataset-opt", "nosuch=1", "--predictions",
                 preds, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "dataset 'docvqa' has no option 'nosuch'; its options are: prompt, anls_variant" in err
    assert "__init__" not in err


def test_screenspot_folder_missing_a_split_file_names_it(tmp_path):
    from vlprune.eval import DatasetError, create_dataset

    (tmp_path / "screenspot_imgs").mkdir()
    for split in ("mobile", "web"):
        (tmp_path / f"screenspot_{split}.json").write_text("[]")
    with pytest.raises(DatasetError, match="holds screenspot_mobile.json, screenspot_web.json but not "
                                           "screenspot_desktop.json"):
        create_dataset("screenspot").load(tmp_path)


# ---------------------------------------------------------------------------------------------- order, scoring
def test_unreadable_record_stands_at_its_place_in_dataset_order(tmp_path):
    """DocVQA record 1 (questionId 902) lacks its question: its record is the second, index 1."""
    recs = [dict(r) for r in DOCVQA_RECORDS]
    del recs[1]["question"]
    write_docvqa(tmp_path / "d")
    (tmp_path / "d" / "val_v1.0.json").write_text(json.dumps({"data": recs}), encoding="utf-8")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "901", "prediction": "1,250.00"},
                                                {"id": "903", "prediction": "Smith"}])
    assert score("--dataset", "docvqa", "--data", tmp_path / "d", "--predictions", preds, "--out", tmp_path / "o") == 1
    out = [json.loads(x) for x in (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["index"], r["failed"]) for r in out] == [("901", 0, False), ("902", 1, True), ("903", 2, False)]
    assert "field 'question' is missing" in out[1]["error"]
    assert [r["scores"]["anls"] for r in out] == [1.0, 0.0, 1.0]


def test_universe_puts_each_problem_at_its_position():
    from vlprune.eval.base import LoadProblem, LoadResult, Sample
    from vlprune.eval.scoring import Universe

    samples = [Sample(f"s{i}", [], "", None) for i in range(3)]
    problems = [LoadProblem("f", 0, "bad", id="p0", position=0), LoadProblem("f", 3, "bad", id="p2", position=2),
                LoadProblem("f", 9, "skipped", counted=False, id="x", position=1),
                LoadProblem("g", None, "bad", id="tail")]  # no position: after the loaded samples
    u = Universe.from_load(LoadResult(samples, problems))
    assert [s.id for s in u.samples] == ["p0", "s0", "s1", "p2", "s2", "tail"]
    assert u.order == {"p0": 0, "s0": 1, "s1": 2, "p2": 3, "s2": 4, "tail": 5}
    assert [p.id for p in u.skipped] == ["x"]


def test_vqa_answer_is_scored_without_its_image(tmp_path):
    """ANLS reads no image: an exact answer scores 1 although its page cannot be decoded."""
    write_docvqa(tmp_path / "d")
    (tmp_path / "d" / "documents" / "abcd0001_2.png").write_bytes(b"not a png")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": str(r["questionId"]), "prediction": r["answers"][0]}
                                                for r in DOCVQA_RECORDS])
    assert score("--dataset", "docvqa", "--data", tmp_path / "d", "--predictions", preds, "--out", tmp_path / "o") == 0
    out = [json.loads(x) for x in (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()]
    assert [r["failed"] for r in out] == [False, False, False] and [r["scores"]["anls"] for r in out] == [1.0] * 3
    assert out[0]["sizes"] is None and out[0]["canvas"] is None and out[1]["sizes"] == [[160, 120]]


def test_grounding_answer_without_its_image_is_a_failed_sample(tmp_path):
    data = eval_toy.write_toy_point(tmp_path / "data", [("p0", (100, 100), [0.4, 0.4, 0.6, 0.6])])
    next((tmp_path / "data").rglob("*.png")).write_bytes(b"broken")
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "p0", "prediction": "(500,500)"}])
    assert score("--dataset", "toy-point", "--data", data, "--family", "qwen2-vl", "--predictions", preds,
                 "--out", tmp_path / "o") == 1
    (rec,) = [json.loads(x) for x in (tmp_path / "o" / "predictions.jsonl").read_text().splitlines()]
    assert rec["failed"] and rec["prediction"] == "(500,500)" and rec["scores"]["correct"] == 0.0


# ---------------------------------------------------------------------------------------------- resume
def test_resume_names_retry_failed_for_kept_and_stale_failed_records(tmp_path, capsys):
    from vlprune.eval.config import EvalConfig
    from vlprune.eval.modelspec import load_model
    from vlprune.eval.records import RecordError
    from vlprune.eval.runner import Runner

    model = load_model("random:qwen2-vl-tiny", max_pixels=12544)
    data = eval_toy.write_toy_vqa(tmp_path / "data", 2, missing_image=1)
    cfg = dict(dataset="toy-vqa", data=str(data), model=model.name, out=str(tmp_path / "o"), max_pixels=12544,
               progress=False)
    assert Runner(EvalConfig(**cfg), loaded=model).run().failed == 1
    capsys.readouterr()
    Runner(EvalConfig(**cfg), loaded=model).run()  # resumed: the failed sample is kept, and the note says how
    assert "1 recorded as failed, kept as they are; --retry-failed runs them again" in capsys.readouterr().err
    pred = tmp_path / "o" / "full" / "predictions.jsonl"
    recs = [json.loads(x) for x in pred.read_text().splitlines()]
    recs[1]["id"] = "q1-old"  # a failed record whose id the dataset no longer has
    write_jsonl(pred, recs)
    with pytest.raises(RecordError, match="id 'q1-old' is not a sample of this dataset; it is a failed sample.*"
                                          "--retry-failed drops failed records"):
        Runner(EvalConfig(**cfg), loaded=model).run()
    eval_toy._image(data / "images" / "q1.png", 64, 48, 1)
    result = Runner(EvalConfig(**cfg, retry_failed=True), loaded=model).run()
    assert result.failed == 0 and [r["id"] for r in map(json.loads, pred.read_text().splitlines())] == ["q0", "q1"]

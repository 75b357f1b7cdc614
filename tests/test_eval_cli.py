"""``eval score`` on crafted predictions (hand-computed metrics and canvases), the ``eval`` command's
plumbing, and the suite machinery (validation, paper layouts, '—' for unmeasured cells)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

import eval_toy
from vlprune.eval.cli import add_eval_parser, main


def write_predictions(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def score(data, preds, out, *extra) -> int:
    return main(["score", "--data", str(data), "--predictions", str(preds), "--out", str(out), *extra])


# ---------------------------------------------------------------------------------------------- score
def test_score_reproduces_hand_computed_accuracy(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 4)
    preds = write_predictions(tmp_path / "p.jsonl", [
        {"id": "q0", "prediction": "ans0"},     # right
        {"id": "q1", "prediction": "nope"},     # wrong
        {"id": "q2", "prediction": "  ANS2 "},  # right (strip + case-insensitive)
        {"id": "q3", "prediction": ""},         # format error -> 0
    ])
    assert score(data, preds, tmp_path / "out", "--dataset", "toy-vqa") == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["metrics"]["accuracy"] == 0.5 and s["n"] == 4 and s["n_format_error"] == 1 and s["n_failed"] == 0
    recs = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [r["scores"]["exact"] for r in recs] == [1.0, 0.0, 1.0, 0.0]
    assert [r["answer"] for r in recs] == ["ans0", "nope", "ANS2", None] and recs[3]["format_error"] == "empty answer"
    assert '"accuracy": 0.5' in capsys.readouterr().out


def test_score_missing_unknown_and_duplicate_ids(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 3)
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "q0", "prediction": "ans0"}, {"id": "q2", "prediction": "x"}])
    assert score(data, preds, tmp_path / "out", "--dataset", "toy-vqa") == 1
    err = capsys.readouterr().err
    assert "1 sample(s) have no prediction" in err and "'q1'" in err
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["n"] == 3 and s["n_failed"] == 1 and s["metrics"]["accuracy"] == pytest.approx(1 / 3)

    unknown = write_predictions(tmp_path / "u.jsonl", [{"id": "q0", "prediction": "a"}, {"id": "q9", "prediction": "b"}])
    assert score(data, unknown, tmp_path / "o2", "--dataset", "toy-vqa") == 2
    assert f"{unknown}, line 2: id 'q9' is not a sample of dataset 'toy-vqa'" in capsys.readouterr().err

    dup = write_predictions(tmp_path / "d.jsonl", [{"id": "q0", "prediction": "a"}, {"id": "q1", "prediction": "b"},
                                                   {"id": "q0", "prediction": "c"}])
    assert score(data, dup, tmp_path / "o3", "--dataset", "toy-vqa") == 2
    assert f"{dup}, line 3: duplicate id 'q0' (first at {dup}, line 1)" in capsys.readouterr().err

    bad = tmp_path / "b.jsonl"
    bad.write_text('{"id": "q0", "prediction": "a"}\n{"id": "q1"}\n')
    assert score(data, bad, tmp_path / "o4", "--dataset", "toy-vqa") == 2
    assert f"{bad}, line 2: missing key(s) prediction" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_score_recomputes_the_canvas_with_the_family_resize(tmp_path, capsys):
    # 1000x500 px; Qwen2.5-VL answers in pixels of the resized canvas. With max_pixels 200000:
    # smart_resize -> beta = sqrt(500*1000/200000); H_r = floor(500/beta/28)*28 = 308, W_r = 616.
    # [308, 154] is then the centre (0.5, 0.5), inside the box; against the default limits (canvas 1008x504)
    # the same pixels are (0.306, 0.306), outside it.
    data = eval_toy.write_toy_point(tmp_path / "data", [("p0", (1000, 500), [0.45, 0.45, 0.55, 0.55])])
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "p0", "prediction": '{"point_2d": [308, 154]}'}])
    assert score(data, preds, tmp_path / "a", "--dataset", "toy-point", "--family", "qwen2.5-vl",
                 "--max-pixels", "200000") == 0
    rec = json.loads((tmp_path / "a" / "predictions.jsonl").read_text())
    assert rec["canvas"] == [[616, 308]] and rec["answer"] == [0.5, 0.5] and rec["scores"]["correct"] == 1.0
    assert score(data, preds, tmp_path / "b", "--dataset", "toy-point", "--family", "qwen2.5-vl") == 0
    rec = json.loads((tmp_path / "b" / "predictions.jsonl").read_text())
    assert rec["canvas"] == [[1008, 504]] and rec["scores"]["correct"] == 0.0
    knorm = write_predictions(tmp_path / "k.jsonl", [{"id": "p0", "prediction": "(500,500)"}])
    assert score(data, knorm, tmp_path / "c", "--dataset", "toy-point", "--family", "qwen2-vl") == 0
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["metrics"]["accuracy"] == 1.0
    capsys.readouterr()
    assert score(data, knorm, tmp_path / "d", "--dataset", "toy-point") == 2
    assert "--family is required for grounding dataset 'toy-point'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- plumbing
def test_eval_registers_on_a_main_parser_and_usage_errors_exit_2(capsys):
    parser = argparse.ArgumentParser(prog="vlprune")
    add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "run", "--dataset", "toy-vqa", "--data", "d", "--model", "m", "--out", "o",
                              "--method", "pixelprune", "--opt", "fastv.retain=0.3", "--batch-size", "4"])
    assert args.method == ["pixelprune"] and args.opt == ["fastv.retain=0.3"] and args.batch_size == 4
    assert callable(args.func)
    assert main([]) == 2  # no sub-command: help
    assert main(["run", "--dataset", "toy-vqa"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["run", "--dataset", "x", "--data", "d", "--model", "m", "--out", "o", "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err


def test_option_values_are_python_literals_else_text():
    from vlprune.eval.config import EvalUsageError, literal, method_specs, parse_assignment

    assert parse_assignment("fastv.retain=0.3", "--opt", dotted=True) == ("fastv", "retain", 0.3)
    assert parse_assignment("guipruner.preset=I", "--opt", dotted=True) == ("guipruner", "preset", "I")
    assert literal("(1, 2)") == (1, 2) and literal("True") is True and literal("max") == "max"
    specs = method_specs(["pixelprune", "full", "random+fastv"], {"fastv": {"retain": 0.25}})
    assert [s.spec for s in specs] == ["full", "pixelprune", "random+fastv"]
    assert specs[2].build()[1].retain == 0.25
    with pytest.raises(EvalUsageError, match="a method appears twice"):
        method_specs(["random+random"])


# ---------------------------------------------------------------------------------------------- suites
def test_paper_suites_follow_the_papers_tables():
    from vlprune.eval.config import EvalUsageError
    from vlprune.eval.suites import get_suite, list_suites

    assert {"guipruner-agents", "pixelprune-docs", "pixelprune-gui"} <= set(list_suites())
    docs = get_suite("pixelprune-docs")
    assert [c.header for c in docs.columns] == ["OCRBench", "DocVQA", "InfoVQA", "ChartQA", "AI2D", "MML-Doc",
                                                "olmOCR", "Avg"]
    assert [r.label for r in docs.rows] == ["Full", "Resize", "Random", "ConnComp", "PixelPrune"]
    assert (docs.min_pixels, docs.max_pixels) == (256 * 256, 4096 * 4096)
    assert {b.key: b.max_new_tokens for b in docs.benchmarks if b.max_new_tokens != 512} == {"olmocr-bench": 16384}
    gui = get_suite("pixelprune-gui")
    assert [c.header for c in gui.columns] == ["V2 Web", "V2 Mobile", "V2 Desktop", "V2 Avg", "Pro Dev.",
                                               "Pro Creative", "Pro CAD", "Pro Sci.", "Pro Office", "Pro OS", "Pro Avg"]
    agents = get_suite("guipruner-agents")
    guip = [r for r in agents.rows if r.method == "guipruner"]
    assert [(r.key, r.options) for r in guip] == [(f"guipruner-{s}", {"guipruner": {"preset": s}}) for s in ("I", "II", "III")]
    assert {r.options["fastv"]["history_retain"] for r in agents.rows if r.method == "fastv"} == {0.4, 0.2, 0.1}
    # the paper's baselines (DivPrune, CDPruner, FastV, MoB) at each setting's budget, then GUIPruner rows
    for m in ("divprune", "cdpruner", "fastv", "mob"):
        assert [r.options[m] for r in agents.rows if r.method == m] == [
            {"retain": 0.75, "history_retain": h} for h in (0.4, 0.2, 0.1)], m
    assert len(agents.rows) == 1 + 3 * 6
    assert agents.row("fastv-II").options == {"fastv": {"retain": 0.75, "history_retain": 0.2}}
    assert docs.row("PixelPrune").key == "pixelprune"
    with pytest.raises(EvalUsageError, match="3 rows have this label; give a key"):
        agents.row("FastV")


def test_paper_suite_columns_name_metrics_the_datasets_report(tmp_path):
    """Every column's metric key exists in its dataset's summary (built from the fixtures, no model)."""
    docs = pytest.importorskip("eval_fixtures_docs", reason="document/grounding fixture writers not written yet")
    agents = pytest.importorskip("eval_fixtures_agents", reason="agent fixture writers not written yet")
    protocols = pytest.importorskip("eval_fixtures_protocols", reason="AI2D / MMLongBench-Doc / olmOCR writers")
    from vlprune.eval import create_dataset
    from vlprune.eval.scoring import Universe, failed_record
    from vlprune.eval.suites import _metric, get_suite

    writers = {**docs.DOC_FIXTURES, **agents.AGENT_FIXTURES, **protocols.usable_writers()}
    skip = set(protocols.PROTOCOL_FIXTURES) - set(writers)  # without vlprune[eval-docs]
    checked = set()
    for name in ("pixelprune-docs", "pixelprune-gui", "guipruner-agents"):
        suite = get_suite(name)
        for b in suite.benchmarks:
            ds = create_dataset(b.dataset, **b.options)  # the suite's dataset options exist
            if b.dataset in checked or b.dataset in skip:
                continue
            checked.add(b.dataset)
            folder = tmp_path / b.key
            folder.mkdir()
            universe = Universe.from_load(ds.load(writers[b.dataset](folder, **({"split": b.options["split"]}
                                                                             if "split" in b.options else {}))))
            records = [failed_record(ds, s, i, "x") for i, s in enumerate(universe.samples)]
            summary = {"metrics": ds.summarize(records)}
            for c in suite.columns:
                if c.bench == b.key and not c.mean_of:
                    _metric(summary, c.metric, f"{name} {c.header}")
    assert len(checked) == 13 - len(skip)


def test_unmeasured_table_shows_dashes_only(tmp_path):
    from vlprune.eval.suites import collect, get_suite, render

    for name in ("pixelprune-docs", "pixelprune-gui", "guipruner-agents"):
        suite = get_suite(name)
        table = render(suite, {**collect(suite, tmp_path), "model": "m", "family": "f"})
        body = [ln for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
        cells = [c.strip() for ln in body for c in ln.strip("|").split("|")[-len(suite.columns):]]
        assert cells and all(c in ("—", "") for c in cells), name
        assert not re.search(r"\d+\.\d", "\n".join(body)), name  # no number anywhere in the rows


def test_suite_machinery_runs_rows_and_renders_measured_cells(tmp_path, capsys):
    from vlprune.eval.config import EvalUsageError
    from vlprune.eval.suites import Benchmark, Column, Row, Suite, SuiteRun, register_suite, validate

    root = tmp_path / "root"
    eval_toy.write_toy_vqa(root / "vqa-a", 3)
    eval_toy.write_toy_vqa(root / "vqa-b", 2)
    suite = register_suite(Suite(
        name="toy-suite", title="Toy table", families=("qwen2-vl",), models="tiny",
        benchmarks=(Benchmark("a", "toy-vqa", "vqa-a"), Benchmark("b", "toy-vqa", "vqa-b", max_new_tokens=2)),
        rows=(Row("full", "Full", "full"), Row("pixelprune", "PixelPrune", "pixelprune"),
              Row("half", "Random 50%", "random", {"random": {"retain": 0.5}}),
              Row("ghost", "Ghost", "nosuchmethod")),
        columns=(Column("A", "a", "accuracy", where={"group": "a"}), Column("B", "b", "accuracy"),
                 Column("Avg", mean_of=("A", "B"))),
        retention_row="pixelprune",
    ))
    run = SuiteRun(data_root=str(root), model="random:qwen2-vl-tiny", out=str(tmp_path / "out"), max_pixels=12544,
                   progress=False)
    with pytest.raises(EvalUsageError) as exc:
        validate(suite, run)
    assert "row 'ghost' (Ghost)" in str(exc.value) and "unknown method 'nosuchmethod'" in str(exc.value)
    assert "--row full --row pixelprune --row half" in str(exc.value)
    empty = SuiteRun(data_root=str(tmp_path / "empty"), model="random:qwen2-vl-tiny", out=str(tmp_path / "o"),
                     rows=("full",))
    with pytest.raises(EvalUsageError, match=f"benchmark 'a': no data at {tmp_path / 'empty' / 'vqa-a'}"):
        validate(suite, empty)
    rc = main(["suite", "toy-suite", "--data-root", str(root), "--model", "random:qwen2-vl-tiny", "--out",
               str(tmp_path / "out"), "--max-pixels", "12544", "--no-progress", "--row", "full", "--row", "half"])
    assert rc == 0
    out = tmp_path / "out"
    assert (out / "a" / "half" / "summary.json").exists() and not (out / "a" / "pixelprune").exists()
    half = [json.loads(x) for x in (out / "a" / "half" / "predictions.jsonl").read_text().splitlines()]
    # half of n rounded half up (floor(n / 2 + 0.5) = (n + 1) // 2; Python's round() would round 2.5 to 2)
    assert [r["tokens"]["pre_vit"] for r in half] == [max(1, (r["tokens"]["raw"] + 1) // 2) for r in half]
    data = json.loads((out / "suite.json").read_text())
    cells = {r["key"]: r["cells"] for r in data["rows"]}
    for key in ("full", "half"):
        acc = [json.loads((out / b / key / "summary.json").read_text())["metrics"]["accuracy"] * 100 for b in "ab"]
        assert cells[key] == {"A": acc[0], "B": acc[1], "Avg": (acc[0] + acc[1]) / 2}
    assert cells["pixelprune"] == {"A": None, "B": None, "Avg": None} and cells["ghost"]["A"] is None
    assert data["retention"] == {"A": None, "B": None, "Avg": None}  # the PixelPrune row did not run
    table = (out / "suite.md").read_text()
    assert "| PixelPrune | — | — | — |" in table and "| Ghost | — | — | — |" in table
    assert f"| Random 50% | {cells['half']['A']:.1f} | {cells['half']['B']:.1f} |" in table
    assert table in capsys.readouterr().out

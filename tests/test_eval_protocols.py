"""The papers' protocols: the new benchmarks (AI2D, MMLongBench-Doc, olmOCR-bench) loaded from their
published layouts and scored as their evaluators do (hand-computed scores), the authors' prompts and
pixel bounds, history screenshots in the agent suites, the ablation suites' layouts, and sampling.

The suites run end to end on tiny random-weight models (``--limit`` keeps them short): their tables must
show measured cells for the rows that ran and '—' elsewhere; no accuracy is asserted beyond the pipeline.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from eval_fixtures_agents import AGENT_FIXTURES, write_mind2web
from eval_fixtures_docs import DOC_FIXTURES
from eval_fixtures_protocols import EVAL_DOCS_MISSING, PROTOCOL_FIXTURES

import eval_toy
from vlprune.eval import create_dataset
from vlprune.eval.base import Parsed, PromptContext
from vlprune.eval.cli import main
from vlprune.eval.metrics import longdoc
from vlprune.eval.metrics import olmocr as olm
from vlprune.eval.metrics.choice import infer_choice
from vlprune.eval.metrics.vqa import relaxed_accuracy
from vlprune.eval.suites import get_suite

#: PDF pages and olmOCR-bench's scoring need the optional eval-docs dependencies
needs_eval_docs = pytest.mark.skipif(bool(EVAL_DOCS_MISSING),
                                     reason=f"needs vlprune[eval-docs] ({', '.join(EVAL_DOCS_MISSING)})")


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _ctx(n: int = 1) -> PromptContext:
    return PromptContext("qwen3-vl", ((96, 128),) * n, ((96, 128),) * n)


def _score(ds, sample, text: str) -> dict:
    return {"id": sample.id, "meta": sample.meta, "answer": ds.parse(text, sample, _ctx()).answer,
            "scores": ds.score(ds.parse(text, sample, _ctx()), sample), "format_error": None, "failed": False}


# ---------------------------------------------------------------------------------------------- AI2D
def test_choice_matching_follows_vlmevalkit_exact_matching():
    opts = {"A": "larva", "B": "pupa", "C": "adult", "D": "egg"}
    assert infer_choice("B", opts) == "B"
    assert infer_choice("The answer is (C).", opts) == "C"  # punctuation split; C among the last 5 words
    assert infer_choice("A or B", opts) is None  # two letters, and no option text
    assert infer_choice("B is right because the larva turns into a pupa in the end", opts) is None  # B too early
    assert infer_choice("it becomes a pupa", opts) == "B"  # option text
    assert infer_choice("Cannot determine the answer", opts) == "Z"


@pytest.mark.parametrize("layout", ["tsv", "parquet"])
def test_ai2d_loads_prompts_and_scores(tmp_path, layout):
    ds = create_dataset("ai2d")
    samples = ds.load(PROTOCOL_FIXTURES["ai2d"](tmp_path, layout)).samples
    assert [s.target["answer"] for s in samples] == ["A", "C", "B"]
    assert samples[1].target["options"] == {"A": "sun", "B": "moon", "C": "earth"}
    text = ds.messages(samples[1], _ctx())[0]["content"][-1]["text"]
    assert text == ("Question: What does the arrow point to?\nOptions:\nA. sun\nB. moon\nC. earth"
                    "Please select the correct answer from the options above.")  # the authors' Qwen3-VL prompt
    generic = create_dataset("ai2d", prompt="vlmevalkit").messages(samples[1], _ctx())[0]["content"][-1]["text"]
    assert generic.endswith("C. earth\nPlease select the correct answer from the options above. \n")
    # "The insect has 8 legs": no letter, and longer than twice the options' text (10 chars): not read, wrong
    recs = [_score(ds, s, p) for s, p in zip(samples, ["A", "C.", "The insect has 8 legs"])]
    out = ds.summarize(recs)
    assert out["accuracy"] == pytest.approx(2 / 3) and out["n_uninferred"] == 1
    assert _score(ds, samples[2], "8 legs")["scores"]["correct"] == 0.0  # option text "8" = C, the answer is B
    if layout == "tsv":
        assert out["lifeCycles_accuracy"] == 0.5 and out["eclipses_accuracy"] == 1.0


# ---------------------------------------------------------------------------------------------- MMLongBench-Doc
def test_mmlongbench_scores_by_answer_format():
    assert longdoc.score("6", "6.0", "Int") == 1.0 and longdoc.score("6", "six", "Int") == 0.0
    assert longdoc.score("18.29%", "0.1829", "Float") == 1.0  # the ground truth tried as x / 100
    assert longdoc.score("18.29%", "18.3", "Float") == 1.0 and longdoc.score("18.29%", "19", "Float") == 0.0
    assert longdoc.score("Some college or more", "some college or more.", "Str") == pytest.approx(1 - 1 / 21)
    assert longdoc.score("https://w.wiki/6gb", "w.wiki/6gb", "Str") == 0.0  # URLs match exactly
    assert longdoc.score("['Circle', 'Rectangle']", "['rectangle', 'circle']", "List") == 1.0
    assert longdoc.score("['Circle', 'Rectangle']", "Circle, Rectangle", "List") == 0.0  # one item vs two
    assert longdoc.score("Not answerable", "['Not answerable']", "None", "vlmevalkit") == 1.0  # list branch
    # string branch: "['not answerable']" vs "not answerable" -> 4 edits over 18 characters
    assert longdoc.score("Not answerable", "['Not answerable']", "None", "mmlongbench-doc") == pytest.approx(1 - 4 / 18)
    assert longdoc.score("['a', 'b']", "['a', 'b'", "List") == 0.0  # broken literal


def test_mmlongbench_f1_variants():
    na, near = longdoc.NOT_ANSWERABLE, 1 - 1 / 15  # "not answerable." vs "not answerable"
    items = [(True, "6", 1.0), (True, na, 0.0), (False, na, 1.0), (False, "Not answerable.", near)]
    recall = Fraction(1, 2)
    for variant, precision in (("vlmevalkit", (1 + near) / 2), ("mmlongbench-doc", 0.5)):
        acc, f1 = longdoc.accuracy_f1(items, variant)
        assert acc == pytest.approx((2 + near) / 4)
        assert f1 == pytest.approx(2 * float(recall) * precision / (float(recall) + precision))


@needs_eval_docs
@pytest.mark.parametrize("layout", ["pdf", "rendered"])
def test_mmlongbench_pages_and_breakdowns(tmp_path, layout):
    ds = create_dataset("mmlongbench-doc")
    samples = ds.load(PROTOCOL_FIXTURES["mmlongbench-doc"](tmp_path, layout)).samples
    assert [len(s.images) for s in samples] == [3, 3, 2, 2]
    assert samples[0].images[0].open().size == ((192, 256) if layout == "pdf" else (96, 128))  # 144 dpi of 96x128 pt
    assert samples[0].images[0].size() == samples[0].images[0].open().size  # without rendering, for PDF pages
    assert len(create_dataset("mmlongbench-doc", max_pages=2).load(tmp_path).samples[0].images) == 2
    assert ds.messages(samples[0], _ctx(3))[0]["content"][-1]["text"] == (
        "How many charts?\nPlease answer concisely with short words or phrases when possible.")
    recs = [_score(ds, s, p) for s, p in zip(samples, ["6", "Some college or more", "Not answerable", "Circle"])]
    out = ds.summarize(recs)
    assert out["accuracy"] == 0.75 and out["single_page"] == 0.5 and out["multi_page"] == 1.0
    assert out["unanswerable"] == 1.0 and out["chart"] == 1.0 and out["image"] == 0.0


@needs_eval_docs
def test_mmlongbench_missing_document_is_a_counted_problem(tmp_path):
    PROTOCOL_FIXTURES["mmlongbench-doc"](tmp_path)
    (tmp_path / "data" / "documents" / "guide.pdf").unlink()
    res = create_dataset("mmlongbench-doc").load(tmp_path)
    assert len(res.samples) == 2 and [p.counted for p in res.problems] == [True, True]
    assert "document not found" in str(res.problems[0]) and "guide.pdf" in str(res.problems[0])


# ---------------------------------------------------------------------------------------------- olmOCR-bench
GOOD = ("Fruit report\n\n| Fruit | Count |\n|---|---|\n| apples | 42 |\n\nTotals follow. The Pythagoras theorem: "
        "$a^2 + b^2 = c^2$.")


def _test(**kw) -> dict:
    return olm.check_test({"pdf": "x.pdf", "page": 1, "id": "t", **kw})


@needs_eval_docs
def test_olmocr_unit_tests():
    table = _test(type="table", cell="42", up="Count", left="apples", top_heading="Count")
    assert olm.run_test(table, GOOD)
    assert not olm.run_test(table, GOOD.replace("apples", "pears"))  # left neighbour differs
    html = "<table><thead><tr><th>Fruit</th><th>Count</th></tr></thead><tr><td>apples</td><td>42</td></tr></table>"
    assert olm.run_test(table, html)
    order = _test(type="order", before="Fruit report", after="Totals follow")
    assert olm.run_test(order, GOOD) and not olm.run_test(order, "Totals follow. Fruit report")
    math = _test(type="math", math="a^2 + b^2 = c^2")
    assert olm.run_test(math, GOOD) and not olm.run_test(math, "$$a^2+b^2=c^2$$")  # exact check only
    absent = _test(type="absent", text="Page 7 of 9")
    assert olm.run_test(absent, GOOD) and not olm.run_test(absent, GOOD + " Page 7 of 9")
    present = _test(type="present", text="pythagoras THEOREM", case_sensitive=False)
    assert olm.run_test(present, GOOD) and not olm.run_test(dict(present, case_sensitive=True), GOOD)
    base = _test(type="baseline")
    assert olm.run_test(base, GOOD) and not olm.run_test(base, " \n ")
    assert not olm.run_test(base, "intro " + "abc" * 31) and olm.run_test(base, "intro " + "abc" * 30)
    assert not olm.run_test(base, GOOD + " 中")
    assert olm.ngram_repeats("aabaabaa", 3) == [2, 1, 2] and olm.ngram_repeats("abab", 3) == [1, 2, 1]
    assert olm.normalize_text("**Bold**  and\n<br>“quote” — x") == 'Bold and "quote" - x'
    with pytest.raises(ValueError, match="unknown field"):
        _test(type="present", text="a", colour="red")


@needs_eval_docs
@pytest.mark.parametrize("layout", ["release", "tsv"])
def test_olmocr_categories_and_overall(tmp_path, layout):
    ds = create_dataset("olmocr-bench")
    samples = ds.load(PROTOCOL_FIXTURES["olmocr-bench"](tmp_path, layout)).samples
    assert [s.id for s in samples] == ["arxiv_math/paper_pg1.pdf:1", "tables/sheet.pdf:1"]
    assert [len(s.target["tests"]) for s in samples] == [3, 4]  # + one baseline test per PDF
    recs = [_score(ds, samples[0], GOOD), _score(ds, samples[1], GOOD + " Page 7 of 9")]
    out = ds.summarize(recs)
    table_cat = "table_tests" if layout == "release" else "tables"
    assert out["arxiv_math"] == 1.0 and out[table_cat] == pytest.approx(2 / 3) and out["baseline"] == 1.0
    assert out["overall"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert out["type_absent"] == 0.0 and out["type_table"] == 1.0 and out["tests"] == 7 and out["tests_passed"] == 6
    failed = ds.summarize([dict(recs[0], scores=ds.score(Parsed(None, "x"), samples[0])), recs[1]])
    assert failed["arxiv_math"] == 0.0 and failed["tests"] == 7  # a failed page fails all its tests


# ---------------------------------------------------------------------------------------------- authors' prompts
def test_document_prompts_and_metric_variants_of_the_authors():
    suite = get_suite("pixelprune-docs")
    opts = {b.key: b.options for b in suite.benchmarks}
    assert {b.key: b.min_pixels for b in suite.benchmarks if b.min_pixels} == {"ocrbench": 102400}
    for key in ("docvqa", "infovqa", "chartqa", "ai2d"):
        assert opts[key]["prompt"] == "qwen3-vl"
    ds = create_dataset("docvqa", **opts["docvqa"])
    sample = type("S", (), {"question": "What is the total?", "images": [None]})()
    assert ds.messages(sample, _ctx())[0]["content"][-1]["text"] == (
        "What is the total?\nAnswer the question using a single word or phrase.")
    assert relaxed_accuracy("95.2", ["100"], "vlmevalkit") == 1.0 and relaxed_accuracy("95.2", ["100"], "qwen-vl") == 0.0


# ---------------------------------------------------------------------------------------------- suites: layouts
def test_ablation_suites_follow_the_papers_tables():
    orders = get_suite("pixelprune-orders")
    assert [(r.label, r.options["pixelprune"]["order"]) for r in orders.rows] == [
        ("Raster", "raster"), ("Serpentine", "serpentine"), ("Pred-2D", "pred2d")]
    assert [c.header for c in orders.columns][:4] == ["DocVQA Ret.", "DocVQA Acc.", "InfoVQA Ret.", "InfoVQA Acc."]
    assert [c.header for c in orders.columns][-2:] == ["Desktop Ret.", "Desktop Acc."]
    tau = get_suite("pixelprune-tau")
    assert [(r.group, r.label) for r in tau.rows][:4] == [("", "Full (100%)"), ("", "Exact (τ=0)"), ("MAE", "0.005"),
                                                          ("MAE", "0.020")]
    assert {r.options["pixelprune"]["metric"] for r in tau.rows[2:]} == {"mae", "max"} and len(tau.rows) == 10
    depth = get_suite("pixelprune-depth")
    assert [(r.label, r.options.get("pixelprune", {}).get("after_block")) for r in depth.rows] == [
        ("After ViT", -1), ("After 17th", 17), ("After 4th", 4), ("After 0th", 0), ("Before ViT", None)]
    eff = get_suite("pixelprune-efficiency")
    assert [c.header for c in eff.columns] == ["Selector (ms)", "Retain (%)", "FLOPs (TFLOPs)", "ViT Lat. (ms)",
                                               "TTFT (ms)", "KV Cache (GB)", "FLOPs Speedup", "TTFT Speedup"]
    assert [b.options for b in eff.benchmarks][1] == {"only_groups": "Scientific"}
    fill = {r.key: r.options["guipruner"] for r in get_suite("guipruner-fill").rows if r.key.endswith("-II")}
    assert fill == {"grid-II": {"preset": "II"}, "random-II": {"preset": "II", "fill": "random"},
                    "no-background-II": {"preset": "II", "rho": 0.0}}
    alloc = [r.options for r in get_suite("guipruner-allocation").rows if r.key.startswith("uniform")]
    assert [o["guipruner"]["allocation"] for o in alloc] == ["uniform"] * 3
    assert [r.options["guipruner"]["layer"] for r in get_suite("guipruner-layer").rows[1:]] == [1, 2, 3, 4, 6, 8]
    for name in ("guipruner-agents", "guipruner-layer", "guipruner-fill", "guipruner-allocation"):
        assert {b.options["history_images"] for b in get_suite(name).benchmarks} == {4}, name


def test_suite_dataset_options_go_to_the_benchmarks_that_take_them():
    from vlprune.eval.config import EvalUsageError
    from vlprune.eval.suites import benchmark_options

    suite = get_suite("pixelprune-docs")
    benches = list(suite.benchmarks)
    out = benchmark_options(suite, benches, {"prompt": "vlmevalkit", "ocrbench.match_variant": "lmms-eval"})
    assert {k for k, o in out.items() if o.get("prompt") == "vlmevalkit"} == {"docvqa", "infovqa", "chartqa", "ai2d"}
    assert out["ocrbench"]["match_variant"] == "lmms-eval" and "prompt" not in out["ocrbench"]
    with pytest.raises(EvalUsageError, match="no selected benchmark of suite pixelprune-docs takes an option 'colour'"):
        benchmark_options(suite, benches, {"colour": 1})
    with pytest.raises(EvalUsageError, match="benchmark 'ocrbench' takes an option 'prompt'"):
        benchmark_options(suite, benches, {"ocrbench.prompt": "x"})


# ---------------------------------------------------------------------------------------------- suites: end to end
def _agent_root(root: Path) -> Path:
    for name in ("gui-odyssey", "androidcontrol", "aitw"):
        (root / name).mkdir(parents=True)
        AGENT_FIXTURES[name](root / name)
    (root / "mind2web").mkdir()
    for split in ("task", "website", "domain"):
        write_mind2web(root / "mind2web", split)
    return root


def test_agent_suite_shows_history_frames_and_lambda_changes_every_column(tmp_path, capsys):
    root, out = _agent_root(tmp_path / "data"), tmp_path / "out"
    rc = main(["suite", "guipruner-agents", "--data-root", str(root), "--model", "random:qwen2-vl-tiny", "--out",
               str(out), "--limit", "2", "--max-new-tokens", "2", "--min-pixels", "784", "--no-progress",
               "--row", "guipruner-I", "--row", "guipruner-III"])
    assert rc == 0
    suite = get_suite("guipruner-agents")
    for b in suite.benchmarks:
        runs = {row: lines(out / b.key / row / "predictions.jsonl") for row in ("guipruner-I", "guipruner-III")}
        first, second = runs["guipruner-I"]
        assert len(first["sizes"]) == 1 and len(second["sizes"]) == 2, b.key  # the 2nd step shows its history
        hist = {row: r[1]["tokens"]["input"] - r[1]["tokens"]["raw"] // 2 for row, r in runs.items()}
        assert hist["guipruner-I"] != hist["guipruner-III"], b.key  # lambda 0.4 vs 0.1 changes the history tokens
        assert runs["guipruner-I"][1]["tokens"]["input"] > runs["guipruner-III"][1]["tokens"]["input"], b.key
        ident = json.loads((out / b.key / "guipruner-I" / "run.json").read_text())
        assert ident["dataset_options"]["history_images"] == 4
    table = (out / "suite.md").read_text()
    assert "- aitw: aitw (history_images=4)" in table and table in capsys.readouterr().out
    data = json.loads((out / "suite.json").read_text())
    assert all(v is not None for v in next(r for r in data["rows"] if r["key"] == "guipruner-I")["cells"].values())
    assert all(v is None for v in next(r for r in data["rows"] if r["key"] == "fastv-I")["cells"].values())


@needs_eval_docs
def test_document_suite_runs_seven_columns_with_per_benchmark_pixels(tmp_path):
    root, out = tmp_path / "data", tmp_path / "out"
    for name in ("ocrbench", "docvqa", "infovqa", "chartqa"):
        DOC_FIXTURES[name](root / name)
    for name, write in PROTOCOL_FIXTURES.items():
        write(root / name)
    rc = main(["suite", "pixelprune-docs", "--data-root", str(root), "--model", "random:qwen3-vl-tiny", "--out",
               str(out), "--limit", "1", "--max-new-tokens", "2", "--max-pixels", "131072", "--no-progress",
               "--row", "pixelprune"])
    assert rc == 0
    limits = {b: json.loads((out / b / "pixelprune" / "summary.json").read_text())["run"]["min_pixels"]
              for b in ("ocrbench", "docvqa")}
    assert limits == {"ocrbench": 102400, "docvqa": 65536}  # the authors' OCRBench bound, the family's elsewhere
    ocr = lines(out / "ocrbench" / "pixelprune" / "predictions.jsonl")[0]
    assert ocr["canvas"][0][0] * ocr["canvas"][0][1] >= 102400
    data = json.loads((out / "suite.json").read_text())
    cells = {r["key"]: r["cells"] for r in data["rows"]}
    seven = [cells["pixelprune"][c] for c in ("OCRBench", "DocVQA", "InfoVQA", "ChartQA", "AI2D", "MML-Doc", "olmOCR")]
    assert all(v is not None for v in seven) and cells["pixelprune"]["Avg"] == pytest.approx(sum(seven) / 7)
    assert all(v is None for v in cells["random"].values())
    assert all(data["retention"][c] is not None for c in data["columns"][:7])
    assert "| Random | — | — | — | — | — | — | — | — |" in (out / "suite.md").read_text()


@needs_eval_docs
def test_efficiency_and_depth_suites_measure_their_columns(tmp_path, capsys):
    root, out = tmp_path / "data", tmp_path / "out"
    PROTOCOL_FIXTURES["mmlongbench-doc"](root / "mmlongbench-doc")
    DOC_FIXTURES["screenspot-pro"](root / "screenspot-pro")
    rc = main(["suite", "pixelprune-efficiency", "--data-root", str(root), "--model", "random:qwen3-vl-tiny",
               "--out", str(out), "--limit", "2", "--max-new-tokens", "2", "--max-pixels", "65536", "--no-progress",
               "--dataset-opt", "screenspot-pro-sci.only_groups=Office"])
    assert rc == 0
    data = json.loads((out / "suite.json").read_text())
    rows = {r["key"]: r["cells"] for r in data["rows"]}
    for bench in ("mmlongbench-doc", "screenspot-pro-sci"):
        full, pp = rows[f"{bench}/full"], rows[f"{bench}/pixelprune"]
        summ = {k: json.loads((out / bench / k / "summary.json").read_text())["efficiency"] for k in ("full", "pixelprune")}
        assert pp["TTFT (ms)"] == summ["pixelprune"]["time_ms"]["ttft"]["mean"]
        assert pp["TTFT Speedup"] == pytest.approx(summ["full"]["time_ms"]["ttft"]["mean"] / pp["TTFT (ms)"])
        assert pp["FLOPs Speedup"] == pytest.approx(full["FLOPs (TFLOPs)"] / pp["FLOPs (TFLOPs)"])
        assert pp["Retain (%)"] == pytest.approx(100 * summ["pixelprune"]["retain"]) and full["Retain (%)"] == 100
        assert pp["KV Cache (GB)"] is None and pp["FLOPs Speedup"] > 1
    assert "dataset_opt screenspot-pro-sci.only_groups=Office" in (out / "suite.md").read_text()

    DOC_FIXTURES["docvqa"](root / "docvqa")
    base = ["suite", "pixelprune-depth", "--data-root", str(root), "--model", "random:qwen3-vl-tiny", "--out",
            str(out / "depth"), "--benchmark", "docvqa", "--limit", "1", "--max-new-tokens", "2", "--max-pixels",
            "65536", "--no-progress"]
    capsys.readouterr()
    assert main(base) == 2  # the tiny model has 2 ViT blocks: the rows after blocks 4 and 17 cannot run
    err = capsys.readouterr().err
    assert "row 'after-17' (After 17th)" in err and "after_block=17 is outside the vision encoder's 2 blocks" in err
    assert "--row after-vit --row after-0 --row before-vit" in err
    assert main([*base, "--row", "before-vit", "--row", "after-0", "--row", "after-vit"]) == 0
    recs = {k: lines(out / "depth" / "docvqa" / k / "predictions.jsonl")[0] for k in ("before-vit", "after-0")}
    assert recs["before-vit"]["tokens"] == recs["after-0"]["tokens"]  # the same keep set
    assert recs["after-0"]["flops"]["vit"] > recs["before-vit"]["flops"]["vit"]  # the ViT ran on every block


# ---------------------------------------------------------------------------------------------- agents, sampling
def test_curated_history_frames_come_from_the_episode_folder(tmp_path):
    from PIL import Image

    for k in range(3):
        (tmp_path / "ep7").mkdir(exist_ok=True)
        Image.new("RGB", (90, 200), (10 * k, 40, 90)).save(tmp_path / "ep7" / f"step_{k}.png")
    Image.new("RGB", (90, 200)).save(tmp_path / "loose.png")
    recs = [{"image": f"ep7/step_{k}.png", "instruction": "open", "history": "", "gt_action": "navigate_back",
             "gt_input_text": "no input text", "gt_bbox": []} for k in (1, 2)]
    recs.append(dict(recs[0], image="loose.png"))
    (tmp_path / "android_control_high_bbox.json").write_text(json.dumps(recs))
    res = create_dataset("androidcontrol", variant="curated", history_images=1).load(tmp_path)
    assert [[Path(i.path).name for i in s.images] for s in res.samples] == [
        ["step_0.png", "step_1.png"], ["step_1.png", "step_2.png"]]
    assert len(res.problems) == 1 and "step_<k>" in str(res.problems[0])
    all_frames = create_dataset("androidcontrol", variant="curated", history_images=4).load(tmp_path).samples
    assert [len(s.images) for s in all_frames] == [2, 3]


def test_sampling_temperature_is_seeded_and_recorded(tmp_path, capsys):
    from vlprune.eval.config import EvalConfig, EvalUsageError
    from vlprune.eval.modelspec import load_model
    from vlprune.eval.records import RecordError
    from vlprune.eval.runner import Runner

    data = eval_toy.write_toy_vqa(tmp_path / "data", 2)
    loaded = load_model("random:qwen2-vl-tiny", max_pixels=12544)

    def run(out: str, **kw):
        config = EvalConfig("toy-vqa", str(data), "random:qwen2-vl-tiny", str(tmp_path / out), max_new_tokens=4,
                            max_pixels=12544, progress=False, **kw)
        Runner(config, loaded=loaded).run()
        return lines(tmp_path / out / "full" / "predictions.jsonl")

    a, b, g = run("a", temperature=1.5), run("b", temperature=1.5), run("g")
    assert [r["prediction"] for r in a] == [r["prediction"] for r in b]  # same seed, same samples: same draw
    run_json = json.loads((tmp_path / "a" / "full" / "run.json").read_text())
    assert run_json["temperature"] == 1.5 and run_json["sampling_seed"] == 0
    assert json.loads((tmp_path / "g" / "full" / "run.json").read_text())["temperature"] is None
    gen = json.loads((tmp_path / "a" / "full" / "summary.json").read_text())["run"]["generation"]
    assert gen["do_sample"] is True and gen["temperature"] == 1.5 and gen["top_k"] == 0
    assert json.loads((tmp_path / "g" / "full" / "summary.json").read_text())["run"]["generation"]["do_sample"] is False
    with pytest.raises(RecordError, match="temperature=1.5"):  # resuming with another temperature is refused
        run("a", temperature=0.5)
    with pytest.raises(EvalUsageError, match="--temperature must be a number in"):
        EvalConfig("toy-vqa", str(data), "m", "o", temperature=-1)
    assert main(["run", "--dataset", "toy-vqa", "--data", str(data), "--model", "random:qwen2-vl-tiny", "--out",
                 str(tmp_path / "x"), "--temperature", "-1"]) == 2
    assert "--temperature must be a number" in capsys.readouterr().err

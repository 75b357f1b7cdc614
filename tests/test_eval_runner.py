"""``eval run``: records, summaries, measurements, resume after an interruption, failed samples, bad input.

Everything runs a tiny random-weight Qwen2-VL (``random:qwen2-vl-tiny``) on the toy datasets of
``tests/eval_toy.py`` at a low ``max_pixels`` (12544 px = at most 16 tokens per image).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import eval_toy
from vlprune.eval.cli import main
from vlprune.eval.config import EvalConfig
from vlprune.eval.runner import Runner

MODEL = "random:qwen2-vl-tiny"
MAXPX = "12544"

_LOADED = {}


def loaded_model():
    """One tiny model for the API-level tests (the CLI tests load their own, as users do)."""
    if "m" not in _LOADED:
        from vlprune.eval.modelspec import load_model

        _LOADED["m"] = load_model(MODEL, max_pixels=int(MAXPX))
    return _LOADED["m"]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def run_cli(*argv) -> int:
    return main(["run", "--model", MODEL, "--max-pixels", MAXPX, "--no-progress", *argv])


# ---------------------------------------------------------------------------------------------- records
def test_records_summaries_and_measurements(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 5, missing_image=2, no_answer=4)
    out = tmp_path / "out"
    rc = run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(out), "--method", "pixelprune",
                 "--batch-size", "2")
    assert rc == 1  # the missing image and the record without an answer failed; the rest ran
    full, pp = lines(out / "full" / "predictions.jsonl"), lines(out / "pixelprune" / "predictions.jsonl")
    for recs in (full, pp):
        assert [r["id"] for r in recs] == ["q0", "q1", "q2", "q3", "q4"]  # one per sample, dataset order
        assert [r["index"] for r in recs] == [0, 1, 2, 3, 4]
        assert [r["failed"] for r in recs] == [False, False, True, False, True]
        assert "q2.png" in recs[2]["error"] and "questions.json [record 2]" in recs[2]["error"]
        assert "no 'answer'" in recs[4]["error"] and recs[4]["scores"] == {"exact": 0.0}
    # canvases by hand (smart_resize, factor 28, 3136..12544 px): 64x48 -> 56x56, 80x56 -> 84x56, 64x56 -> 56x56
    assert [r["sizes"] for r in full if not r["failed"]] == [[[64, 48]], [[80, 56]], [[64, 56]]]
    assert [r["canvas"] for r in full if not r["failed"]] == [[[56, 56]], [[84, 56]], [[56, 56]]]
    assert [r["tokens"]["raw"] for r in full if not r["failed"]] == [4, 6, 4]  # (W_r/28) * (H_r/28)
    for f, p in zip(full, pp):
        if f["failed"]:
            continue
        assert f["tokens"] == {"raw": f["tokens"]["raw"], "pre_vit": f["tokens"]["raw"]} and f["retain"] == 1.0
        assert p["tokens"]["raw"] == f["tokens"]["raw"] and p["tokens"]["pre_vit"] <= f["tokens"]["raw"]
        assert p["retain"] == p["tokens"]["pre_vit"] / p["tokens"]["raw"]
        same = p["tokens"]["pre_vit"] == f["tokens"]["raw"]
        assert (p["flops"]["vit"] == f["flops"]["vit"]) if same else (p["flops"]["vit"] < f["flops"]["vit"])
        t = p["time_ms"]
        assert t["ttft"] >= t["plan"] + t["vit"] + t["post"] and t["prefill"] >= 0 and t["decode"] >= 0
        assert abs(t["ttft"] - (t["plan"] + t["vit"] + t["post"] + t["prefill"])) < 1e-6
        assert t["total"] >= t["ttft"] and p["batch_size"] in (1, 2)
        assert 1 <= p["new_tokens"] <= 3 and p["prompt_tokens"] > p["tokens"]["raw"]
    assert [r["cold"] for r in full if not r["failed"]] == [True, True, False]  # first batch = warm-up
    for name, recs in (("full", full), ("pixelprune", pp)):
        s = json.loads((out / name / "summary.json").read_text())
        ok = [r for r in recs if not r["failed"]]
        assert s["n"] == len(recs) == s["metrics"]["n"] and s["n_failed"] == 2 and s["method"] == name
        assert s["metrics"]["accuracy"] == sum(r["scores"]["exact"] for r in recs) / 5
        raw, kept = sum(r["tokens"]["raw"] for r in ok), sum(r["tokens"]["pre_vit"] for r in ok)
        assert s["efficiency"]["retain"] == pytest.approx(kept / raw)
        assert s["efficiency"]["timed_samples"] == 1 and s["efficiency"]["timing_excludes_warmup"]
        assert s["run"]["random_weights"] is True and s["run"]["model"] == MODEL
        assert s["run"]["method"]["spec"] == name and s["run"]["max_new_tokens"] == 3
    comp = json.loads((out / "comparison.json").read_text())
    assert [r["method"] for r in comp["rows"]] == ["full", "pixelprune"] and comp["primary_metric"] == "accuracy"
    assert comp["rows"][0]["delta_vs_full"]["accuracy"] == 0.0
    assert (out / "comparison.png").stat().st_size > 1000 and "| pixelprune |" in (out / "comparison.md").read_text()
    assert "| pixelprune |" in capsys.readouterr().out


def test_composition_and_options_reach_the_methods(tmp_path):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 2)
    out = tmp_path / "out"
    rc = run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(out), "--method", "random+fastv",
                 "--opt", "random.retain=0.5", "--opt", "fastv.retain=0.5", "--max-new-tokens", "2")
    assert rc == 0
    recs = lines(out / "random+fastv" / "predictions.jsonl")
    for r in recs:  # raw -> pre_vit keeps half (rounded half up) -> llm keeps half of those
        raw = r["tokens"]["raw"]
        half = max(1, int(raw * 0.5 + 0.5))
        assert list(r["tokens"]) == ["raw", "pre_vit", "llm"]
        assert r["tokens"]["pre_vit"] == half and r["tokens"]["llm"] == max(1, int(half * 0.5 + 0.5))
        assert r["new_tokens"] <= 2
    run = json.loads((out / "random+fastv" / "summary.json").read_text())["run"]
    assert run["method"]["options"] == {"random": {"retain": 0.5}, "fastv": {"retain": 0.5}}


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_batched_generation_equals_one_sample_at_a_time(tmp_path, family):
    """Left-padded batches of 3 give the same outputs, tokens and FLOPs as batch size 1."""
    from vlprune.eval.modelspec import load_model

    data = eval_toy.write_toy_vqa(tmp_path / "data", 5)
    model = loaded_model() if family == "qwen2-vl" else load_model(f"random:{family}-tiny", min_pixels=4096,
                                                                     max_pixels=16384)
    got = {}
    for bs in (1, 3):
        out = tmp_path / f"b{bs}"
        cfg = EvalConfig("toy-vqa", str(data), model.name, str(out), methods=("random+fastv",), batch_size=bs,
                         max_new_tokens=4, progress=False)
        Runner(cfg, loaded=model).run()
        got[bs] = {m: lines(out / m / "predictions.jsonl") for m in ("full", "random+fastv")}
    for m in ("full", "random+fastv"):
        for key in ("prediction", "tokens", "canvas", "flops", "prompt_tokens"):
            assert [r[key] for r in got[3][m]] == [r[key] for r in got[1][m]], (m, key)
        assert [r["batch_size"] for r in got[3][m]] == [3, 3, 3, 2, 2]


def test_a_failing_model_call_fails_only_its_sample(tmp_path, monkeypatch):
    """A batch whose generate call raises is retried one sample at a time; only the bad sample fails."""
    from vlprune.eval.engine import BatchEngine

    real = BatchEngine._generate

    def flaky(self, ready):
        if any(r.item.sample.id == "q1" for r in ready):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(self, ready)

    monkeypatch.setattr(BatchEngine, "_generate", flaky)
    data = eval_toy.write_toy_vqa(tmp_path / "data", 4)
    cfg = EvalConfig("toy-vqa", str(data), MODEL, str(tmp_path / "out"), batch_size=3, progress=False)
    result = Runner(cfg, loaded=loaded_model()).run()
    assert result.exit_code == 1 and result.failed == 1
    recs = lines(tmp_path / "out" / "full" / "predictions.jsonl")
    assert [r["failed"] for r in recs] == [False, True, False, False]
    assert recs[1]["error"] == "RuntimeError: CUDA out of memory (simulated)" and recs[1]["scores"] == {"exact": 0.0}
    assert [r["batch_size"] for r in recs] == [1, None, 1, 1]  # the failed batch ran again one by one


# ---------------------------------------------------------------------------------------------- resume
class Stop(Exception):
    pass


def test_resume_after_interruption_and_cut_line(tmp_path):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 6, missing_image=5)
    ref_out, out = tmp_path / "ref", tmp_path / "out"

    def config(o):
        return EvalConfig("toy-vqa", str(data), MODEL, str(o), methods=("pixelprune",), max_pixels=int(MAXPX),
                          progress=False)

    Runner(config(ref_out), loaded=loaded_model()).run()

    seen = []

    def interrupt(rec):
        seen.append(rec["id"])
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        Runner(config(out), loaded=loaded_model(), on_record=interrupt).run()
    pred = out / "full" / "predictions.jsonl"
    assert [r["id"] for r in lines(pred)] == ["q0", "q1", "q2"]
    with open(pred, "a") as f:  # a crash in the middle of writing q3's line
        f.write(json.dumps(lines(ref_out / "full" / "predictions.jsonl")[3])[:40])
    result = Runner(config(out), loaded=loaded_model()).run()
    assert [m.ran for m in result.methods] == [3, 6]  # q3 (cut) .. q5 for full; everything for pixelprune
    for name in ("full", "pixelprune"):
        got, ref = lines(out / name / "predictions.jsonl"), lines(ref_out / name / "predictions.jsonl")
        assert [r["id"] for r in got] == [f"q{i}" for i in range(6)]
        assert [r["prediction"] for r in got] == [r["prediction"] for r in ref]
        assert [r["tokens"] for r in got] == [r["tokens"] for r in ref]
        s, sr = (json.loads((o / name / "summary.json").read_text()) for o in (out, ref_out))
        assert s["metrics"] == sr["metrics"] and s["n"] == 6 and s["n_failed"] == 1
    # everything done: a rerun runs nothing and changes nothing
    before = (out / "full" / "predictions.jsonl").read_text()
    assert [m.ran for m in Runner(config(out), loaded=loaded_model()).run().methods] == [0, 0]
    assert (out / "full" / "predictions.jsonl").read_text() == before


def test_retry_failed_reruns_only_failed_samples(tmp_path):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 3, missing_image=1)
    cfg = dict(dataset="toy-vqa", data=str(data), model=MODEL, out=str(tmp_path / "out"), max_pixels=int(MAXPX),
               progress=False)
    first = Runner(EvalConfig(**cfg), loaded=loaded_model()).run()
    assert first.exit_code == 1 and first.failed == 1
    eval_toy._image(data / "images" / "q1.png", 64, 48, 1)  # the image arrives
    again = Runner(EvalConfig(**cfg), loaded=loaded_model()).run()
    assert again.methods[0].ran == 0 and again.failed == 1  # kept as recorded
    retry = Runner(EvalConfig(**cfg, retry_failed=True), loaded=loaded_model()).run()
    assert retry.methods[0].ran == 1 and retry.failed == 0 and retry.exit_code == 0
    recs = lines(tmp_path / "out" / "full" / "predictions.jsonl")
    assert [r["id"] for r in recs] == ["q0", "q1", "q2"] and not any(r["failed"] for r in recs)


# ---------------------------------------------------------------------------------------------- bad input
def test_corrupt_record_line_and_changed_settings_are_refused(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 2)
    out = tmp_path / "out"
    assert run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(out)) == 0
    capsys.readouterr()
    assert run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(out), "--max-new-tokens", "5") == 2
    err = capsys.readouterr().err
    assert "run.json" in err and "max_new_tokens=3" in err and "max_new_tokens=5" in err
    pred = out / "full" / "predictions.jsonl"
    kept = pred.read_text()
    pred.write_text("{not json\n" + kept)
    assert run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(out)) == 2
    assert f"{pred}, line 1: not valid JSON" in capsys.readouterr().err
    assert pred.read_text() == "{not json\n" + kept  # finished samples are kept as they were
    pred.write_text(json.dumps({"id": "zz", "prediction": "a"}) + "\n")
    assert run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(out)) == 2
    assert f"{pred}, line 1: id 'zz' is not a sample" in capsys.readouterr().err


def test_checkpoint_folder_runs_like_the_random_model_it_was_saved_from(tmp_path, capsys):
    """A local checkpoint folder (here: the tiny random model saved with save_pretrained) loads offline
    and gives the same records as the in-memory model it was saved from."""
    ckpt = tmp_path / "ckpt"
    loaded_model().model.save_pretrained(ckpt)
    loaded_model().processor.save_pretrained(ckpt)
    data = eval_toy.write_toy_vqa(tmp_path / "data", 3)
    assert run_cli("--dataset", "toy-vqa", "--data", str(data), "--out", str(tmp_path / "a")) == 0
    base = ["run", "--dataset", "toy-vqa", "--data", str(data), "--out", str(tmp_path / "b"), "--no-progress"]
    assert main([*base, "--model", str(ckpt), "--max-pixels", MAXPX]) == 0
    a, b = (lines(tmp_path / o / "full" / "predictions.jsonl") for o in "ab")
    assert [r["prediction"] for r in b] == [r["prediction"] for r in a] and [r["canvas"] for r in b] == [r["canvas"] for r in a]
    run = json.loads((tmp_path / "b" / "full" / "summary.json").read_text())["run"]
    assert run["model"] == str(ckpt) and run["random_weights"] is False and run["model_type"] == "qwen2_vl"


def test_bad_dataset_model_and_method_flags_exit_2(tmp_path, capsys):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 1)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "annotations.json").write_text("[]")
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    cases = [
        (["--dataset", "toy-vqa", "--data", str(wrong)], f"{wrong / 'questions.json'} not found"),
        (["--dataset", "docvqa", "--data", str(data), "--dataset-opt", "prompt=nosuch"],
         "--dataset docvqa: unknown prompt 'nosuch'"),
        (["--dataset", "no-such", "--data", str(data)], "unknown dataset 'no-such'"),
        (["--dataset", "toy-vqa", "--data", str(data), "--method", "nosuch"], "unknown method 'nosuch'"),
        (["--dataset", "toy-vqa", "--data", str(data), "--method", "pixelprune", "--opt", "pixelprune.bogus=1"],
         "no option(s) bogus"),
        (["--dataset", "toy-vqa", "--data", str(data), "--opt", "fastv.retain=0.3"], "'fastv' is not among the methods"),
        (["--dataset", "toy-vqa", "--data", str(data), "--opt", "fastv"], "expected NAME.OPTION=VALUE"),
        (["--dataset", "toy-vqa", "--data", str(data), "--method", "random+pixelprune"], "two methods of stage"),
    ]
    for argv, message in cases:
        assert run_cli(*argv, "--out", str(tmp_path / "o")) == 2, argv
        assert message in capsys.readouterr().err, message
    base = ["run", "--dataset", "toy-vqa", "--data", str(data), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*base, "--model", str(llama)]) == 2
    err = capsys.readouterr().err
    assert str(llama) in err and "model_type 'llama' is not a supported Qwen-VL model" in err
    assert main([*base, "--model", str(tmp_path)]) == 2
    assert f"--model {tmp_path}: no config.json" in capsys.readouterr().err
    assert main([*base, "--model", "random:qwen9-huge"]) == 2
    assert "unknown shape 'qwen9-huge'" in capsys.readouterr().err
    assert main([*base, "--model", "random:qwen3-vl-tiny", "--max-pixels", "12544"]) == 2  # family min is 256^2
    assert "min_pixels 65536 exceeds max_pixels 12544" in capsys.readouterr().err


def test_every_registered_dataset_dry_run(tmp_path):
    """A dry run of every built-in dataset on its fixture: one record per sample, ids complete, summary n."""
    docs = pytest.importorskip("eval_fixtures_docs", reason="document/grounding fixture writers not written yet")
    agents = pytest.importorskip("eval_fixtures_agents", reason="agent fixture writers not written yet")
    protocols = pytest.importorskip("eval_fixtures_protocols", reason="AI2D / MMLongBench-Doc / olmOCR writers")
    from vlprune.eval import create_dataset, list_datasets
    from vlprune.eval.scoring import Universe

    writers = {**docs.DOC_FIXTURES, **agents.AGENT_FIXTURES, **protocols.usable_writers()}
    skip = set(protocols.PROTOCOL_FIXTURES) - set(writers)  # without vlprune[eval-docs]
    names = [n for n in list_datasets() if not n.startswith("toy-") and n not in skip]
    assert not set(names) - set(writers), f"datasets without a fixture writer: {sorted(set(names) - set(writers))}"
    for name in names:
        (tmp_path / name).mkdir()
        path = writers[name](tmp_path / name)
        out = tmp_path / f"out-{name}"
        rc = run_cli("--dataset", name, "--data", str(path), "--out", str(out), "--max-new-tokens", "2")
        recs = lines(out / "full" / "predictions.jsonl")
        universe = Universe.from_load(create_dataset(name).load(path))
        assert [r["id"] for r in recs] == [s.id for s in universe.samples], name
        summary = json.loads((out / "full" / "summary.json").read_text())
        assert summary["n"] == len(recs) and summary["n_failed"] == sum(r["failed"] for r in recs), name
        assert rc == (1 if summary["n_failed"] else 0), name
        assert all(r["error"] for r in recs if r["failed"]), name

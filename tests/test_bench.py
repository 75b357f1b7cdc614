"""``vlprune bench`` end to end on tiny random-weight architectures (no timed assertions)."""

from __future__ import annotations

import sys
import subprocess
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import vlprune
from vlprune import bench
from vlprune.cli import main
from vlprune.options import OptionError
from vlprune.bench import timing
from vlprune.families import get_family

from model_fixtures import synthetic_image

for _fam in ("qwen3-vl", "qwen2-vl"):  # the families' test architectures (4 LLM layers, 2 ViT blocks)
    bench.register_shape(get_family(_fam).tiny)

FAST = ["--dtype", "fp32", "--warmup", "0", "--repeats", "1", "--decode-tokens", "2", "--no-progress"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench_images")
    paths = []
    for i, (gh, gw) in enumerate([(8, 10), (10, 8)]):
        p = d / f"img{i}.png"
        Image.fromarray(synthetic_image("qwen3-vl", gh, gw, seed=i)).save(p)
        paths.append(str(p))
    return paths


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if the model were built."""

    def boom(*a, **k):
        raise AssertionError("the model was built before the bad input was reported")

    monkeypatch.setattr(bench.run, "build_model", boom)


def test_end_to_end_json_fields_and_kept_tokens(images, tmp_path, capsys):
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    rc = main(["bench", "--family", "qwen3-vl", "--shape", "tiny", "--method", "pixelprune", "--method", "random",
               *FAST, "--json", str(out), "--plot", str(plot), *images])
    assert rc == 0
    text = capsys.readouterr().out
    assert "qwen3-vl-tiny" in text and "full depth" in text and "pixelprune" in text
    d = json.loads(out.read_text())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(plot).size[0] > 300
    assert d["shape"] == "qwen3-vl-tiny" and d["reduced_depth"] is False
    assert d["memory_method"] and d["timing_method"] and d["machine"]["threads"] >= 1
    by = {s["method"]: s for s in d["methods"]}
    assert list(by) == ["full", "pixelprune", "random"]
    for s in by.values():
        for key in ("vit_ms", "prefill_ms", "decode_tok_s", "peak_mem_mb"):
            assert set(s[key]) >= {"median", "min", "max", "iqr", "n"} and s[key]["n"] == 1
            assert s[key]["median"] is not None
        for key in ("kept_tokens", "image_tokens", "retain", "flops_prefill", "flops_ratio", "prefill_ratio",
                    "kv_bytes_measured", "kv_bytes_analytic", "flops_decode_step"):
            assert s[key] is not None
        assert s["vit_ms"]["median"] <= s["prefill_ms"]["median"]
    assert by["full"]["retain"] == 1.0 and by["full"]["flops_ratio"] == 1.0
    for m in ("pixelprune", "random"):
        assert by[m]["flops_prefill"] < by["full"]["flops_prefill"]
        assert by[m]["kv_bytes_analytic"] < by["full"]["kv_bytes_analytic"]
        assert by[m]["kv_bytes_measured"] < by["full"]["kv_bytes_measured"]
    # totals are the per-image sums; the LLM sees the prompt minus the dropped image tokens
    for m, s in by.items():
        rows = d["per_image"][m]
        assert s["kept_tokens"] == sum(r["kept_tokens"] for r in rows)
        assert s["image_tokens"] == sum(r["image_tokens"] for r in rows)
        assert s["retain"] == s["kept_tokens"] / s["image_tokens"]
        for r in rows:
            assert r["llm_tokens"] == r["prompt_tokens"] - r["image_tokens"] + r["kept_tokens"]
    # kept tokens per image = what vlprune.select keeps on the same image
    for m in ("pixelprune", "random"):
        for path, row in zip(images, d["per_image"][m]):
            assert row["kept_tokens"] == vlprune.select(path, m, family="qwen3-vl").n_kept
    for path, row in zip(images, d["per_image"]["full"]):
        sel = vlprune.select(path, "full", family="qwen3-vl")
        assert row["kept_tokens"] == row["image_tokens"] == sel.n_total
        assert row["tokens_by_stage"] == {"raw": sel.n_total} and row["llm_layer"] is None
    for m in ("pixelprune", "random"):
        for row in d["per_image"][m]:
            assert row["tokens_by_stage"] == {"raw": row["image_tokens"], "pre_vit": row["kept_tokens"]}
            assert row["llm_tokens_final"] == row["llm_tokens"] and row["llm_ms_share"] is None
    # the attention implementation that ran, also for the unmodified model
    assert {r["attn_implementation"] for rows in d["per_image"].values() for r in rows} == {"sdpa"}
    assert {s["attn_implementation"] for s in by.values()} == {"sdpa"}
    # the cache object holds exactly the analytic K/V bytes (fp32, all full-attention layers)
    for rows in d["per_image"].values():
        for row in rows:
            assert row["kv_bytes_measured"] == row["kv_bytes_analytic"]
            assert row["prefill_ms_passes"] == [row["prefill_ms"]["median"]]  # one timed pass


def test_reduced_depth_is_labelled(images, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["bench", "--shape", "qwen2-vl-tiny", "--layers", "1", *FAST, "--json", str(out), images[0]])
    assert rc == 0
    assert "REDUCED DEPTH" in capsys.readouterr().out
    d = json.loads(out.read_text())
    assert d["reduced_depth"] is True and any("REDUCED DEPTH" in n for n in d["notes"])


def test_onednn_cache_is_a_typed_setting(images, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(bench.ONEDNN_CACHE_VAR, "1024")  # restored after the test
    out = tmp_path / "o.json"
    assert main(["bench", "--shape", "qwen2-vl-tiny", "--onednn-cache", "4096", *FAST, "--json", str(out), images[0]]) == 0
    d = json.loads(out.read_text())
    assert d["config"]["onednn_cache"] == 4096 and d["machine"]["onednn_primitive_cache"] == "4096"
    assert bench.configure_onednn_cache(None) == "4096"  # None leaves the process's setting
    for bad in (-1, 2.5, True):
        with pytest.raises(bench.BenchError, match="onednn_cache must be an integer >= 0"):
            bench.configure_onednn_cache(bad)
    capsys.readouterr()
    assert main(["bench", "--shape", "qwen2-vl-tiny", "--onednn-cache", "-5", *FAST, images[0]]) == 2
    assert "--onednn-cache" in capsys.readouterr().err


def test_shape_aliases():
    assert bench.resolve_shape("2b", "qwen3-vl")[1].name == "qwen3-vl-2b"
    assert bench.resolve_shape("2b", "qwen2-vl")[1].name == "qwen2-vl-2b"
    assert bench.resolve_shape("qwen2-vl-2b")[0] == "qwen2-vl"
    with pytest.raises(bench.BenchError, match="not --family"):
        bench.resolve_shape("qwen2-vl-2b", "qwen3-vl")


@pytest.mark.parametrize("argv, msg", [
    (["--shape", "13b", "--family", "qwen3-vl"], "unknown shape '13b' for family qwen3-vl"),
    (["--shape", "2b", "--family", "llava"], "unknown model family 'llava'"),
    (["--shape", "qwen3-vl-2b", "--method", "nosuch"], "argument --method: unknown method 'nosuch' in 'nosuch'"),
    (["--shape", "qwen3-vl-tiny", "--attn", "flash_attention_2"],
     "--attn flash_attention_2: it runs on CUDA GPUs only, not --device cpu"),
    (["--shape", "qwen3-vl-tiny", "--attn", "flash"], "argument --attn: invalid choice"),
])
def test_bad_model_request_exits_2_before_build(argv, msg, images, no_build, capsys):
    assert main(["bench", *argv, *FAST, images[0]]) == 2
    assert msg in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has a GPU")
def test_cuda_without_gpu_exits_2(images, no_build, capsys):
    assert main(["bench", "--shape", "qwen3-vl-tiny", "--device", "cuda", *FAST, images[0]]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_dtype_probe_on_cpu():
    # every offered dtype either runs on this CPU or is refused with a clear error
    for dt in bench.DTYPES:
        try:
            bench.check_device("cpu", dt)
        except bench.BenchError as exc:
            assert f"--dtype {dt} cannot run" in str(exc)


def test_memory_estimate_over_limit_exits_2(images, no_build, capsys):
    assert main(["bench", "--shape", "qwen3-vl-tiny", "--max-memory-gb", "0.001", *FAST, images[0]]) == 2
    err = capsys.readouterr().err
    assert "exceeds the 0.00 GiB available (--max-memory-gb)" in err and "image tokens" in err


def test_memory_estimate_of_real_shape_counts_weights():
    cfg = bench.BenchConfig(images=[], shape="2b", family="qwen3-vl")
    _, shape = bench.resolve_shape(cfg.shape, cfg.family)
    config = bench.shape_config(shape, None, None)
    req = bench.Request("x", {}, (1, 68, 120), 2040, 2054)
    est = bench.estimate_memory(config, [req], "bfloat16", 8, "cpu", 100.0)
    assert 3.5 < est.weights / 2**30 < 5.0  # ~2.1 B parameters in bf16
    assert est.kv > 0 and est.activations > 0 and est.available == 100.0 * 2**30


def test_missing_and_unreadable_images_exit_2(tmp_path, no_build, capsys):
    assert main(["bench", "--shape", "qwen3-vl-tiny", *FAST, str(tmp_path / "nope.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["bench", "--shape", "qwen3-vl-tiny", *FAST, str(bad)]) == 2
    assert "bad.png" in capsys.readouterr().err


def test_cache_bytes_counts_tensors_once():
    t = torch.zeros(4, 4)
    layer = SimpleNamespace(keys=t, values=t.clone(), alias=t)
    assert timing.cache_bytes(SimpleNamespace(layers=[layer, None])) == 2 * t.numel() * 4


def test_stats():
    s = bench.stats([3.0, 1.0, 2.0])
    assert s["median"] == 2.0 and s["min"] == 1.0 and s["max"] == 3.0 and s["n"] == 3
    assert bench.stats([])["median"] is None
    assert np.isclose(bench.stats([1.0, 2.0, 3.0, 4.0])["iqr"], 1.5)


def test_images_are_checked_like_analyze_before_the_model_is_built(tmp_path, no_build, capsys):
    """An aspect ratio above the processor's 200 used to reach the processor (a raw traceback, exit 1)."""
    thin = tmp_path / "thin.png"
    Image.new("RGB", (2010, 10), (200, 10, 10)).save(thin)
    assert main(["bench", "--shape", "qwen3-vl-tiny", *FAST, str(thin)]) == 2
    err = capsys.readouterr().err
    assert f"{thin}: aspect ratio 201.0 of a 2010x10 image exceeds the processor's limit of 200" in err
    assert "Traceback" not in err
    assert main(["analyze", "--no-progress", "--json", str(thin)]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[0])["error"].startswith("aspect ratio 201.0 of a 2010x10")
    small = tmp_path / "small.png"
    Image.new("RGB", (200, 100)).save(small)
    assert main(["bench", "--shape", "qwen3-vl-tiny", *FAST, "--max-image-pixels", "19999", str(small)]) == 2
    assert "20000 pixels exceeds the limit of 19999" in capsys.readouterr().err


def test_request_pixels_are_the_image_routes(images, tmp_path):
    """The processor request is built from the image as the image route loads it: an RGBA file's
    alpha band is dropped (transformers' load_image), so the request's pixel_values select exactly
    what vlprune.select keeps on the file."""
    rgba = np.dstack([synthetic_image("qwen3-vl", 8, 10), np.full((256, 320), 40, np.uint8)])
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    cfg = bench.BenchConfig(images=[str(path)], shape="qwen3-vl-tiny", family="qwen3-vl", dtype="fp32")
    _, (req,) = bench.build_requests(cfg, "qwen3-vl")
    (grid,) = vlprune.BlockGrid.from_pixel_values(req.inputs["pixel_values"], req.inputs["image_grid_thw"], "qwen3-vl")
    assert np.array_equal(grid.image(), rgba[..., :3])
    assert vlprune.create_method("pixelprune")(grid).kept.tolist() == vlprune.select(path).kept.tolist()


def test_method_options_follow_the_api_rules(images, no_build):
    def prep(**kw):
        bench.prepare(bench.BenchConfig(images=images[:1], shape="qwen3-vl-tiny", family="qwen3-vl", dtype="fp32", **kw))

    with pytest.raises(OptionError, match="option retain does not apply to method pixelprune"):
        prep(options={"retain": 0.5})
    with pytest.raises(ValueError, match="option seed must be an integer in \\[0, inf\\]"):
        prep(methods=["random"], seed=-5)
    with pytest.raises(ValueError, match="option tau must be in \\[0, 1\\]"):
        prep(options={"tau": float("inf")})
    with pytest.raises(ValueError, match="option repeats must be an integer in \\[1, inf\\]"):
        prep(repeats=0)
    pipelines = bench.build_pipelines(bench.BenchConfig(images=[], methods=["pixelprune", "random", "full"], seed=7,
                                                        options={"tau": 0.05, "retain": 0.5}))
    (_, full), (_, p), (_, r) = pipelines
    (pm,), (rm,) = p.methods, r.methods
    assert full is None and (pm.tau, rm.reference.tau, rm.retain, rm.seed) == (0.05, 0.05, 0.5, 7)


# ---------------------------------------------------------------------------------------------- pipelines
def _keep(n: int, retain: float) -> int:
    """Tokens a budgeted method keeps: max(1, floor(retain * n + 0.5)) (docs/runtime.md, Budgets)."""
    return max(1, int(np.floor(retain * n + 0.5)))


def test_compositions_record_stages_llm_ms_attention_and_the_flops_of_what_ran(images, tmp_path, capsys):
    from vlprune import flops
    from vlprune.bench import random_model

    path, out = images[0], tmp_path / "c.json"
    rc = main(["bench", "--shape", "qwen3-vl-tiny", "--method", "fastv", "--method", "pixelprune+fastv",
               "--opt", "fastv.retain=0.25", "--attn", "eager", *FAST, "--json", str(out), path])
    assert rc == 0
    table = capsys.readouterr().out
    d = json.loads(out.read_text())
    by = {s["method"]: s for s in d["methods"]}
    assert list(by) == ["full", "fastv", "pixelprune+fastv"]
    assert by["pixelprune+fastv"]["pipeline"].startswith("pixelprune(") and "fastv(layer=None, retain=0.25" in table
    n, k = vlprune.select(path, "full").n_total, vlprune.select(path).n_kept
    want = {"full": {"raw": n}, "fastv": {"raw": n, "llm": _keep(n, 0.25)},
            "pixelprune+fastv": {"raw": n, "pre_vit": k, "llm": _keep(k, 0.25)}}
    plan = bench.prepare(bench.BenchConfig(images=[path], shape="qwen3-vl-tiny", family="qwen3-vl", dtype="fp32"))
    (req,) = plan.requests
    text = req.seq_len - req.image_tokens
    hand = {  # the prompt of what ran, written out: ViT blocks, tokens entering the LLM, the in-LLM prune
        "full": flops.Prompt([flops.ImageTokens(req.grid_thw)], text),
        "fastv": flops.Prompt([flops.ImageTokens(req.grid_thw)], text, flops.LLMPrune(2, _keep(n, 0.25), 1)),
        "pixelprune+fastv": flops.Prompt([flops.ImageTokens(req.grid_thw, kept=vlprune.select(path).kept)], text,
                                         flops.LLMPrune(2, _keep(k, 0.25), 1)),
    }
    model = random_model("qwen3-vl", plan.processor, "tiny")
    for m, (row,) in d["per_image"].items():
        stages = want[m]
        assert row["tokens_by_stage"] == stages and by[m]["tokens_by_stage"] == stages
        assert row["kept_tokens"] == list(stages.values())[-1] and row["image_tokens"] == n
        assert row["llm_tokens"] == text + stages.get("pre_vit", n)  # entering the LLM
        assert row["llm_tokens_final"] == text + row["kept_tokens"]  # from layer K on
        assert row["attn_implementation"] == by[m]["attn_implementation"] == "eager"
        est = flops.estimate(plan.config, hand[m], dtype="float32")
        assert row["flops_prefill"] == est.prefill.total and row["flops_llm_scoring"] == est.prefill.llm_scoring
        assert row["kv_bytes_analytic"] == est.kv.total_bytes == row["kv_bytes_measured"]
        if m == "full":
            assert row["llm_layer"] is None and row["llm_ms_share"] is None and row["flops_llm_scoring"] == 0
            continue
        assert row["llm_layer"] == by[m]["llm_layer"] == 2 and row["flops_llm_scoring"] > 0
        assert row["llm_ms"]["median"] > 0
        assert row["llm_ms_share"] == row["llm_ms"]["median"] / row["prefill_ms"]["median"]
        assert by[m]["llm_ms_share"] == by[m]["llm_ms"]["median"] / by[m]["prefill_ms"]["median"]
        # the runtime's own FLOPs input for the same request gives the same numbers
        with torch.inference_mode(), vlprune.apply(model, m, processor=plan.processor, fastv={"retain": 0.25}) as run:
            model(**req.inputs)
        (prompt,) = run.last.flops_prompts()
        assert flops.estimate(plan.config, prompt, dtype="float32").prefill.total == row["flops_prefill"]
        assert run.stats[0].tokens_by_stage == stages
    assert by["pixelprune+fastv"]["flops_prefill"] < by["fastv"]["flops_prefill"] < by["full"]["flops_prefill"]


@pytest.mark.parametrize("argv, msg", [
    (["--method", "fastv", "--opt", "fastv.retain=2"], "argument --opt: fastv: option retain must be in (0, 1], got 2"),
    (["--method", "fastv", "--opt", "fastv"], "argument --opt: 'fastv': expected NAME.OPTION=VALUE"),
    (["--method", "fastv", "--opt", "divprune.retain=0.5"],
     "argument --opt: divprune.*: method 'divprune' is not among the methods run (fastv)"),
    (["--method", "fastv", "--opt", "fastv.bogus=1"], "argument --opt: fastv: method 'fastv' has no option(s) bogus"),
    (["--method", "fastv", "--opt", "fastv.retain=0.3", "--opt", "fastv.retain=0.4"],
     "argument --opt: 'fastv.retain=0.4': fastv.retain is given twice"),
    (["--method", "pixelprune+random"], "argument --method: 'pixelprune+random': two methods of stage 'pre_vit'"),
    (["--method", "fastv", "--opt", "fastv.layer=4"], "argument --method: 'fastv': option layer=4 of method 'fastv' "
                                                      "must be in [1, 3]"),
    (["--method", "fastv", "--retain", "0.5"], "argument --retain: option retain applies to a pre-ViT method"),
    (["--tau", "0.1", "--opt", "pixelprune.tau=0.2"], "argument --opt: pixelprune.tau: also given as --tau"),
])
def test_method_and_option_errors_name_the_flag(argv, msg, images, no_build, capsys):
    assert main(["bench", "--shape", "qwen3-vl-tiny", *FAST, *argv, images[0]]) == 2
    err = capsys.readouterr().err
    assert msg in err and "usage:" in err, err


def test_opt_reaches_any_stage_and_the_named_flags_keep_their_routes():
    cfg = bench.BenchConfig(images=[], methods=["pixelprune+guipruner", "random+fastv", "divprune"], seed=3,
                            options={"tau": 0.05, "retain": 0.4},
                            method_options={"guipruner": {"preset": "II"}, "fastv": {"layer": 3}, "divprune": {"retain": 0.2}})
    (_, full), (_, pg), (_, rf), (_, dv) = bench.build_pipelines(cfg)
    assert full is None and [m.name for m in pg.methods] == ["tar", "pixelprune", "ssp"]
    assert pg.methods[0].lam == 0.2 and pg.methods[1].tau == 0.05  # preset II: lambda 0.2
    assert (rf.methods[0].retain, rf.methods[0].seed, rf.methods[0].reference.tau, rf.methods[1].layer) == (0.4, 3, 0.05, 3)
    assert rf.methods[1].retain == 0.5 and dv.methods[0].retain == 0.2  # --retain is for pre-ViT methods only


def test_time_budget_stops_after_the_first_pass_with_a_partial_result(images):
    res = bench.run_bench(bench.BenchConfig(images=images[:1], shape="qwen2-vl-tiny", family=None, dtype="fp32",
                                            warmup=0, repeats=3, decode_tokens=0, progress=False, budget_s=1e-9))
    assert res.partial and all(len(r.samples) == 1 for runs in res.runs.values() for r in runs)
    d = res.to_dict()
    assert d["partial"] is True and [s["prefill_ms"]["n"] for s in d["methods"]] == [1, 1]
    assert any("after 1 of 3 passes (1 of 3 timed)" in n for n in d["notes"])
    assert "PARTIAL" in bench.format_table(res)


def test_timing_helpers_and_fast_random_weights():
    lin = torch.nn.Linear(4, 4)
    timer = timing.Timer("cpu")
    assert not timer.cuda and timer.ms(1.0, 1.5) == 500.0
    with timing.VisionTimer(lin, timer) as vt:
        lin(torch.ones(1, 4))
        lin(torch.ones(1, 4))
        assert len(vt.spans) == 2 and vt.total_ms() >= 0
        vt.reset()
        assert vt.total_ms() == 0
    assert not lin._forward_hooks and not lin._forward_pre_hooks
    # in a fresh process: inside a long test process earlier tests' freed pages can be reused without the
    # resident size growing, so the reading depends on test order (the limit docs/benchmarks.md states)
    probe = ("import torch; from vlprune.bench import timing; peak = timing.PeakMemory('cpu'); peak.start(); "
             "x = torch.ones(64 * 2**20 // 4); print(peak.clear_refs, peak.stop())")  # 64 MiB, written
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    if out[0] == "True":  # the RSS high-water mark can be reset here: the growth is seen
        assert 60 <= float(out[1]) < 200
    config = bench.shape_config(get_family("qwen2-vl").tiny, None, None)
    model = bench.build_model(config, "float32", "cpu", 5, "sdpa")
    tile = torch.randn(1 << 20, generator=torch.Generator().manual_seed(5)) * 0.02
    w = model.model.language_model.layers[0].mlp.up_proj.weight.reshape(-1)
    assert torch.equal(w, tile[: w.numel()])
    assert torch.equal(model.model.language_model.norm.weight, torch.ones_like(model.model.language_model.norm.weight))

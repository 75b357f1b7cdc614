"""``benchmarks/gpu.py --dry-run``: the GPU benchmark's code path on CPU (tiny shapes, one image, one
pass); its JSON and Markdown table checked by value against what ``vlprune.apply`` reports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import vlprune
from vlprune.images import ImageOptions
from vlprune.bench import random_model
from vlprune.processor import build_processor, processor_inputs

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
MAX_PIXELS = 200_000  # keeps the dry run to seconds


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry(gpu, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu")
    report = gpu.main(["--dry-run", "--out", str(out), "--max-pixels", str(MAX_PIXELS)])
    return report, out


def test_dry_run_lists_every_cell_method_and_attention(gpu, dry):
    report, out = dry
    assert json.loads((out / "gpu.json").read_text()) == json.loads(json.dumps(report, default=float))
    assert report["dry_run"] is True and report["device"] == "cpu" and len(report["images"]) == 1
    assert report["methods"] == ["full", "pixelprune", "fastv", "pixelprune+fastv"]
    cells = {(c["shape"], c["attn"]): c for c in report["cells"]}
    assert list(cells) == [(s, a) for s in ("qwen3-vl-tiny", "qwen2-vl-tiny") for a in ("sdpa", "flash_attention_2")]
    table = (out / "gpu.md").read_text()
    for shape in ("qwen3-vl-tiny", "qwen2-vl-tiny"):
        flash = cells[(shape, "flash_attention_2")]
        assert flash["status"] == "unavailable" and "runs on CUDA GPUs only" in flash["reason"]
        sdpa = cells[(shape, "sdpa")]
        assert sdpa["status"] == "done" and Path(sdpa["json"]).is_file()
        assert [r["method"] for r in sdpa["methods"]] == report["methods"]
        assert {r["attn_implementation"] for r in sdpa["methods"]} == {"sdpa"}
        assert all(r["passes"] == 1 and r["ttft_ms"] > 0 for r in sdpa["methods"])
        full = sdpa["methods"][0]
        assert full["speedup"] == 1.0 and full["tokens_by_stage"] == {"raw": full["image_tokens"]}
        for r in sdpa["methods"]:
            stages = " → ".join(str(v) for v in r["tokens_by_stage"].values())
            assert f"| {shape} | sdpa | {r['method']} | {stages} | {r['retain']:.1%} | {r['ttft_ms']:.1f} " in table
        assert f"| {shape} | flash_attention_2 | unavailable: " in table
    assert "DRY RUN" in table and report["partial"] is False


@pytest.mark.parametrize("family, shape", [("qwen3-vl", "qwen3-vl-tiny"), ("qwen2-vl", "qwen2-vl-tiny")])
def test_dry_run_token_counts_are_what_apply_reports(dry, family, shape):
    report, _ = dry
    (image,) = report["images"]
    (cell,) = [c for c in report["cells"] if c["shape"] == shape and c["attn"] == "sdpa"]
    lo, hi = ImageOptions(max_pixels=MAX_PIXELS).bounds(family)
    proc = build_processor(family, min_pixels=lo, max_pixels=hi)
    inputs = processor_inputs(proc, image)
    model = random_model(family, proc, "tiny")
    n = int((inputs["input_ids"] == proc.image_token_id).sum())
    for row in cell["methods"][1:]:
        with torch.inference_mode(), vlprune.apply(model, row["method"], processor=proc) as run:
            model(**inputs)
        assert row["tokens_by_stage"] == run.stats[0].tokens_by_stage, row["method"]
        assert row["image_tokens"] == n and row["kept_tokens"] == run.stats[0].tokens_after
        assert row["llm_layer"] == (run.llm_layer if "fastv" in row["method"] else None)


def test_budget_out_skips_the_cells_and_marks_the_table_partial(gpu, tmp_path):
    report = gpu.main(["--dry-run", "--out", str(tmp_path), "--budget-s", "-1"])
    assert report["partial"] is True
    assert {c["status"] for c in report["cells"] if c["attn"] == "sdpa"} == {"skipped"}
    assert "PARTIAL" in (tmp_path / "gpu.md").read_text()

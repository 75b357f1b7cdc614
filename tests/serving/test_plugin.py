"""The plug-in without an engine: entry point, registration, the vLLM hook probe, refusals when the
engine is configured, and the serving benchmark's dry run (``--device cuda`` included)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: the serving suite runs in the venv that "
                                   "scripts/vllm-env makes")

from vlprune.serving import ServingError, probe, vllm_kwargs  # noqa: E402
from vlprune.serving.families import ARCHITECTURES  # noqa: E402


def test_entry_point_registers_lazily_idempotently_and_leaves_stock_alone():
    code = """
import sys
from importlib.metadata import entry_points
(ep,) = [e for e in entry_points(group="vllm.general_plugins") if e.name == "vlprune"]
assert ep.value == "vlprune.serving.plugin:register"
from vllm import ModelRegistry
from vllm.plugins import load_general_plugins
before = set(ModelRegistry.get_supported_archs())
load_general_plugins()
names = set(ModelRegistry.get_supported_archs()) - before
assert "vlprune.serving.vllm_models" not in sys.modules  # registered by name, nothing imported
assert ep.load()() == []  # a second call registers nothing
print(sorted(names))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names = json.loads(out.strip().splitlines()[-1].replace("'", '"'))
    assert set(names) == {a.name for a in ARCHITECTURES.values()}


def test_plugin_classes_subclass_the_stock_ones_without_changing_them():
    from vllm.multimodal import MULTIMODAL_REGISTRY  # noqa: F401

    models = importlib.import_module("vlprune.serving.vllm_models")
    for row in ARCHITECTURES.values():
        stock = getattr(importlib.import_module(f"vllm.model_executor.models.{row.module}"), row.stock)
        factory = stock._processor_factory
        ours = getattr(models, row.name)
        assert issubclass(ours, stock) and ours is not stock
        assert ours._processor_factory is not factory
        assert issubclass(ours._processor_factory.processor, factory.processor)
        assert stock._processor_factory is factory  # the stock registration is untouched
        assert "vlprune" not in factory.processor.__module__


def test_a_missing_vllm_hook_refuses_the_engine_naming_version_and_hook(monkeypatch):
    import vlprune.serving.vllm_models as models

    missing = ("vllm.model_executor.models.qwen2_vl", "Qwen2VLForConditionalGeneration.no_such_hook", ())
    monkeypatch.setattr(probe, "HOOKS", (*probe.HOOKS, missing))
    with pytest.raises(probe.VllmHookError) as exc:
        models.build("VlpruneQwen2VLForConditionalGeneration")
    msg = str(exc.value)
    assert probe.vllm_version() in msg and "Qwen2VLForConditionalGeneration.no_such_hook" in msg
    renamed = ("vllm.model_executor.models.qwen2_vl", "Qwen2VisionTransformer.forward", ("no_such_argument",))
    monkeypatch.setattr(probe, "HOOKS", (renamed,))
    with pytest.raises(probe.VllmHookError, match="no longer takes no_such_argument"):
        probe.check()


def test_every_hook_is_present_in_the_tested_release():
    probe.check()
    assert probe.tested()


def test_a_non_qwen_checkpoint_is_refused_before_an_engine_starts(tmp_path):
    from transformers import LlamaConfig
    from vllm import LLM

    LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                architectures=["LlamaForCausalLM"]).save_pretrained(tmp_path)
    with pytest.raises(Exception, match="cannot serve architecture 'LlamaForCausalLM'"):
        LLM(model=str(tmp_path), **vllm_kwargs("pixelprune"))


def test_later_stage_methods_and_bad_options_are_refused_before_any_engine():
    with pytest.raises(ServingError, match="cannot run inside vLLM"):
        vllm_kwargs("fastv")
    with pytest.raises(ValueError, match="tau must be in"):
        vllm_kwargs("pixelprune", tau=-1)


def test_serving_benchmark_dry_run_for_cuda(tmp_path):
    """The GPU run's code path up to the engine: checkpoints, requests, kept tokens and FLOPs."""
    spec = importlib.util.spec_from_file_location(
        "vllm_serve", Path(__file__).resolve().parents[2] / "benchmarks" / "vllm_serve.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--dry-run", "--device", "cuda", "--requests", "2", "--max-pixels", "200704",
                         "--shapes", "qwen2-vl-2b", "--out", str(tmp_path)])
    assert report["dtype"] == "bfloat16" and report["requests"] == 2
    (shape,) = report["shapes"]
    m = shape["methods"]
    assert set(m) == {label for label, _ in bench.METHODS}
    assert m["unpruned"]["kept"] == m["unpruned"]["visual_tokens"]
    assert m["pixelprune tau=0"]["kept"] < m["unpruned"]["kept"]
    assert m["random (PixelPrune's budget)"]["kept"] == m["pixelprune tau=0"]["kept"]
    assert m["pixelprune tau=0.05"]["kept"] <= m["pixelprune tau=0"]["kept"]
    assert m["pixelprune tau=0"]["flops"] < m["unpruned"]["flops"]
    assert json.loads((tmp_path / "vllm_serve.json").read_text())["dry_run"] is True
    assert "pixelprune tau=0" in (tmp_path / "vllm_serve.md").read_text()

"""The vLLM plug-in's parts that need no vLLM: the plan and its validation, the engine arguments, the
architecture override, the positions of a pruned prompt and the ``vlprune serve`` command line. The
engine itself is tested in tests/serving/ (vLLM's CPU build, ``scripts/vllm-env``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vlprune.options import OptionError
from vlprune.serving import KEY, ServingError, ServingPlan, VlpruneArchitecture, vllm_kwargs
from vlprune.serving.families import ARCHITECTURES, served
from vlprune.serving.launch import serve_argv
from vlprune.serving.positions import expand


def test_contract_names_and_entry_point():
    """The architecture names checks depend on, and the entry point in the project metadata."""
    import pathlib
    import tomllib

    names = {a.name for a in ARCHITECTURES.values()}
    assert {"VlpruneQwen2VLForConditionalGeneration", "VlpruneQwen2_5_VLForConditionalGeneration",
            "VlpruneQwen3VLForConditionalGeneration"} <= names
    assert all(a.target == f"vlprune.serving.vllm_models:{a.name}" for a in ARCHITECTURES.values())
    meta = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["vllm.general_plugins"] == {"vlprune": "vlprune.serving.plugin:register"}


def test_plugin_module_imports_bare_without_side_effects():
    """The entry point's module imports in a fresh interpreter without importing vLLM, torch or numba
    (they would load in every vLLM process before vLLM sets itself up) and registers nothing."""
    code = ("import sys, vlprune.serving.plugin as p; "
            "print(sorted(m for m in ('vllm', 'torch', 'numba', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_vllm_kwargs_carries_only_the_override_and_the_plan():
    kw = vllm_kwargs("pixelprune", tau=0.05, metric="mae")
    assert set(kw) == {"hf_overrides", "mm_processor_kwargs"}
    assert kw["mm_processor_kwargs"] == {KEY: {"method": "pixelprune", "pixelprune.metric": "mae", "pixelprune.tau": 0.05}}
    json.dumps(kw["mm_processor_kwargs"])  # travels as JSON (vllm serve --mm-processor-kwargs)
    assert isinstance(kw["hf_overrides"], VlpruneArchitecture)
    both = vllm_kwargs("tar+pixelprune", tar={"lam": 0.2}, pixelprune={"tau": 0.05},
                       mm_processor_kwargs={"max_pixels": 100000})
    assert both["mm_processor_kwargs"] == {"max_pixels": 100000, KEY: {"method": "tar+pixelprune", "tar.lam": 0.2,
                                                                       "pixelprune.tau": 0.05}}


@pytest.mark.parametrize("method", ["fastv", "ssp", "guipruner", "divprune", "pixelprune+fastv", "tar+divprune"])
def test_later_stage_methods_are_refused_with_the_reason(method):
    with pytest.raises(ServingError) as exc:
        vllm_kwargs(method)
    msg = str(exc.value)
    assert "cannot run inside vLLM" in msg and "pixelprune" in msg and "vlprune.apply" in msg


@pytest.mark.parametrize("method, options, error, match", [
    ("pixelprune", {"tau": 2.0}, OptionError, "tau must be in"),
    ("pixelprune", {"order": "zigzag"}, OptionError, "order must be one of"),
    ("random", {"retain": 0}, OptionError, "retain must be in"),
    ("pixelprune", {"seed": 3}, TypeError, "has no option"),
    ("tar+pixelprune", {"tar": {"lam": 1.5}}, OptionError, "lam must be in"),
    ("nosuch", {}, ValueError, "unknown method"),
    ("tar+pixelprune", {"lam": 0.2}, TypeError, "loose options need exactly one method"),
    ("pixelprune", {"after_block": 3}, ServingError, "inside the vision encoder"),
])
def test_bad_options_raise_before_any_engine(method, options, error, match):
    with pytest.raises(error, match=match):
        vllm_kwargs(method, **options)


def test_options_must_travel_as_json_scalars():
    from vlprune.methods.pixelprune import PixelPrune

    with pytest.raises(ServingError, match="must be numbers, strings"):
        vllm_kwargs("random", reference=PixelPrune(tau=0.1))


def test_payload_round_trip_and_request_overrides():
    plan = ServingPlan.create("tar+pixelprune", {"tar": {"lam": 0.1}, "pixelprune": {"tau": 0.02}})
    assert ServingPlan.from_payload(plan.payload()) == plan
    assert ServingPlan.from_payload({"method": "pixelprune", "pixelprune.tau": 0.1}).options == {"pixelprune": {"tau": 0.1}}
    with pytest.raises(ServingError, match="has no 'fastv'"):
        ServingPlan.from_payload({"method": "pixelprune", "fastv.retain": 0.5})
    with pytest.raises(ServingError, match="NAME.OPTION"):
        ServingPlan.from_payload({"method": "pixelprune", "tau": 0.1})
    with pytest.raises(ServingError, match="'method' name"):
        ServingPlan.from_payload({"pixelprune.tau": 0.1})


def test_architecture_override_swaps_qwen_and_refuses_others():
    from transformers import LlamaConfig, Qwen2VLConfig

    override = VlpruneArchitecture({"max_position_embeddings": 1234})
    cfg = override(Qwen2VLConfig(architectures=["Qwen2VLForConditionalGeneration"]))
    assert cfg.architectures == ["VlpruneQwen2VLForConditionalGeneration"] and cfg.max_position_embeddings == 1234
    with pytest.raises(ServingError, match="cannot serve architecture 'LlamaForCausalLM'.*Qwen2VLForConditionalGeneration"):
        override(LlamaConfig(architectures=["LlamaForCausalLM"]))
    empty = LlamaConfig()
    empty.architectures = None
    assert override(empty) is empty  # vLLM probes overrides on an empty config first
    assert served("VlpruneQwen3VLForConditionalGeneration").stock == "Qwen3VLForConditionalGeneration"


def test_expand_restores_pruned_placeholders_at_full_length():
    """Hand-made prompt: text 5 6, image A (2x3 grid, keep blocks 0, 4), text 7, image B untouched
    (2 tokens), text 8. The virtual prompt has A at full length; columns map each real token to it."""
    I = 99
    tokens = [5, 6, I, I, 7, I, I, 8]
    keep_a = np.array([1, 0, 0, 0, 1, 0], bool)
    exp = expand(tokens, [(2, 2, keep_a), (5, 2, None)], I)
    assert exp.tokens == [5, 6, I, I, I, I, I, I, 7, I, I, 8]
    assert exp.offsets == [2, 9]
    assert exp.columns.tolist() == [0, 1, 2, 6, 8, 9, 10, 11]
    assert exp.dropped == 4
    with pytest.raises(ValueError, match="placeholder 0 holds 3 tokens but its keep mask keeps 2"):
        expand([5, I, I, I, 6], [(1, 3, keep_a)], I)


def test_expand_then_gather_gives_unpruned_positions():
    """Positions from the stock rule on the virtual prompt, gathered, equal the rule the transformers
    runtime uses: kept tokens at their unpruned (t, h, w), text after an image at the unpruned next
    position (here a toy 1-D rule: position = index in the virtual prompt)."""
    I = 99
    keep = np.array([0, 1, 1, 0], bool)
    exp = expand([1, I, I, 2, 3], [(1, 2, keep)], I)
    virtual_positions = np.arange(len(exp.tokens))
    assert virtual_positions[exp.columns].tolist() == [0, 2, 3, 5, 6]
    # next position after the prompt: unpruned length (7) = real length (5) + dropped (2)
    assert len(exp.tokens) == 5 + exp.dropped


def test_serve_command_line_merges_the_users_flags():
    plan = ServingPlan.create("pixelprune", {"tau": 0.05})
    argv = serve_argv("some/model", plan, "Qwen3VLForConditionalGeneration",
                      ["--port", "8001", "--mm-processor-kwargs", '{"max_pixels": 200000}',
                       "--hf-overrides={\"rope_theta\": 1.0}"], python="py")
    assert argv[:5] == ["py", "-m", "vllm.entrypoints.cli.main", "serve", "some/model"]
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert json.loads(flags["--hf-overrides"]) == {"rope_theta": 1.0,
                                                   "architectures": ["VlpruneQwen3VLForConditionalGeneration"]}
    assert json.loads(flags["--mm-processor-kwargs"]) == {"max_pixels": 200000,
                                                          KEY: {"method": "pixelprune", "pixelprune.tau": 0.05}}
    assert flags["--port"] == "8001"
    direct = serve_argv("some/model", plan, "Qwen3VLForConditionalGeneration", [], python="py", cli=False)
    assert direct[:5] == ["py", "-m", "vllm.entrypoints.openai.api_server", "--model", "some/model"]
    with pytest.raises(ServingError, match="cannot serve architecture 'LlamaForCausalLM'"):
        serve_argv("m", plan, "LlamaForCausalLM", [])
    with pytest.raises(ServingError, match="not JSON"):
        serve_argv("m", plan, "Qwen2VLForConditionalGeneration", ["--hf-overrides", "{nope"])


def test_serve_cli_refuses_before_starting(tmp_path, capsys):
    from vlprune.cli import main

    assert main(["serve", str(tmp_path), "--method", "fastv"]) == 2
    assert "cannot run inside vLLM" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--opt", "pixelprune.tau=9"]) == 2
    assert "tau must be in" in capsys.readouterr().err


def test_only_the_serve_command_passes_flags_after_the_separator(tmp_path, capsys, monkeypatch):
    from vlprune.cli import main, split_passthrough

    assert split_passthrough(["serve", "m", "--opt", "pixelprune.tau=0", "--", "--port", "1"]) == (
        ["serve", "m", "--opt", "pixelprune.tau=0"], ["--port", "1"])
    assert split_passthrough(["serve", "m"]) == (["serve", "m"], None)
    # another command whose input is named "serve": no vLLM flags; it reports its missing inputs
    assert split_passthrough(["analyze", "serve", "--", "x.png"]) == (["analyze", "serve", "--", "x.png"], None)
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "serve", "--", "x.png"]) == 1
    err = capsys.readouterr().err
    assert "serve" in err and "x.png" in err

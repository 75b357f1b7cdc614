"""Serving vlprune's pre-ViT methods inside vLLM (a general plug-in; ``docs/serving.md``).

    import vllm, vlprune.serving
    llm = vllm.LLM("Qwen/Qwen3-VL-2B-Instruct", **vlprune.serving.vllm_kwargs("pixelprune", tau=0.05))

:func:`vllm_kwargs` returns the plug-in's own engine arguments only: ``hf_overrides`` selecting the
plug-in's architecture for the checkpoint's Qwen-VL family, and ``mm_processor_kwargs`` carrying the
validated pruning plan. The plug-in (entry point ``vllm.general_plugins`` -> ``vlprune``) registers the
architectures in every vLLM process; ``vlprune serve`` starts vLLM's OpenAI-compatible server with them.
Importing this package does not import vLLM.
"""

from __future__ import annotations

from vlprune.serving.families import ARCHITECTURES, VlpruneArchitecture
from vlprune.serving.plan import KEY, ServingError, ServingPlan, supported_methods


def vllm_kwargs(method: str = "pixelprune", *, mm_processor_kwargs: dict | None = None, hf_overrides=None,
                **options) -> dict:
    """Engine arguments for ``vllm.LLM(model, **kw)`` / ``AsyncEngineArgs(model, **kw)``.

    method: a pre-ViT method (``pixelprune``, ``random``, ``uniform``, ``conncomp``, ``resize``, ``full``),
    ``tar``, or ``tar+<pre-ViT method>``; options: ``option=value`` for a single method or
    ``name={option: value}`` per method, validated as :func:`vlprune.create_method` validates them (a bad
    one raises here, before any engine starts). ``mm_processor_kwargs`` / ``hf_overrides``: your own
    values of those two engine arguments, merged in (the plug-in's override applies after yours).
    """
    plan = ServingPlan.create(method, options)
    if mm_processor_kwargs is not None and not isinstance(mm_processor_kwargs, dict):
        raise TypeError(f"mm_processor_kwargs must be a dict, got {type(mm_processor_kwargs).__name__}")
    if KEY in (mm_processor_kwargs or {}):
        raise ServingError(f"mm_processor_kwargs already holds {KEY!r}: pass the method and options to vllm_kwargs")
    return {
        "hf_overrides": VlpruneArchitecture(hf_overrides),
        "mm_processor_kwargs": {**(mm_processor_kwargs or {}), KEY: plan.payload()},
    }


def register() -> list[str]:
    """Register the plug-in's architectures with vLLM (what the entry point calls)."""
    from vlprune.serving.plugin import register as _register

    return _register()


__all__ = ["ARCHITECTURES", "KEY", "ServingError", "ServingPlan", "VlpruneArchitecture", "register",
           "supported_methods", "vllm_kwargs"]

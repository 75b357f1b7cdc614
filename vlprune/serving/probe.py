"""The vLLM entry points the plug-in relies on, checked before an engine starts.

If the installed vLLM renamed or removed one, :func:`check` raises :class:`VllmHookError` naming the
vLLM version and the hook, so the engine refuses to start instead of serving unpruned or failing
inside a request. ``TESTED`` is the vLLM release the test suite runs against.
"""

from __future__ import annotations

import importlib

from vlprune import compat

#: the vLLM releases the plug-in is tested on (major, minor)
TESTED = ((0, 32),)

#: (module, dotted attribute) pairs, with the keyword arguments a callable must accept
HOOKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("vllm.model_executor.models", "ModelRegistry.register_model", ()),
    ("vllm.multimodal", "MULTIMODAL_REGISTRY.register_processor", ("info", "dummy_inputs")),
    ("vllm.multimodal.processing.processor", "BaseMultiModalProcessor.apply", ("inputs", "timing_ctx")),
    ("vllm.multimodal.processing.processor", "BaseMultiModalProcessor.get_dummy_mm_inputs", ()),
    ("vllm.multimodal.processing.processor", "BaseMultiModalProcessor._get_mm_hashes", ("inputs",)),
    ("vllm.multimodal.processing.processor", "BaseMultiModalProcessor._get_mm_fields_config",
     ("hf_inputs", "hf_processor_mm_kwargs")),
    ("vllm.multimodal.processing.processor", "BaseMultiModalProcessor._get_prompt_updates",
     ("mm_items", "hf_processor_mm_kwargs", "out_mm_kwargs")),
    ("vllm.multimodal.processing.context", "InputProcessingContext.call_hf_processor", ("hf_processor", "data", "kwargs")),
    ("vllm.multimodal.processing.context", "InputProcessingContext.get_merged_mm_kwargs", ("kwargs",)),
    ("vllm.multimodal.processing", "PromptReplacement", ("modality", "target", "replacement")),
    ("vllm.multimodal.inputs", "MultiModalFieldConfig.flat_from_sizes", ("modality", "size_per_item", "keep_on_cpu")),
    ("vllm.multimodal.inputs", "PlaceholderRange", ("offset", "length")),
    ("vllm.multimodal.hasher", "MultiModalHasher.hash_kwargs", ()),
    ("vllm.multimodal.parse", "ImageProcessorItems", ()),
    ("vllm.multimodal.parse", "MultiModalDataItems", ()),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VLProcessingInfo._get_vision_size", ("mm_kwargs", "default_size")),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VLProcessingInfo._merge_and_resolve_mm_processor_kwargs",
     ("mm_kwargs",)),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VLForConditionalGeneration.embed_multimodal", ()),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VLForConditionalGeneration._process_image_input", ("image_input",)),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VLForConditionalGeneration.get_mrope_input_positions",
     ("input_tokens", "mm_features")),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VLForConditionalGeneration.get_encoder_cudagraph_config", ()),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VisionTransformer.forward", ("encoder_metadata",)),
    ("vllm.model_executor.models.qwen2_vl", "Qwen2VisionTransformer.prepare_encoder_metadata", ()),
    ("vllm.model_executor.models.qwen2_5_vl", "Qwen2_5_VisionTransformer.forward", ("encoder_metadata",)),
    ("vllm.model_executor.models.qwen2_5_vl", "Qwen2_5_VisionTransformer.get_window_index_thw", ()),
    ("vllm.model_executor.models.qwen2_5_vl", "Qwen2_5_VisionTransformer.rotary_pos_emb_thw", ()),
    ("vllm.model_executor.models.qwen3_vl", "Qwen3_VisionTransformer.forward", ("encoder_metadata",)),
    ("vllm.model_executor.models.qwen3_vl", "Qwen3_VisionTransformer.prepare_encoder_metadata", ()),
)


class VllmHookError(RuntimeError):
    """The installed vLLM lacks an entry point the plug-in relies on."""


def vllm_version() -> str:
    import vllm

    return getattr(vllm, "__version__", "unknown")


def _resolve(module: str, path: str):
    obj = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def check(hooks=None) -> None:
    """Raise :class:`VllmHookError` for the first missing hook (or keyword it must accept); ``hooks``
    defaults to :data:`HOOKS`."""
    for module, path, kwargs in HOOKS if hooks is None else hooks:
        try:
            obj = _resolve(module, path)
        except (ImportError, AttributeError) as exc:
            raise VllmHookError(f"vLLM {vllm_version()} has no {module}.{path}, which the vlprune plug-in relies on "
                                f"(tested on vLLM {', '.join('.'.join(map(str, v)) for v in TESTED)}); refusing "
                                f"to start the engine") from exc
        if kwargs:
            missing = [k for k in kwargs if k not in compat.params(obj)]
            if missing:
                raise VllmHookError(f"vLLM {vllm_version()}: {module}.{path} no longer takes {', '.join(missing)}, "
                                    f"which the vlprune plug-in relies on; refusing to start the engine")


def tested() -> bool:
    """Whether the installed vLLM is a tested release."""
    parts = vllm_version().split(".")
    try:
        return (int(parts[0]), int(parts[1])) in TESTED
    except (ValueError, IndexError):
        return False

"""``vlprune bench``: measured latency, memory and KV cache of a real-size random-weight model, next to
the analytic FLOPs of :mod:`vlprune.flops`, for the unpruned model and each requested pipeline (any
registered method or composition, e.g. ``pixelprune+fastv``).

What is measured, per image (each image is one batch-1 request built by the real offline processor,
:func:`vlprune.processor.build_processor`), per method, per repeat:

* ``vit_ms``: the model's vision tower call (:class:`~vlprune.bench.timing.VisionTimer` on
  ``model.model.visual``, summed over its calls in the prefill: the model calls it (full) or
  :func:`vlprune.apply` does before the LLM (pruned));
* ``prefill_ms`` (= TTFT): one ``model(**inputs, use_cache=True, logits_to_keep=1)`` producing the first
  token, including selection, the ViT, the LLM (with any in-LLM pruning) and the arg-max;
* ``plan_ms`` / ``post_ms`` / ``llm_ms``: the runtime's timers of the call (``CallStats``): selection and
  bookkeeping before the ViT, post-ViT selection + sequence building, in-LLM scoring + selection;
* ``decode_tok_s``: ``decode_tokens`` greedy steps with the KV cache after that prefill;
* ``peak_mem_mb``: :class:`~vlprune.bench.timing.PeakMemory` around the prefill;
* ``kv_bytes``: the tensors held by the cache object after prefill, and the analytic value.

Token counts per stage and the analytic FLOPs / KV come from what ran (``CallStats.tokens_by_stage``,
``CallStats.flops_prompts()`` fed to :func:`vlprune.flops.estimate`). Timing: CUDA events on GPU; on CPU
``time.perf_counter`` with ``torch.set_num_threads`` fixed. Weights are random (no download); the
architecture is the named real-size shape of :mod:`vlprune.shapes` unless ``layers`` /
``vision_layers`` cut its depth, which every output labels. Bad input (unknown family / shape / method,
an option value that is not allowed, a device, dtype or attention implementation that cannot run, a
request that would not fit in memory, an image that cannot be read or that the processor refuses,
checked as ``analyze`` checks it) raises :class:`BenchError`, ``OptionError`` or ``FlagError`` before the
model is built.
"""

from vlprune.bench.config import (
    ATTN,
    DTYPES,
    ONEDNN_CACHE_VAR,
    BenchConfig,
    BenchError,
    build_pipelines,
    configure_onednn_cache,
    register_shape,
    resolve_shape,
    shape_config,
)
from vlprune.bench.model import build_model, fill_random, random_model
from vlprune.bench.report import BenchResult, ImageRun, Sample, format_table, save_plot, stats, write_json
from vlprune.bench.requests import (
    MemoryEstimate,
    Request,
    build_requests,
    check_device,
    estimate_memory,
    flash_attention_status,
)
from vlprune.bench.run import Plan, prepare, run_bench
from vlprune.bench.timing import machine_info


__all__ = [
    "ATTN", "DTYPES", "ONEDNN_CACHE_VAR", "BenchConfig", "BenchError", "BenchResult", "ImageRun", "MemoryEstimate",
    "Plan", "Request", "Sample", "build_model", "build_pipelines", "build_requests", "check_device",
    "configure_onednn_cache", "estimate_memory", "fill_random", "random_model", "flash_attention_status", "format_table", "machine_info",
    "prepare", "register_shape", "resolve_shape", "run_bench", "save_plot", "shape_config", "stats", "write_json",
]

"""Analytic FLOPs and KV-cache model for Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen3.5.

Counts every matmul-class op the Hugging Face implementation runs (``nn.Linear``, the patch-embedding
``Conv3d``, the depthwise ``Conv1d`` of Qwen3.5, attention ``QK^T`` and ``AV``, the gated-delta-rule
matmuls and triangular solves), one multiply-add = 2 FLOPs (``torch.utils.flop_counter`` convention;
PixelPrune Appendix E, Eq. 3-4, uses the same). Elementwise work (norms, activations, RoPE, softmax,
biases, residuals, DeepStack additions, Qwen3-VL's position-embedding interpolation) is left out; its
size is stated in ``docs/flops.md``. Every formula and decision is written down there.

Pruning points (PixelPrune §3.2, GUIPruner TAR/SSP):

* pre-ViT: :class:`ImageTokens` ``kept`` (a count or the kept block indices); the ViT sees
  ``kept * merge**2`` patches, attention runs per image over kept patches only, Qwen2.5-VL windows are
  the full-grid windows restricted to kept blocks.
* resized history (TAR): give each frame its own (resized) ``grid_thw``.
* inside the LLM (SSP, FastV): :class:`LLMPrune` -- layers ``>= layer`` hold ``kept_visual`` visual tokens.

Modules: ``inputs`` (what enters), ``shapes`` (architectures from configs), ``count`` (the counting),
``results``. The family is found from ``config.model_type`` in :mod:`vlprune.families` (dense and MoE model types);
its ``flops_vision`` names the vision-tower layout (:data:`VISION_READERS`).
"""

from __future__ import annotations

from vlprune.flops.count import decode_flops, estimate, kv_cache_bytes, prefill_flops
from vlprune.flops.inputs import ImageTokens, LLMPrune, Prompt, image_tokens_for_size
from vlprune.flops.results import Estimate, FlopsBreakdown, KVCache
from vlprune.flops.shapes import DTYPE_BYTES, VISION_READERS, TextShape, VisionShape, text_shape, vision_shape

__all__ = [
    "DTYPE_BYTES",
    "Estimate",
    "FlopsBreakdown",
    "ImageTokens",
    "KVCache",
    "LLMPrune",
    "Prompt",
    "TextShape",
    "VISION_READERS",
    "VisionShape",
    "decode_flops",
    "estimate",
    "image_tokens_for_size",
    "kv_cache_bytes",
    "prefill_flops",
    "text_shape",
    "vision_shape",
]

"""Architecture shapes read from a HF config; the family (dense or MoE model type) comes from
:mod:`vlprune.families`, its ``flops_vision`` names the vision-tower layout."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "float8": 1, "fp8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "int8": 1,
}  # fmt: skip


@dataclass(frozen=True)
class VisionShape:
    """What the FLOPs of one vision tower depend on (``d`` = width, ``f`` = MLP width)."""

    depth: int
    dim: int
    heads: int
    mlp_dim: int
    mlp_mats: int  # 2 = fc1/fc2, 3 = SwiGLU gate/up/down (Qwen2.5-VL)
    patch: int
    temporal_patch: int
    in_channels: int
    merge: int
    out_dim: int
    deepstack: int = 0  # extra mergers (Qwen3-VL DeepStack)
    window_blocks: int | None = None  # Qwen2.5-VL: window side in merged blocks
    full_layers: frozenset[int] = frozenset()  # Qwen2.5-VL: layers with full (not windowed) attention


@dataclass(frozen=True)
class TextShape:
    """What the FLOPs of one decoder depend on."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp_dim: int
    vocab: int
    layer_types: tuple[str, ...]  # "full_attention" | "sliding_attention" | "linear_attention"
    q_gate: int = 1  # 2 when q_proj also emits an output gate (Qwen3.5)
    sliding_window: int | None = None
    lin_k_heads: int = 0
    lin_v_heads: int = 0
    lin_k_dim: int = 0
    lin_v_dim: int = 0
    conv_kernel: int = 0
    chunk: int = 64  # chunk length of the chunked gated delta rule (HF torch path and FLA)
    moe_layers: frozenset[int] = frozenset()  # layers whose MLP is a routed mixture of experts
    experts: int = 0
    top_k: int = 0
    moe_mlp: int = 0  # intermediate size of one expert
    shared_mlp: int = 0  # intermediate size of the always-on shared expert (Qwen3.5-MoE), 0 if none

    @property
    def lin_conv_dim(self) -> int:
        return 2 * self.lin_k_heads * self.lin_k_dim + self.lin_v_heads * self.lin_v_dim


def _vision_qwen2(v) -> VisionShape:
    return VisionShape(
        v.depth, v.embed_dim, v.num_heads, int(v.embed_dim * v.mlp_ratio), 2,
        v.patch_size, v.temporal_patch_size, v.in_channels, v.spatial_merge_size, v.hidden_size,
    )  # fmt: skip


def _vision_qwen2_5(v) -> VisionShape:
    return VisionShape(
        v.depth, v.hidden_size, v.num_heads, v.intermediate_size, 3,
        v.patch_size, v.temporal_patch_size, v.in_channels, v.spatial_merge_size, v.out_hidden_size,
        window_blocks=v.window_size // v.spatial_merge_size // v.patch_size,
        full_layers=frozenset(v.fullatt_block_indexes),
    )  # fmt: skip


def _vision_qwen3(v) -> VisionShape:
    return VisionShape(
        v.depth, v.hidden_size, v.num_heads, v.intermediate_size, 2,
        v.patch_size, v.temporal_patch_size, v.in_channels, v.spatial_merge_size, v.out_hidden_size,
        deepstack=len(getattr(v, "deepstack_visual_indexes", ()) or ()),
    )  # fmt: skip


def _moe_fields(t) -> dict:
    """MoE text configs (Qwen3-VL-MoE, Qwen3.5-MoE): which layers route, experts, top-k, expert widths."""
    experts = int(getattr(t, "num_experts", 0) or 0)
    if not experts:
        return {}
    only = set(getattr(t, "mlp_only_layers", None) or ())
    step = int(getattr(t, "decoder_sparse_step", 1) or 1)
    layers = frozenset(i for i in range(t.num_hidden_layers) if i not in only and (i + 1) % step == 0)
    return dict(moe_layers=layers, experts=experts, top_k=int(t.num_experts_per_tok), moe_mlp=int(t.moe_intermediate_size),
                shared_mlp=int(getattr(t, "shared_expert_intermediate_size", 0) or 0))


def _text(t, q_gate: int) -> TextShape:
    layer_types = tuple(getattr(t, "layer_types", None) or ("full_attention",) * t.num_hidden_layers)
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    extra = _moe_fields(t)
    if "linear_attention" in layer_types:
        extra.update(lin_k_heads=t.linear_num_key_heads, lin_v_heads=t.linear_num_value_heads,
                     lin_k_dim=t.linear_key_head_dim, lin_v_dim=t.linear_value_head_dim,
                     conv_kernel=t.linear_conv_kernel_dim)  # fmt: skip
    return TextShape(
        t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads, head_dim,
        getattr(t, "intermediate_size", 0) or 0, t.vocab_size, layer_types, q_gate=q_gate,
        sliding_window=getattr(t, "sliding_window", None), **extra,
    )  # fmt: skip


#: vision-tower layouts, named by ``FamilySpec.flops_vision``
VISION_READERS: dict[str, Callable[[Any], VisionShape]] = {
    "qwen2": _vision_qwen2,
    "qwen2_5": _vision_qwen2_5,
    "qwen3": _vision_qwen3,
}


def _family(config):
    from vlprune.families import get_family

    model_type = getattr(config, "model_type", None)
    try:
        return get_family(model_type)
    except ValueError as exc:
        raise ValueError(f"unknown config.model_type {model_type!r} for FLOPs: {exc}") from None


def vision_shape(config) -> VisionShape:
    """The :class:`VisionShape` of a HF VLM config (its family from ``config.model_type``)."""
    spec = _family(config)
    shape = VISION_READERS[spec.flops_vision](config.vision_config)
    return shape if spec.deepstack else dataclasses.replace(shape, deepstack=0)


def text_shape(config) -> TextShape:
    """The :class:`TextShape` of a HF VLM config (its family from ``config.model_type``)."""
    shape = _text(config.text_config, 2 if _family(config).query_gate else 1)
    if len(shape.layer_types) != shape.layers:
        raise ValueError(f"config.text_config.layer_types has {len(shape.layer_types)} entries for {shape.layers} layers")
    unknown = set(shape.layer_types) - {"full_attention", "sliding_attention", "linear_attention"}
    if unknown:
        raise ValueError(f"config.text_config.layer_types has unknown layer type(s) {sorted(unknown)}")
    return shape

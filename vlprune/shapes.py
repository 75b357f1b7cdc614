"""Named real-size architectures (config kwargs only, no weights) for FLOPs checks and ``vlprune bench``.

Numbers are the architecture fields of the released ``config.json`` files (written from the published
configs; no download). Only fields that change compute or the cache are listed; the rest take the
transformers defaults. ``build_config("qwen3-vl-2b")`` gives a HF config to build the model from
(``from_config`` on the meta device, or on CPU with random weights).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

__all__ = ["DEFAULT_SHAPE", "SHAPES", "Shape", "build_config", "get_shape", "list_shapes", "shape_config"]


@dataclass(frozen=True)
class Shape:
    """One named architecture: ``model_type`` plus vision/text/top-level config kwargs."""

    name: str
    model_type: str
    vision: dict
    text: dict
    top: dict = field(default_factory=dict)
    checkpoint: str = ""

    @property
    def family(self) -> str:
        from vlprune.families import get_family

        return get_family(self.model_type).name


def _qwen2_vl_vision(out: int) -> dict:
    return dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, in_channels=3, hidden_size=out,
                patch_size=14, spatial_merge_size=2, temporal_patch_size=2)  # fmt: skip


def _qwen2_5_vl_vision(out: int) -> dict:
    return dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=out,
                hidden_act="silu", patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, in_channels=3)  # fmt: skip


def _qwen3_vl_vision(depth: int, dim: int, mlp: int, out: int, deepstack: list[int]) -> dict:
    return dict(depth=depth, hidden_size=dim, intermediate_size=mlp, num_heads=16, out_hidden_size=out,
                hidden_act="gelu_pytorch_tanh", patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                num_position_embeddings=2304, deepstack_visual_indexes=deepstack, in_channels=3)  # fmt: skip


def _text(hidden: int, mlp: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, **extra) -> dict:
    return dict(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tie, **extra)  # fmt: skip


_MROPE2 = {"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0}
_MROPE3 = {"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True, "rope_theta": 5000000.0}
_MROPE35 = {"rope_type": "default", "mrope_section": [11, 11, 10], "mrope_interleaved": True,
            "rope_theta": 10000000.0, "partial_rotary_factor": 0.25}  # fmt: skip


def _qwen3_5_vision(depth: int, dim: int, mlp: int, heads: int, out: int) -> dict:
    return dict(depth=depth, hidden_size=dim, intermediate_size=mlp, num_heads=heads, out_hidden_size=out,
                hidden_act="gelu_pytorch_tanh", patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                num_position_embeddings=2304, in_channels=3)  # fmt: skip


def _qwen3_5_text(hidden: int, mlp: int) -> dict:
    """24 layers, Gated-DeltaNet linear attention with full attention every 4th layer."""
    return _text(hidden, mlp, 24, 8, 2, 248320, True, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=16,
                 linear_key_head_dim=128, linear_value_head_dim=128, linear_conv_kernel_dim=4,
                 layer_types=(["linear_attention"] * 3 + ["full_attention"]) * 6, rope_parameters=_MROPE35)  # fmt: skip


def _shape(name, model_type, vision, text, checkpoint) -> Shape:
    return Shape(name, model_type, vision, text, {"tie_word_embeddings": text["tie_word_embeddings"]}, checkpoint)


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        _shape("qwen2-vl-2b", "qwen2_vl", _qwen2_vl_vision(1536),
               _text(1536, 8960, 28, 12, 2, 151936, True, rope_parameters=_MROPE2), "Qwen/Qwen2-VL-2B-Instruct"),
        _shape("qwen2-vl-7b", "qwen2_vl", _qwen2_vl_vision(3584),
               _text(3584, 18944, 28, 28, 4, 152064, False, rope_parameters=_MROPE2), "Qwen/Qwen2-VL-7B-Instruct"),
        _shape("qwen2.5-vl-3b", "qwen2_5_vl", _qwen2_5_vl_vision(2048),
               _text(2048, 11008, 36, 16, 2, 151936, True, rope_parameters=_MROPE2), "Qwen/Qwen2.5-VL-3B-Instruct"),
        _shape("qwen2.5-vl-7b", "qwen2_5_vl", _qwen2_5_vl_vision(3584),
               _text(3584, 18944, 28, 28, 4, 152064, False, rope_parameters=_MROPE2), "Qwen/Qwen2.5-VL-7B-Instruct"),
        _shape("qwen3-vl-2b", "qwen3_vl", _qwen3_vl_vision(24, 1024, 4096, 2048, [5, 11, 17]),
               _text(2048, 6144, 28, 16, 8, 151936, True, head_dim=128, rope_parameters=_MROPE3),
               "Qwen/Qwen3-VL-2B-Instruct"),
        _shape("qwen3-vl-4b", "qwen3_vl", _qwen3_vl_vision(24, 1024, 4096, 2560, [5, 11, 17]),
               _text(2560, 9728, 36, 32, 8, 151936, True, head_dim=128, rope_parameters=_MROPE3),
               "Qwen/Qwen3-VL-4B-Instruct"),
        _shape("qwen3-vl-8b", "qwen3_vl", _qwen3_vl_vision(27, 1152, 4304, 4096, [8, 16, 24]),
               _text(4096, 12288, 36, 32, 8, 151936, False, head_dim=128, rope_parameters=_MROPE3),
               "Qwen/Qwen3-VL-8B-Instruct"),
        _shape("qwen3.5-0.8b", "qwen3_5", _qwen3_5_vision(12, 768, 3072, 12, 1024), _qwen3_5_text(1024, 3584),
               "Qwen/Qwen3.5-0.8B"),
        # Qwen3.5 small dense shape as used by the demo; approximate (not checked against a release config).
        _shape("qwen3.5-2b", "qwen3_5", _qwen3_5_vision(24, 1024, 4096, 16, 2048), _qwen3_5_text(2048, 6144), ""),
    )  # fmt: skip
}

#: The real shape each family's demo and ``shape="real"`` build.
DEFAULT_SHAPE = {"qwen2-vl": "qwen2-vl-2b", "qwen2.5-vl": "qwen2.5-vl-3b", "qwen3-vl": "qwen3-vl-2b",
                 "qwen3.5": "qwen3.5-2b"}


def list_shapes() -> list[str]:
    return sorted(SHAPES)


def get_shape(name: str) -> Shape:
    """Look up a named shape; unknown names raise a ``ValueError`` listing the known ones."""
    shape = SHAPES.get(name)
    if shape is None:
        raise ValueError(f"unknown shape {name!r}; expected one of: {', '.join(list_shapes())}")
    return shape


def shape_config(shape: Shape, layers: int | None = None, vision_layers: int | None = None, **top_overrides):
    """The HF config (``Qwen2VLConfig``, ``Qwen3VLConfig``, ...) of ``shape``; no weights.

    ``layers`` / ``vision_layers`` cut the LLM / ViT depth (widths unchanged): Qwen3.5 keeps its first
    ``layers`` layer types with at least one full-attention layer, and Qwen2.5-VL full-attention /
    Qwen3-VL DeepStack indexes past the cut are dropped (the last layer takes over if none is left).
    """
    from transformers import CONFIG_MAPPING

    text, vision = copy.deepcopy(shape.text), copy.deepcopy(shape.vision)
    if layers is not None:
        if not 1 <= layers <= text["num_hidden_layers"]:
            raise ValueError(f"layers={layers}: shape {shape.name} has 1..{text['num_hidden_layers']} LLM layers")
        text["num_hidden_layers"] = layers
        if "layer_types" in text:
            lt = list(text["layer_types"])[:layers]
            if "full_attention" not in lt:
                lt[-1] = "full_attention"
            text["layer_types"] = lt
    if vision_layers is not None:
        if not 1 <= vision_layers <= vision["depth"]:
            raise ValueError(f"vision_layers={vision_layers}: shape {shape.name} has 1..{vision['depth']} ViT layers")
        vision["depth"] = vision_layers
        for key in ("fullatt_block_indexes", "deepstack_visual_indexes"):
            if key in vision:
                vision[key] = [i for i in vision[key] if i < vision_layers] or [vision_layers - 1]
    kwargs = dict(copy.deepcopy(shape.top), vision_config=vision, text_config=text)
    kwargs.update(top_overrides)
    return CONFIG_MAPPING[shape.model_type](**kwargs)


def build_config(name: str, layers: int | None = None, vision_layers: int | None = None, **top_overrides):
    """:func:`shape_config` of the named shape."""
    return shape_config(get_shape(name), layers, vision_layers, **top_overrides)

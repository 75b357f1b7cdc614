"""Qwen3.5 (dense and MoE): Qwen3-VL's pixel settings and vision tower without DeepStack; hybrid LLM of
Gated-DeltaNet linear-attention layers with a full-attention layer every fourth (whose ``q_proj`` also
emits an output gate); grounding outputs on a 0-1000 grid."""

from vlprune.families import HALF, FamilySpec, Shape
from vlprune.families._config import TINY_TOP, mrope, text, tiny_text, top

_MROPE = mrope([11, 11, 10], 10000000.0, interleaved=True, partial_rotary_factor=0.25)


def _vision(depth: int, dim: int, mlp: int, heads: int, out: int) -> dict:
    return dict(depth=depth, hidden_size=dim, intermediate_size=mlp, num_heads=heads, out_hidden_size=out,
                hidden_act="gelu_pytorch_tanh", patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                num_position_embeddings=2304, in_channels=3)  # fmt: skip


def _text(hidden: int, mlp: int) -> dict:
    """24 layers, Gated-DeltaNet linear attention with full attention every 4th layer."""
    return text(hidden, mlp, 24, 8, 2, 248320, True, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=16,
                linear_key_head_dim=128, linear_value_head_dim=128, linear_conv_kernel_dim=4,
                layer_types=(["linear_attention"] * 3 + ["full_attention"]) * 6, rope_parameters=_MROPE)  # fmt: skip


def _shape(name: str, vision: dict, txt: dict, checkpoint: str) -> Shape:
    return Shape(name, "qwen3_5", vision, txt, top(txt), checkpoint)


SPEC = FamilySpec(
    "qwen3.5", 16, 2, 2, 65536, 16777216, HALF, HALF, ("qwen3_5", "qwen3_5_moe"),
    processor_class="Qwen3VLProcessor", system_prompt=False, coord_frame="knorm", query_gate=True,
    flops_vision="qwen3",
    shapes=(
        _shape("qwen3.5-0.8b", _vision(12, 768, 3072, 12, 1024), _text(1024, 3584), "Qwen/Qwen3.5-0.8B"),
        # small dense shape used by the demo; approximate (not checked against a release config)
        _shape("qwen3.5-2b", _vision(24, 1024, 4096, 16, 2048), _text(2048, 6144), ""),
    ),
    default_shape="qwen3.5-2b",
    # scoring layer K - 1 must be full attention: only K = 3 is valid; layers >= K mix linear and full
    tiny=Shape("qwen3.5-tiny", "qwen3_5",
               dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                    temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=64),
               tiny_text(head_dim=32, num_hidden_layers=5,
                         layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention",
                                      "full_attention"],
                         linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8,
                         linear_num_key_heads=2, linear_num_value_heads=2,
                         rope_parameters=mrope([4, 2, 2], 10000.0, interleaved=True, partial_rotary_factor=0.5)),
               TINY_TOP),
)  # fmt: skip

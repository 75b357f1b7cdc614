"""Qwen3-VL (dense and MoE): 16-px patches, 2x2 merge (32-px blocks), [-1, 1] normalisation, learned
position embedding interpolated per image, DeepStack features into the first decoder layers;
grounding outputs on a 0-1000 grid."""

from vlprune.families import HALF, FamilySpec, Shape
from vlprune.families._config import TINY_TOP, mrope, text, tiny_text, top


def _vision(depth: int, dim: int, mlp: int, out: int, deepstack: list[int]) -> dict:
    return dict(depth=depth, hidden_size=dim, intermediate_size=mlp, num_heads=16, out_hidden_size=out,
                hidden_act="gelu_pytorch_tanh", patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                num_position_embeddings=2304, deepstack_visual_indexes=deepstack, in_channels=3)  # fmt: skip


_MROPE = mrope([24, 20, 20], 5000000.0, interleaved=True)


def _shape(name: str, vision: dict, txt: dict, checkpoint: str) -> Shape:
    return Shape(name, "qwen3_vl", vision, txt, top(txt), checkpoint)


SPEC = FamilySpec(
    "qwen3-vl", 16, 2, 2, 65536, 16777216, HALF, HALF, ("qwen3_vl", "qwen3_vl_moe"),
    processor_class="Qwen3VLProcessor", system_prompt=False, coord_frame="knorm", deepstack=True,
    flops_vision="qwen3",
    shapes=(
        _shape("qwen3-vl-2b", _vision(24, 1024, 4096, 2048, [5, 11, 17]),
               text(2048, 6144, 28, 16, 8, 151936, True, head_dim=128, rope_parameters=_MROPE),
               "Qwen/Qwen3-VL-2B-Instruct"),
        _shape("qwen3-vl-4b", _vision(24, 1024, 4096, 2560, [5, 11, 17]),
               text(2560, 9728, 36, 32, 8, 151936, True, head_dim=128, rope_parameters=_MROPE),
               "Qwen/Qwen3-VL-4B-Instruct"),
        _shape("qwen3-vl-8b", _vision(27, 1152, 4304, 4096, [8, 16, 24]),
               text(4096, 12288, 36, 32, 8, 151936, False, head_dim=128, rope_parameters=_MROPE),
               "Qwen/Qwen3-VL-8B-Instruct"),
    ),
    default_shape="qwen3-vl-2b",
    # two DeepStack layers, so an in-LLM prune at K = 1 lands below the last one
    tiny=Shape("qwen3-vl-tiny", "qwen3_vl",
               dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                    temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=64,
                    deepstack_visual_indexes=[0, 1]),
               tiny_text(head_dim=16, rope_parameters=mrope([4, 2, 2], 10000.0, interleaved=True)), TINY_TOP),
)  # fmt: skip

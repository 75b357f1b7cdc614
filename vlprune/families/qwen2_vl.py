"""Qwen2-VL: 14-px patches, 2x2 merge (28-px blocks), CLIP normalisation, 2-D RoPE ViT with full
attention per image; grounding outputs on a 0-1000 grid."""

from vlprune.families import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, FamilySpec, Shape
from vlprune.families._config import TINY_TOP, mrope, text, tiny_text, top


def _vision(out: int) -> dict:
    return dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, in_channels=3, hidden_size=out,
                patch_size=14, spatial_merge_size=2, temporal_patch_size=2)  # fmt: skip


_MROPE = mrope([16, 24, 24], 1000000.0)


def _shape(name: str, vision: dict, txt: dict, checkpoint: str) -> Shape:
    return Shape(name, "qwen2_vl", vision, txt, top(txt), checkpoint)


SPEC = FamilySpec(
    "qwen2-vl", 14, 2, 2, 3136, 12845056, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ("qwen2_vl",),
    processor_class="Qwen2VLProcessor", system_prompt=True, coord_frame="knorm", flops_vision="qwen2",
    shapes=(
        _shape("qwen2-vl-2b", _vision(1536), text(1536, 8960, 28, 12, 2, 151936, True, rope_parameters=_MROPE),
               "Qwen/Qwen2-VL-2B-Instruct"),
        _shape("qwen2-vl-7b", _vision(3584), text(3584, 18944, 28, 28, 4, 152064, False, rope_parameters=_MROPE),
               "Qwen/Qwen2-VL-7B-Instruct"),
    ),
    default_shape="qwen2-vl-2b",
    tiny=Shape("qwen2-vl-tiny", "qwen2_vl",
               dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2),
               tiny_text(rope_parameters=mrope([2, 3, 3], 10000.0)), TINY_TOP),
)  # fmt: skip

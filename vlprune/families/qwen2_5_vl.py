"""Qwen2.5-VL: Qwen2-VL's pixel settings; windowed ViT attention (full attention in a few blocks);
grounding outputs in absolute pixels of the resized image."""

from vlprune.families import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, FamilySpec, Shape
from vlprune.families._config import TINY_TOP, mrope, text, tiny_text, top


def _vision(out: int) -> dict:
    return dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=out,
                hidden_act="silu", patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, in_channels=3)  # fmt: skip


_MROPE = mrope([16, 24, 24], 1000000.0)


def _shape(name: str, vision: dict, txt: dict, checkpoint: str) -> Shape:
    return Shape(name, "qwen2_5_vl", vision, txt, top(txt), checkpoint)


SPEC = FamilySpec(
    "qwen2.5-vl", 14, 2, 2, 3136, 12845056, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ("qwen2_5_vl",),
    processor_class="Qwen2_5_VLProcessor", system_prompt=True, coord_frame="canvas_px", flops_vision="qwen2_5",
    shapes=(
        _shape("qwen2.5-vl-3b", _vision(2048), text(2048, 11008, 36, 16, 2, 151936, True, rope_parameters=_MROPE),
               "Qwen/Qwen2.5-VL-3B-Instruct"),
        _shape("qwen2.5-vl-7b", _vision(3584), text(3584, 18944, 28, 28, 4, 152064, False, rope_parameters=_MROPE),
               "Qwen/Qwen2.5-VL-7B-Instruct"),
    ),
    default_shape="qwen2.5-vl-3b",
    # window 56 px = 2x2 blocks per window, so small test images already have several windows
    tiny=Shape("qwen2.5-vl-tiny", "qwen2_5_vl",
               dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
                    temporal_patch_size=2, out_hidden_size=32, window_size=56, fullatt_block_indexes=[1],
                    tokens_per_second=2),
               tiny_text(rope_parameters=mrope([2, 3, 3], 10000.0)), TINY_TOP),
)  # fmt: skip

"""Random-weight model configs built locally (no downloads): tiny ones for tests; real shapes come
from :mod:`vlprune.shapes` (the one table of released architectures).

``build_config(family, shape)`` returns a transformers config; ``build_model(...)`` instantiates the
``*ForConditionalGeneration`` class with random weights. ``shape="tiny"`` keeps every family at
hidden 32-64, 2 ViT blocks and 4 LLM layers (Qwen3.5: 5, linear / full mixed) (reduced depth optional via ``text_layers`` /
``vision_layers``).
"""

from __future__ import annotations

import torch

from vlprune.shapes import Shape

#: Token ids used by the tiny configs (vocab of 96): 90.. are the Qwen-VL special tokens.
TINY_VOCAB = 96
TINY_TOKENS = {
    "image_token_id": 90,
    "video_token_id": 91,
    "vision_start_token_id": 92,
    "vision_end_token_id": 93,
}
TINY_EOS = 94
TINY_PAD = 95

def _tiny(model_type: str) -> Shape:
    common_text = dict(
        vocab_size=TINY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
        bos_token_id=TINY_EOS, eos_token_id=TINY_EOS, pad_token_id=TINY_PAD,
    )
    top = dict(TINY_TOKENS, tie_word_embeddings=False)
    if model_type == "qwen2_vl":
        text = dict(common_text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
        vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2)
        return Shape("qwen2-vl-tiny", model_type, vision, text, top)
    if model_type == "qwen2_5_vl":
        text = dict(common_text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
        # window 56 px = 2x2 blocks per window, so small test images already have several windows
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, window_size=56,
                      fullatt_block_indexes=[1], tokens_per_second=2)
        return Shape("qwen2.5-vl-tiny", model_type, vision, text, top)
    if model_type == "qwen3_vl":
        text = dict(common_text, head_dim=16,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                     "mrope_interleaved": True})
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32,
                      num_position_embeddings=64, deepstack_visual_indexes=[0, 1])
        return Shape("qwen3-vl-tiny", model_type, vision, text, top)
    if model_type == "qwen3_5":
        # scoring layer K - 1 must be full attention: valid K = 3 only; layers >= K mix linear and full
        text = dict(common_text, head_dim=32, num_hidden_layers=5,
                    layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention",
                                 "full_attention"],
                    linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8,
                    linear_num_key_heads=2, linear_num_value_heads=2,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                     "mrope_interleaved": True, "partial_rotary_factor": 0.5})
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=64)
        return Shape("qwen3.5-tiny", model_type, vision, text, top)
    raise ValueError(f"no tiny config for model_type {model_type!r}")


def list_shapes() -> list[str]:
    from vlprune.shapes import list_shapes as real

    return ["tiny", "real", *real()]


def build_config(family: str, shape: str = "tiny", text_layers: int | None = None, vision_layers: int | None = None,
                 attn_implementation: str = "sdpa"):
    """A transformers config for ``family``: ``shape="tiny"`` (tests), ``"real"`` (the family's default
    real shape, :data:`vlprune.shapes.DEFAULT_SHAPE`) or a name from :mod:`vlprune.shapes`; optionally
    with cut LLM / ViT depth."""
    from vlprune import shapes
    from vlprune.families import get_family

    spec = get_family(family)
    if shape == "tiny":
        chosen = _tiny(spec.model_types[0])
    else:
        name = shapes.DEFAULT_SHAPE[spec.name] if shape == "real" else shape
        if name not in shapes.SHAPES:
            raise ValueError(f"unknown model shape {shape!r}; expected one of: {', '.join(list_shapes())}")
        chosen = shapes.get_shape(name)
        if chosen.family != spec.name:
            raise ValueError(f"shape {name!r} is a {chosen.family} model, not {spec.name}")
    cfg = shapes.shape_config(chosen, text_layers, vision_layers)
    cfg._attn_implementation = attn_implementation
    return cfg


def build_model(family: str, shape: str = "tiny", *, seed: int = 0, dtype: torch.dtype = torch.float32,
                attn_implementation: str = "sdpa", text_layers: int | None = None, vision_layers: int | None = None):
    """Random-weight ``*ForConditionalGeneration`` (eval mode) of ``family`` at ``shape``."""
    from transformers import AutoModelForImageTextToText

    cfg = build_config(family, shape, text_layers, vision_layers, attn_implementation)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(cfg, dtype=dtype, attn_implementation=attn_implementation)
    return model.eval()

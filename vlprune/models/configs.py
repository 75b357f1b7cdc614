"""Random-weight model configs built locally (no downloads): tiny ones for tests, real shapes for
benchmarks and the demo.

``build_config(family, shape)`` returns a transformers config; ``build_model(...)`` instantiates the
``*ForConditionalGeneration`` class with random weights. ``shape="tiny"`` keeps every family at
hidden 32-64, 2 ViT blocks and 2 LLM layers; the real shapes follow the public model cards
(reduced depth optional via ``text_layers`` / ``vision_layers``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

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

#: Real Qwen token ids (the processor's tokenizer).
QWEN_TOKENS = {
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}


@dataclass(frozen=True)
class ShapeSpec:
    """One buildable architecture: family + text/vision sub-config dicts."""

    family: str
    model_type: str
    text: dict
    vision: dict
    top: dict


def _tiny(model_type: str) -> ShapeSpec:
    common_text = dict(
        vocab_size=TINY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
        bos_token_id=TINY_EOS, eos_token_id=TINY_EOS, pad_token_id=TINY_PAD,
    )
    top = dict(TINY_TOKENS, tie_word_embeddings=False)
    if model_type == "qwen2_vl":
        text = dict(common_text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
        vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2)
        return ShapeSpec("qwen2-vl", model_type, text, vision, top)
    if model_type == "qwen2_5_vl":
        text = dict(common_text, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
        # window 56 px = 2x2 blocks per window, so small test images already have several windows
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, window_size=56,
                      fullatt_block_indexes=[1], tokens_per_second=2)
        return ShapeSpec("qwen2.5-vl", model_type, text, vision, top)
    if model_type == "qwen3_vl":
        text = dict(common_text, head_dim=16,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                     "mrope_interleaved": True})
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32,
                      num_position_embeddings=64, deepstack_visual_indexes=[0])
        return ShapeSpec("qwen3-vl", model_type, text, vision, top)
    if model_type == "qwen3_5":
        text = dict(common_text, head_dim=32, layer_types=["linear_attention", "full_attention"],
                    linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8,
                    linear_num_key_heads=2, linear_num_value_heads=2,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2],
                                     "mrope_interleaved": True, "partial_rotary_factor": 0.5})
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=64)
        return ShapeSpec("qwen3.5", model_type, text, vision, top)
    raise ValueError(f"no tiny config for model_type {model_type!r}")


# Public model-card shapes (config.json of the released checkpoints), random weights here.
_REAL: dict[str, ShapeSpec] = {
    "qwen2-vl-2b": ShapeSpec(
        "qwen2-vl", "qwen2_vl",
        dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
             num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
             bos_token_id=151643, eos_token_id=151645),
        dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14,
             spatial_merge_size=2, temporal_patch_size=2),
        dict(QWEN_TOKENS, tie_word_embeddings=True),
    ),
    "qwen2.5-vl-3b": ShapeSpec(
        "qwen2.5-vl", "qwen2_5_vl",
        dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
             num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000,
             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
             bos_token_id=151643, eos_token_id=151645),
        dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
             spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=2048, window_size=112,
             fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu"),
        dict(QWEN_TOKENS, tie_word_embeddings=True),
    ),
    "qwen3-vl-2b": ShapeSpec(
        "qwen3-vl", "qwen3_vl",
        dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
             num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
             rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                              "mrope_interleaved": True},
             bos_token_id=151643, eos_token_id=151645),
        dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
             spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=2048,
             num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17]),
        dict(QWEN_TOKENS, tie_word_embeddings=True),
    ),
    # Qwen3.5 small dense shape (hybrid Gated-DeltaNet / full attention every 4th layer); approximate.
    "qwen3.5-2b": ShapeSpec(
        "qwen3.5", "qwen3_5",
        dict(vocab_size=248320, hidden_size=2048, intermediate_size=6144, num_hidden_layers=24,
             num_attention_heads=8, num_key_value_heads=2, head_dim=256, max_position_embeddings=262144,
             linear_conv_kernel_dim=4, linear_key_head_dim=128, linear_value_head_dim=128,
             linear_num_key_heads=16, linear_num_value_heads=16,
             rope_parameters={"rope_type": "default", "rope_theta": 10000000.0, "mrope_section": [11, 11, 10],
                              "mrope_interleaved": True, "partial_rotary_factor": 0.25},
             bos_token_id=None, eos_token_id=248046),
        dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
             spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=2048, num_position_embeddings=2304),
        dict(image_token_id=248056, video_token_id=248057, vision_start_token_id=248053,
             vision_end_token_id=248054, tie_word_embeddings=True),
    ),
}

#: Default real shape per family (what the demo builds).
DEFAULT_REAL_SHAPE = {
    "qwen2-vl": "qwen2-vl-2b",
    "qwen2.5-vl": "qwen2.5-vl-3b",
    "qwen3-vl": "qwen3-vl-2b",
    "qwen3.5": "qwen3.5-2b",
}

_FAMILY_TO_MODEL_TYPE = {"qwen2-vl": "qwen2_vl", "qwen2.5-vl": "qwen2_5_vl", "qwen3-vl": "qwen3_vl", "qwen3.5": "qwen3_5"}


def list_shapes() -> list[str]:
    return ["tiny"] + sorted(_REAL)


def shape_spec(family: str, shape: str = "tiny") -> ShapeSpec:
    """Resolve ``(family, shape)``; ``shape`` is ``"tiny"``, ``"real"`` (family default) or a name."""
    from vlprune.families import get_family

    fam = get_family(family).name
    if shape == "tiny":
        return _tiny(_FAMILY_TO_MODEL_TYPE[fam])
    name = DEFAULT_REAL_SHAPE[fam] if shape == "real" else shape
    if name not in _REAL:
        raise ValueError(f"unknown model shape {shape!r}; expected one of: {', '.join(list_shapes())}")
    spec = _REAL[name]
    if spec.family != fam:
        raise ValueError(f"shape {name!r} is a {spec.family} model, not {fam}")
    return spec


def build_config(family: str, shape: str = "tiny", text_layers: int | None = None, vision_layers: int | None = None,
                 attn_implementation: str = "sdpa"):
    """A transformers config for ``family`` at ``shape``; optionally cut LLM / ViT depth."""
    from transformers import AutoConfig

    spec = shape_spec(family, shape)
    text, vision = copy.deepcopy(spec.text), copy.deepcopy(spec.vision)
    if text_layers is not None:
        text["num_hidden_layers"] = int(text_layers)
        if "layer_types" in text:
            text["layer_types"] = text["layer_types"][:text_layers]
        elif spec.model_type == "qwen3_5":
            text["layer_types"] = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(text_layers)]
            text["layer_types"][-1] = "full_attention"
    if vision_layers is not None:
        d = int(vision_layers)
        vision["depth"] = d
        if "fullatt_block_indexes" in vision:
            keep = [i for i in vision["fullatt_block_indexes"] if i < d]
            vision["fullatt_block_indexes"] = keep or [d - 1]
        if "deepstack_visual_indexes" in vision:
            keep = [i for i in vision["deepstack_visual_indexes"] if i < d]
            vision["deepstack_visual_indexes"] = keep or [max(0, d - 1)]
    cfg = AutoConfig.for_model(spec.model_type, text_config=text, vision_config=vision, **spec.top)
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

"""Checkpoint folders vLLM and transformers both load: config, tokenizer, processor, chat template, and
(optionally) seeded random weights as real safetensors, so the two compute with the same weights.

No download: the tokenizer is the offline Qwen tokenizer (:mod:`vlprune.processor`); the processor is the
family's transformers processor class (image and video processor; the video processor needs
torchvision, which a vLLM install has). ``shape="tiny"`` is the test shape with the LLM's head size
raised to 32 (vLLM's CPU attention supports head sizes 32, 64, 80, ...); a released shape name
(``qwen3-vl-2b``) writes only the config for ``load_format="dummy"`` benchmarks.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

from vlprune.families import Shape, get_family

#: per family, the tiny LLM's overrides for vLLM's CPU backend: head size 32 (M-RoPE sections sum to 16)
SERVING_TEXT = {
    "qwen2-vl": dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1),
    "qwen2.5-vl": dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1),
    "qwen3-vl": dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1,
                     head_dim=32),
    # vLLM's CPU Gated-DeltaNet kernels need wider linear-attention heads than the test shape's 8
    "qwen3.5": dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1,
                    head_dim=32, linear_key_head_dim=128, linear_value_head_dim=128),
}
#: M-RoPE sections of the serving tiny shape (sum = head_dim / 2 = 16; vLLM asserts it)
SERVING_MROPE = {"qwen2-vl": [4, 6, 6], "qwen2.5-vl": [4, 6, 6], "qwen3-vl": [8, 4, 4], "qwen3.5": [8, 4, 4]}


def serving_tiny_shape(family: str) -> Shape:
    """The family's tiny test shape with an LLM vLLM's CPU backend runs (head size 32)."""
    spec = get_family(family)
    text = copy.deepcopy(spec.tiny.text)
    text.update(SERVING_TEXT[spec.name])
    rope = dict(text.get("rope_parameters") or {})
    rope["mrope_section"] = list(SERVING_MROPE[spec.name])
    if spec.name == "qwen3.5":  # rotary on a quarter of the head in the released model; here on all 32 dims
        rope["partial_rotary_factor"] = 1.0
    text["rope_parameters"] = rope
    vision = copy.deepcopy(spec.tiny.vision)  # the merger's output is the LLM's width
    vision["hidden_size" if spec.name == "qwen2-vl" else "out_hidden_size"] = text["hidden_size"]
    return dataclasses.replace(spec.tiny, name=f"{spec.tiny.name}-serving", text=text, vision=vision)


#: the MoE model types' tiny expert layout (routed experts on every layer)
SERVING_MOE = {"qwen3_vl_moe": dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=48,
                                    decoder_sparse_step=1, norm_topk_prob=True),
               "qwen3_5_moe": dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64,
                                   shared_expert_intermediate_size=64)}


#: fused expert tensors that the released checkpoints (and vLLM's loader) store transposed, (E, in, out),
#: against transformers' own (E, out, in); transformers reads both
RELEASED_TRANSPOSED = {"qwen3_vl_moe": ("experts.gate_up_proj", "experts.down_proj")}


def _released_layout(path: Path, model_type: str) -> None:
    names = RELEASED_TRANSPOSED.get(model_type)
    if not names:
        return
    from safetensors.torch import load_file, save_file

    for f in sorted(path.glob("*.safetensors")):
        sd = load_file(str(f))
        save_file({k: v.transpose(1, 2).contiguous() if k.endswith(names) else v for k, v in sd.items()}, str(f),
                  metadata={"format": "pt"})


def _config(family: str, shape: str):
    from vlprune import shapes

    if shape == "tiny":
        tiny = serving_tiny_shape(family)
        if family in SERVING_MOE:  # a model type: the dense tiny shape with routed experts
            text = {**tiny.text, **SERVING_MOE[family]}
            tiny = dataclasses.replace(tiny, name=f"{family}-tiny-serving", model_type=family, text=text)
        return shapes.shape_config(tiny)
    from vlprune.models.configs import build_config

    return build_config(family, shape)


def write_processor(path: Path, family: str, min_pixels: int | None = None, max_pixels: int | None = None) -> None:
    """The family's transformers processor (tokenizer, image and video processor, chat template)."""
    import transformers
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    from vlprune.processor import build_processor, chat_template

    spec = get_family(family)
    offline = build_processor(spec.name)
    kw = dict(patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
              image_mean=list(spec.image_mean), image_std=list(spec.image_std),
              size={"shortest_edge": min_pixels or spec.min_pixels, "longest_edge": max_pixels or spec.max_pixels})
    video_cls = "Qwen2VLVideoProcessor" if spec.name in ("qwen2-vl", "qwen2.5-vl") else "Qwen3VLVideoProcessor"
    proc = getattr(transformers, spec.processor_class)(
        image_processor=Qwen2VLImageProcessor(**kw), tokenizer=offline.tokenizer,
        video_processor=getattr(transformers, video_cls)(**kw), chat_template=chat_template(spec.name))
    proc.save_pretrained(str(path))


def write_checkpoint(path, family: str, shape: str = "tiny", *, weights: bool = True, min_pixels: int | None = None,
                     max_pixels: int | None = None, seed: int = 0, dtype: str = "float32") -> Path:
    """Write a checkpoint folder for ``family`` (a family name, or a MoE ``model_type`` such as
    ``qwen3_vl_moe`` for its tiny shape with routed experts) at ``shape``; ``weights=False`` writes no
    weights (vLLM's ``load_format="dummy"``). Returns the folder."""
    from vlprune.bench.model import build_model
    from vlprune.processor import align_config_to_processor, build_processor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = _config(family, shape)
    offline = build_processor(get_family(family).name)
    align_config_to_processor(cfg, offline)
    tok = offline.tokenizer
    cfg.get_text_config().eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    if weights:
        model = build_model(cfg, dtype, "cpu", seed, "sdpa")
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(str(path))
        _released_layout(path, cfg.model_type)
    else:
        from transformers import AutoModelForImageTextToText

        cfg.architectures = [AutoModelForImageTextToText._model_mapping[type(cfg)].__name__]
        cfg.torch_dtype = dtype
        cfg.save_pretrained(str(path))
    write_processor(path, family, min_pixels, max_pixels)
    (path / "vlprune.json").write_text(json.dumps({"family": get_family(family).name, "shape": shape,
                                                   "weights": weights, "seed": seed}, indent=1))
    return path

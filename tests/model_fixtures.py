"""Shared helpers for the model-integration tests: tiny random-weight models and hand-built prompts.

Prompts use the tiny vocabulary of :mod:`vlprune.models.configs` (ids < 90 are text; 90-93 the
Qwen-VL image/video/vision-start/vision-end tokens); pixel_values come from the real transformers
Qwen2-VL image processor (PIL backend) configured for each family, so row layout is the processor's.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

from vlprune.families import get_family
from vlprune.models.configs import TINY_PAD, TINY_TOKENS, build_model

FAMILIES = ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5"]
IMG, VID, VS, VE = (TINY_TOKENS[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                              "vision_end_token_id"))


def kept_of(n: int, retain: str) -> int:
    """Tokens a ``retain`` share keeps of ``n``, computed here in exact fractions: round half up,
    never zero (``max(1, floor(retain * n + 1/2))``; 5 at 1/2 keeps 3, 11 keeps 6, 1 keeps 1)."""
    return max(1, math.floor(Fraction(retain) * n + Fraction(1, 2)))


_MODELS: dict = {}


def tiny_model(family: str, attn: str = "sdpa"):
    key = (family, attn)
    if key not in _MODELS:
        _MODELS[key] = build_model(family, "tiny", seed=0, attn_implementation=attn)
    return _MODELS[key]


def image_processor(family: str):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    spec = get_family(family)
    return Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
        size={"shortest_edge": spec.block**2, "longest_edge": spec.block**2 * 400},
    )


def synthetic_image(family: str, gh: int, gw: int, seed: int = 0) -> np.ndarray:
    """uint8 (gh*B, gw*B, 3): flat background (prunable) with a few noisy blocks and a stripe."""
    b = get_family(family).block
    rng = np.random.default_rng(seed)
    img = np.full((gh * b, gw * b, 3), 235, np.uint8)
    img[: b, :] = (30, 60, 200)  # top bar: identical blocks
    for _ in range(max(2, gh * gw // 4)):
        i, j = rng.integers(0, gh), rng.integers(0, gw)
        img[i * b : (i + 1) * b, j * b : (j + 1) * b] = rng.integers(0, 256, (b, b, 3), dtype=np.uint8)
    return img


def build_batch(family: str, samples: list[dict], padding_side: str = "left"):
    """samples: [{"text": [ids...], "images": [uint8 arrays], "after": [ids...]}]: each sample is
    ``text + (VS IMG*n VE text_between)* + after``. Returns processor-like kwargs (B, L)."""
    ip = image_processor(family)
    spec = get_family(family)
    rows, all_imgs = [], []
    for s in samples:
        ids = list(s.get("text", [1, 2, 3]))
        for k, im in enumerate(s.get("images", [])):
            all_imgs.append(im)
            n = (im.shape[0] // spec.block) * (im.shape[1] // spec.block)
            ids += [VS] + [IMG] * n + [VE] + [10 + k, 11 + k]
        ids += list(s.get("after", [4, 5, 6]))
        rows.append(ids)
    L = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), L), TINY_PAD, dtype=torch.long)
    attn = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        o = L - len(r) if padding_side == "left" else 0
        input_ids[i, o : o + len(r)] = torch.tensor(r)
        attn[i, o : o + len(r)] = 1
    mm = (input_ids == IMG).int()
    out = {"input_ids": input_ids, "attention_mask": attn, "mm_token_type_ids": mm}
    if all_imgs:
        proc = ip(images=all_imgs, return_tensors="pt")
        out["pixel_values"] = proc["pixel_values"]
        out["image_grid_thw"] = proc["image_grid_thw"]
    return out


def model_state(model):
    """Everything vlprune.apply could leave behind: attributes, hooks, forwards, generate, rope cache, weights."""
    mods = dict(model.named_modules())
    return {
        "dict_keys": {n: sorted(m.__dict__.keys()) for n, m in mods.items()},
        "hooks": {n: (len(m._forward_pre_hooks), len(m._forward_hooks), len(m._backward_hooks),
                      len(m._forward_pre_hooks_with_kwargs), len(m._forward_hooks_with_kwargs)) for n, m in mods.items()},
        "forward": {n: m.forward.__func__ for n, m in mods.items()},
        "generate": getattr(model.generate, "__func__", None) is type(model).generate and "generate" not in model.__dict__,
        "rope_deltas": model.model.rope_deltas,
        "params": {k: v.clone() for k, v in model.state_dict().items()},
    }


def assert_same_state(a, b):
    assert a["dict_keys"] == b["dict_keys"]
    assert a["hooks"] == b["hooks"]
    assert a["forward"] == b["forward"]
    assert a["generate"] == b["generate"]
    assert (a["rope_deltas"] is None) == (b["rope_deltas"] is None)
    assert a["params"].keys() == b["params"].keys() and all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])

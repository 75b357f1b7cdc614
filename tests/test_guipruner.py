"""GUIPruner on tiny random models: TAR through the processor (one resampling) and through the runtime,
SSP on the current screenshot only, presets, stats against the raw and the LLM-entering counts, bad input.
The pure algorithms are tested in test_guipruner_algorithms.py; the generic runtime matrix (padded batch ==
single, masked-key exactness, clean exit) covers tar / ssp / guipruner through the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import IMG, VE, VS, build_batch, image_processor, synthetic_image, tiny_model
from PIL import Image

import vlprune
from vlprune.algorithms.ssp import ssp_budget, ui_foreground
from vlprune.algorithms.tar import tar_plan
from vlprune.api import apply
from vlprune.families import get_family
from vlprune.methods import create_method
from vlprune.methods.guipruner import PRESETS
from vlprune.runtime import resolve_pipeline

FAMILIES = ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5"]


def _agent_sample(family, n_history=3, seed=0):
    """History frames of two sizes (oldest first) and the current screenshot last."""
    sizes = [(8, 12), (10, 8), (8, 12)][:n_history] + [(8, 10)]
    return {"text": [1, 2], "images": [synthetic_image(family, gh, gw, seed + i) for i, (gh, gw) in enumerate(sizes)],
            "after": [4, 5, 6, 7]}


@pytest.mark.parametrize("family", FAMILIES)
def test_mu_one_is_bit_identical_to_no_ssp(family):
    model = tiny_model(family)
    b = build_batch(family, [_agent_sample(family), {"text": [3, 4, 5], "images": [synthetic_image(family, 6, 4, 9)]}])
    with torch.no_grad():
        ref = model(**b).logits
        ref_gen = model.generate(**b, max_new_tokens=4, do_sample=False)
        with apply(model, create_method("ssp", mu=1.0)) as run:
            out = model(**b).logits
            gen = model.generate(**b, max_new_tokens=4, do_sample=False)
    assert torch.equal(ref, out) and torch.equal(ref_gen, gen)
    assert [s.tokens_after for s in run.stats] == [s.tokens_before for s in run.stats]


@pytest.mark.parametrize("family", FAMILIES)
def test_ssp_budget_strata_and_history_untouched(family):
    model = tiny_model(family)
    samples = [_agent_sample(family), {"text": [3, 4, 5], "images": [synthetic_image(family, 6, 4, 9)]}]
    b = build_batch(family, samples)
    mu, rho = 0.5, 0.4
    with torch.no_grad(), apply(model, ["pixelprune", create_method("ssp", mu=mu, rho=rho)],
                                processor=image_processor(family)) as run:
        model(**b)
    for s in run.stats:
        t = s.tokens_by_stage
        last = s.order == sum(1 for x in run.stats if x.sample == s.sample) - 1
        if not last:  # history frames: SSP leaves them alone
            assert t["llm"] == t["pre_vit"] and s.strata is None
            continue
        n = t["pre_vit"]  # the budget base: tokens of the screenshot that enter the LLM
        assert t["llm"] == ssp_budget(n, mu)
        fg_map = ui_foreground(s_image(b, family, s), (s.grid[0], s.grid[1]), get_family(family).block)
        fg = fg_map.reshape(-1)[s.vit_blocks]
        n_fg, n_bg = int(fg.sum()), int((~fg).sum())
        st = s.strata
        assert len(st["foreground"]) == int(np.floor(mu * n_fg)) and len(st["background"]) == int(np.floor(mu * rho * n_bg))
        parts = np.concatenate([st["foreground"], st["background"], st["grid"]])
        assert len(np.unique(parts)) == len(parts) == t["llm"]
        assert set(parts) == set(s.kept_blocks)
        assert set(st["foreground"]) <= set(np.flatnonzero(fg_map.reshape(-1)))
        assert s.retain == t["llm"] / t["raw"]  # both bases: raw here, LLM-entering via tokens_by_stage


def s_image(batch, family, stat):
    from vlprune.grid import BlockGrid

    return BlockGrid.from_pixel_values(batch["pixel_values"], batch["image_grid_thw"], family)[stat.image].image()


@pytest.mark.parametrize("family", FAMILIES)
def test_tar_in_the_runtime_matches_the_plan(family):
    model = tiny_model(family)
    b = build_batch(family, [_agent_sample(family)])
    proc = image_processor(family)
    lo, hi = proc.size["shortest_edge"], proc.size["longest_edge"]
    with torch.no_grad(), apply(model, create_method("tar", lam=0.3), processor=proc) as run:
        model(**b)
    blk = get_family(family).block
    plan = tar_plan([(s.grid[1] * blk, s.grid[0] * blk) for s in run.stats[:-1]], 0.3, 0.2, family, lo, hi)
    assert [s.tokens_by_stage["input"] for s in run.stats[:-1]] == [f.tokens_after for f in plan]
    assert run.stats[-1].tokens_by_stage["input"] == run.stats[-1].tokens_by_stage["raw"]  # current untouched
    assert sum(f.tokens_after for f in plan) <= 0.3 * sum(s.tokens_by_stage["raw"] for s in run.stats[:-1])
    assert [s.resized for s in run.stats[:-1]] == [(f.target[1], f.target[0]) for f in plan]


def test_process_resizes_once_before_the_processor():
    """PruningSession.process: history frames resized from the originals straight to their TAR size
    (pixels identical to vlprune.resize_history + the processor), raw counts recorded, no second resize."""
    family = "qwen2-vl"
    model = tiny_model(family)
    proc = _text_processor(family)
    rng = np.random.default_rng(0)
    history = [Image.fromarray(rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)) for _ in range(3)]
    current = Image.fromarray(rng.integers(0, 256, (250, 330, 3), dtype=np.uint8))
    text = "<|vision_start|><|image_pad|><|vision_end|>" * 4 + "what next?"
    lo, hi = proc.image_processor.size["shortest_edge"], proc.image_processor.size["longest_edge"]
    with torch.no_grad(), apply(model, create_method("tar", lam=0.25), processor=proc) as run:
        batch = run.process(text, [history + [current]])
        model(**batch)
    expected = proc(text=[text], images=vlprune.resize_history(history, 0.25, family=family, min_pixels=lo,
                                                                max_pixels=hi) + [current], return_tensors="pt")
    assert torch.equal(batch["pixel_values"], expected["pixel_values"])
    raw = [s.tokens_by_stage["raw"] for s in run.stats]
    after = [s.tokens_by_stage["input"] for s in run.stats]
    full = proc(text=[text], images=history + [current], return_tensors="pt")["image_grid_thw"].prod(-1) // 4
    assert raw == full.tolist() and after[:-1] != raw[:-1] and after[-1] == raw[-1]
    assert sum(after[:-1]) <= 0.25 * sum(raw[:-1])


def _text_processor(family):
    """A real Qwen processor whose tokenizer ids match the tiny model (image token 90...)."""
    from vlprune.processor import build_processor

    spec = get_family(family)
    proc = build_processor(family, min_pixels=spec.block**2, max_pixels=spec.block**2 * 400)

    class Tiny:  # maps the processor's text to the tiny vocabulary: image ids kept, text ids folded
        image_processor = proc.image_processor
        image_token_id = IMG

        def __call__(self, text, images, return_tensors="pt", padding=True):
            out = proc(text=text, images=images, return_tensors=return_tensors, padding=padding)
            ids = out["input_ids"]
            tiny = torch.where(ids == proc.image_token_id, IMG, ids % 80 + 1)
            tiny = torch.where(ids == proc.tokenizer.convert_tokens_to_ids("<|vision_start|>"), VS, tiny)
            tiny = torch.where(ids == proc.tokenizer.convert_tokens_to_ids("<|vision_end|>"), VE, tiny)
            out["input_ids"] = tiny
            out["mm_token_type_ids"] = (tiny == IMG).int()
            return out

    return Tiny()


def test_presets_expand_to_tar_and_ssp():
    for preset, lam in PRESETS.items():
        p = resolve_pipeline(create_method("guipruner", preset=preset))
        tar, ssp = p.get("input"), p.get("llm")
        assert (tar.lam, tar.gamma, ssp.mu, ssp.rho) == (lam, 0.2, 0.75, 0.3)
    p = resolve_pipeline("pixelprune+guipruner")
    assert p.stages == ("input", "pre_vit", "llm") and p.name == "tar+pixelprune+ssp"
    with pytest.raises(ValueError, match="two methods of stage 'llm'"):
        resolve_pipeline("guipruner+fastv")


@pytest.mark.parametrize("options,match", [
    ({"preset": "IV"}, "preset must be one of I, II, III"),
    ({"lam": 0.0}, r"lam must be in \(0, 1\]"), ({"lam": 1.5}, r"lam must be in \(0, 1\]"),
    ({"mu": 0.0}, r"mu must be in \(0, 1\]"), ({"rho": 2.0}, r"rho must be in \[0, 1\]"),
    ({"gamma": -0.1}, r"gamma must be in \[0, 1\]"), ({"mu": True}, "mu must be a number"),
    ({"layer": 0}, "layer must be an integer"),
])
def test_bad_options_name_the_option(options, match):
    with pytest.raises(ValueError, match=match):
        create_method("guipruner", **options)


def test_ssp_refuses_a_sample_without_image_and_bad_layers():
    model = tiny_model("qwen2-vl")
    b = build_batch("qwen2-vl", [{"text": [1, 2, 3, 4, 5, 6, 7, 8]}, {"text": [3], "images": [synthetic_image("qwen2-vl", 4, 4)]}])
    with torch.no_grad(), apply(model, "ssp"), pytest.raises(ValueError, match="sample 0 has no image"):
        model(**b)
    with pytest.raises(ValueError, match=r"layer=9 .* must be in \[1, 3\]"):
        with apply(model, create_method("guipruner", layer=9)):
            pass
    with pytest.raises(ValueError, match="nearest valid layer is 3"):
        with apply(tiny_model("qwen3.5"), create_method("ssp", layer=2)):
            pass
    with apply(tiny_model("qwen3.5"), "guipruner") as run:  # the paper's K = 2 -> first valid K
        assert run.llm_layer == 3

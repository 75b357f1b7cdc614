"""The staged runtime on tiny random models, driven by the method registry: every method of every stage
(default and non-default options) and compositions, on all four families.

Checked: padded batches (left and right) equal each sample alone; ``retain = 1`` through every stage's
hooks is bit-identical to the unmodified model; an in-LLM prune equals a reference run that masks the
dropped tokens' key columns from layer K on (eager), greedy tokens included; recomputed attention rows
equal eager's weights; the layered cache; DeepStack below K; per-stage token counts; clean exit; the
transformers contract the hooks rely on; bad input refused before anything runs.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from model_fixtures import (
    FAMILIES, assert_same_state, build_batch, image_processor, kept_of, model_state, synthetic_image, tiny_model,
)

from vlprune.api import apply
from vlprune.grid import BlockGrid
from vlprune.methods import STAGES, create_method, list_methods
from vlprune.methods.base import get_method_class

#: non-default options where a method has more than the generic ``retain`` / ``seed``
ALT_OPTIONS = {
    "pixelprune": {"order": "serpentine", "metric": "mae", "tau": 0.05},
    "tar": {"lam": 0.2, "gamma": 0.5},
    "ssp": {"mu": 0.5, "rho": 0.5},
    "guipruner": {"preset": "III"},
}


def _alt(name: str) -> dict:
    if name in ALT_OPTIONS:
        return ALT_OPTIONS[name]
    names = {f.name for f in dataclasses.fields(get_method_class(name))}
    return {k: v for k, v in (("retain", 0.3), ("seed", 7)) if k in names}


def variants() -> list[tuple[str, dict]]:
    out = []
    for stage in STAGES:
        for name in list_methods(stage):
            out.append((name, {}))
            if _alt(name):
                out.append((name, _alt(name)))
    return out


def compositions() -> list[str]:
    """PixelPrune before every later-stage method, and one method of every stage chained."""
    later = [n for s in ("post_vit", "llm") for n in list_methods(s)]
    chains = [f"pixelprune+{n}" for n in later]
    firsts = [list_methods(s)[0] for s in ("input", "post_vit", "llm") if list_methods(s)]
    chains.append("+".join(["pixelprune", *firsts]))
    return chains


SAMPLES = [
    {"text": [1, 2], "images": [(4, 6, 0), (2, 4, 1)], "after": [4, 5, 6]},
    {"text": [3, 4, 5, 6], "images": [(6, 4, 2)], "after": [7, 8]},
]


def _samples(family):
    return [{**s, "images": [synthetic_image(family, *g) for g in s["images"]]} for s in SAMPLES]


def _valid_out(run, logits):
    """(B, L_out) mask of the positions of the returned logits that hold real tokens."""
    last = run.last
    am = last.llm_attention_mask if last.llm_keep is not None else run.last_prepared.plan.attention_mask
    return am.bool() if am is not None else torch.ones(logits.shape[:2], dtype=torch.bool)


def _pipeline(spec, options):
    return create_method(spec, **options) if options else spec


# ---------------------------------------------------------------- batch == each sample alone
@pytest.mark.parametrize("padding", ["left", "right"])
@pytest.mark.parametrize("spec", [f"{n}|{i}" for i, (n, _) in enumerate(variants())] + compositions())
@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_equals_single(family, spec, padding):
    name, _, idx = spec.partition("|")
    method = _pipeline(name, variants()[int(idx)][1]) if idx else name
    model = tiny_model(family)
    samples = _samples(family)
    with torch.no_grad(), apply(model, method, processor=image_processor(family)) as run:
        out = model(**build_batch(family, samples, padding)).logits
        valid = _valid_out(run, out)
        tokens = [s.tokens_by_stage for s in run.stats]
        singles = []
        for s in samples:
            single = model(**build_batch(family, [s])).logits[0]
            singles.append(single[_valid_out(run, single[None])[0]])
    for r in range(2):
        torch.testing.assert_close(out[r][valid[r]], singles[r], atol=1e-4, rtol=0)
    for t in tokens:  # every stage that ran reported, counts never grow
        counts = list(t.values())
        assert list(t)[0] == "raw" and all(b <= a for a, b in zip(counts, counts[1:])) or "resize" in spec


# ---------------------------------------------------------------- retain = 1 is the unmodified model
def _retain_specs():
    """Every method with ``retain``, and the composition of one such method of each of the last two stages."""
    with_retain = [n for n in list_methods() if "retain" in {f.name for f in dataclasses.fields(get_method_class(n))}]
    last_of_stage = {get_method_class(n).stage: n for n in with_retain if n != "resize"}
    return with_retain + ["+".join([last_of_stage[s] for s in STAGES if s in last_of_stage][-2:])]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("spec", _retain_specs())
@pytest.mark.parametrize("family", FAMILIES)
def test_retain_one_is_bit_identical(family, spec, attn):
    model = tiny_model(family, attn)
    b = build_batch(family, _samples(family))
    names = spec.split("+")
    with torch.no_grad():
        ref = model(**b).logits
        ref_gen = model.generate(**b, max_new_tokens=4, do_sample=False)
        with apply(model, [create_method(n, retain=1.0) for n in names], processor=image_processor(family)) as run:
            out = model(**b).logits
            gen = model.generate(**b, max_new_tokens=4, do_sample=False)
    assert torch.equal(ref, out)
    assert torch.equal(ref_gen, gen)
    assert all(s.tokens_after == s.tokens_before for s in run.stats)
    assert set(run.stats[0].tokens_by_stage) == {"raw", *(get_method_class(n).stage for n in names)}


# ---------------------------------------------------------------- in-LLM exactness (eager)
def _mask_dropped_hooks(model, k, dropped):
    """Reference: from layer k on, the dropped columns (B, L') get the most negative additive mask."""

    def hook(module, args, kwargs):
        m = kwargs["attention_mask"].clone()
        d = torch.zeros(m.shape[0], m.shape[-1], dtype=torch.bool)
        d[:, : dropped.shape[1]] = dropped
        m[d[:, None, None, :].expand_as(m)] = torch.finfo(m.dtype).min
        kwargs["attention_mask"] = m
        return args, kwargs

    layers = model.model.language_model.layers
    return [layers[i].register_forward_pre_hook(hook, with_kwargs=True) for i in range(k, len(layers))]


@pytest.mark.parametrize("spec,layer", [("fastv", None), ("pixelprune+fastv", None), ("fastv", 1), ("fastv", 3),
                                        ("ssp", None), ("pixelprune+ssp", 1)])
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"])
def test_llm_prune_equals_masked_reference(family, spec, layer):
    """Qwen3-VL with K = 1 also covers DeepStack below K (2 DeepStack layers in the tiny model)."""
    model = tiny_model(family, "eager")
    b = build_batch(family, _samples(family))
    names = spec.split("+")
    llm = create_method(names[-1], layer=layer) if layer else names[-1]
    with torch.no_grad():
        with apply(model, [*names[:-1], llm]) as run:
            out = model(**b).logits
            gen = model.generate(**b, max_new_tokens=5, do_sample=False)
            keep, k = run.last.llm_keep, run.llm_layer
            n_pre = run.last_prepared.plan.input_ids.shape[1]
        valid = run.last.llm_attention_mask
        dropped = torch.ones(2, n_pre, dtype=torch.bool)
        for r, cols in enumerate(keep):
            dropped[r, cols] = False
        pre_am = run.last_prepared.plan.attention_mask
        if pre_am is not None:
            dropped &= pre_am.bool()
        assert dropped.any(), "nothing was pruned inside the LLM"
        handles = _mask_dropped_hooks(model, k, dropped)
        try:
            with apply(model, names[:-1] or "full"):
                ref = model(**b).logits
                ref_gen = model.generate(**b, max_new_tokens=5, do_sample=False)
        finally:
            for h in handles:
                h.remove()
    for r in range(2):
        got = out[r][valid[r].bool()] if valid is not None else out[r]
        torch.testing.assert_close(got, ref[r, keep[r]], atol=1e-5, rtol=0)
    assert torch.equal(gen, ref_gen)


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_rows_equal_eager_weights(family):
    model = tiny_model(family, "eager")
    b = build_batch(family, _samples(family))
    with torch.no_grad(), apply(model, "fastv") as run:
        k = run.llm_layer
        seen = {}
        h = model.model.language_model.layers[k - 1].self_attn.register_forward_hook(
            lambda m, a, out: seen.__setitem__("w", out[1]))
        try:
            model(**b)
        finally:
            h.remove()
        scores, rows = run.llm.state.scores, run.llm.state.rows
    eager = seen["w"].mean(1)  # (B, L', L') mean over heads
    for r, row in enumerate(rows):
        torch.testing.assert_close(scores[r], eager[r, row.last].float(), atol=1e-6, rtol=1e-5)
        assert abs(float(scores[r].sum()) - 1.0) < 1e-5


# ---------------------------------------------------------------- layered cache, positions, decode
@pytest.mark.parametrize("family", FAMILIES)
def test_layered_cache_and_unpruned_decode_positions(family):
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    full_pos, _ = model.model.get_rope_index(b["input_ids"], b["mm_token_type_ids"],
                                             image_grid_thw=b["image_grid_thw"], attention_mask=b["attention_mask"])
    with torch.no_grad(), apply(model, "fastv") as run:
        cache = model(**b, use_cache=True).past_key_values
        k, n_pre, n_post = run.llm_layer, run.last.llm_tokens_after, run.last.llm_tokens_final
        seen = []
        h = model.model.language_model.register_forward_pre_hook(
            lambda m, a, kw: seen.append(kw["position_ids"].clone()), with_kwargs=True)
        try:
            gen = model.generate(**b, max_new_tokens=3, do_sample=False)
        finally:
            h.remove()
    assert n_post < n_pre
    types = model.config.get_text_config().layer_types if hasattr(model.config.get_text_config(), "layer_types") else None
    for i, layer in enumerate(cache.layers):
        if types is not None and types[i] == "linear_attention":
            continue
        assert layer.get_seq_length() == (n_pre if i < k else n_post), i
    nxt = full_pos.amax(dim=(0, 2)) + 1  # decoding continues from the unpruned next position
    for step, pos in enumerate(seen[1:]):
        assert torch.equal(pos[-3:, :, 0], (nxt + step).view(1, -1).expand(3, -1))
    assert gen.shape[1] == b["input_ids"].shape[1] + 3


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_manual_decode_loop_matches_generate(family, attn):
    """A manual decode loop (model(input_ids=token, past_key_values=out.past_key_values)) after a prefill
    that passed no cache equals generate: the runtime finds the cache the model made."""
    model = tiny_model(family, attn)
    b = build_batch(family, _samples(family)[1:])
    with torch.no_grad(), apply(model, "pixelprune+fastv"):
        gen = model.generate(**b, max_new_tokens=4, do_sample=False)[0, b["input_ids"].shape[1]:]
        out = model(**b, use_cache=True, logits_to_keep=1)
        tok = out.logits[:, -1].argmax(-1, keepdim=True)
        toks = [int(tok)]
        for _ in range(3):
            out = model(input_ids=tok, past_key_values=out.past_key_values, use_cache=True, logits_to_keep=1)
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
            toks.append(int(tok))
    assert toks == gen.tolist()


# ---------------------------------------------------------------- stats of a three-stage pipeline
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_tokens_by_stage_three_stages(family):
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    with torch.no_grad(), apply(model, "pixelprune+divprune+fastv") as run:
        model(**b)
    grids = BlockGrid.from_pixel_values(b["pixel_values"], b["image_grid_thw"], family)
    pp = create_method("pixelprune")
    for s, g in zip(run.stats, grids):
        t = s.tokens_by_stage
        assert list(t) == ["raw", "pre_vit", "post_vit", "llm"]
        assert t["raw"] == g.n_blocks and t["pre_vit"] == pp(g).n_kept
        assert t["post_vit"] == kept_of(t["pre_vit"], "1/2") and t["llm"] == kept_of(t["post_vit"], "1/2")
        assert set(s.kept_blocks) <= set(s.vit_blocks) and len(s.kept_blocks) == t["llm"]
        assert s.tokens_after == t["llm"] and s.retain == t["llm"] / t["raw"]
    prompts = run.last.flops_prompts()
    for row, p in enumerate(prompts):
        imgs = [s for s in run.stats if s.sample == row]
        assert [im.llm_kept for im in p.images] == [s.tokens_by_stage["post_vit"] for s in imgs]
        assert p.llm_prune.kept_visual == sum(s.tokens_by_stage["llm"] for s in imgs)
        assert p.llm_prune.layer == run.llm_layer and p.llm_prune.query_rows == 1
    lengths = [p.text_tokens + p.llm_prune.kept_visual for p in prompts]
    assert run.last.llm_tokens_final == max(lengths)
    assert run.last.attn_implementation == "sdpa"


# ---------------------------------------------------------------- clean exit and bad input
@pytest.mark.parametrize("family", FAMILIES)
def test_nothing_left_after_exit_with_every_stage(family):
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    model.model.rope_deltas = None
    before = model_state(model)
    spec = compositions()[-1]
    with torch.no_grad(), apply(model, spec, processor=image_processor(family)):
        inside = model_state(model)
        model(**b)
        model.generate(**b, max_new_tokens=2, do_sample=False)
    assert inside["hooks"] != before["hooks"]
    assert_same_state(before, model_state(model))
    with pytest.raises(RuntimeError, match="boom"):
        with torch.no_grad(), apply(model, spec, processor=image_processor(family)):
            model(**b)
            raise RuntimeError("boom")
    assert_same_state(before, model_state(model))
    with pytest.raises(ValueError, match="layer"):
        with apply(model, create_method("fastv", layer=99)):
            pass
    assert_same_state(before, model_state(model))


def test_qwen3_5_scoring_layer_must_be_attention():
    model = tiny_model("qwen3.5")
    with pytest.raises(ValueError, match=r"scoring layer 1 is a linear_attention layer.*nearest valid layer is 3"):
        with apply(model, create_method("fastv", layer=2)):
            pass
    with apply(model, "fastv") as run:  # the default K = 2 becomes the first valid K
        assert run.llm_layer == 3


@pytest.mark.parametrize(
    "spec,options,match",
    [
        ("pixelprune+random", {}, "two methods of stage 'pre_vit'"),
        ("pixelprune+nope", {}, "unknown method 'nope'"),
        ("fastv", {"retain": 0.0}, r"retain must be in \(0, 1\]"),
        ("divprune", {"retain": 1.5}, r"retain must be in \(0, 1\]"),
        ("fastv", {"layer": 0}, r"layer must be an integer in \[1"),
        ("fastv", {"layer": 4}, r"layer=4 .* must be in \[1, 3\]"),
        ("pixelprune+", {}, "expected names joined by"),
    ],
)
def test_bad_pipelines_refused_before_install(spec, options, match):
    model = tiny_model("qwen2-vl")
    before = model_state(model)
    with pytest.raises((ValueError, TypeError), match=match):
        with apply(model, spec, **options):
            pass
    assert_same_state(before, model_state(model))


def test_llm_stage_refuses_labels_static_cache_and_embeds():
    from transformers import StaticCache

    model = tiny_model("qwen2-vl")
    b = build_batch("qwen2-vl", _samples("qwen2-vl"))
    vit_calls = []
    h = model.model.visual.register_forward_pre_hook(lambda m, a: vit_calls.append(1))
    try:
        with torch.no_grad(), apply(model, "fastv"):
            with pytest.raises(ValueError, match="labels cannot be used"):
                model(**b, labels=b["input_ids"])
            with pytest.raises(ValueError, match="static caches"):
                model.generate(**b, max_new_tokens=2, cache_implementation="static")
            cache = StaticCache(config=model.config.get_text_config(), max_cache_len=64)
            with pytest.raises(ValueError, match="static caches"):
                model(**b, past_key_values=cache)
            with pytest.raises(ValueError, match="inputs_embeds"):
                model(inputs_embeds=torch.zeros(1, 3, 32), pixel_values=b["pixel_values"],
                      image_grid_thw=b["image_grid_thw"])
    finally:
        h.remove()
    assert not vit_calls


# ---------------------------------------------------------------- the transformers contract
@pytest.mark.parametrize("family", FAMILIES)
def test_transformers_contract(family):
    """What the hooks rely on in the pinned transformers: decoder-layer call signature, composed rotary
    tables, the self-attention call, DeepStack kwargs and mask builders taking ``layer_idx``."""
    import inspect

    from transformers import masking_utils

    model = tiny_model(family)
    b = build_batch(family, _samples(family)[1:])
    lm = model.model.language_model
    seen = {}

    def layer_hook(m, args, kwargs):
        seen.setdefault("layer", (args, kwargs))

    def attn_hook(m, args, kwargs):
        seen.setdefault("attn", (args, kwargs))

    def lm_hook(m, args, kwargs):
        seen.setdefault("lm", kwargs)

    attn_layer = next(i for i, layer in enumerate(lm.layers) if hasattr(layer, "self_attn"))
    hs = [lm.layers[-1].register_forward_pre_hook(layer_hook, with_kwargs=True),
          lm.layers[attn_layer].self_attn.register_forward_pre_hook(attn_hook, with_kwargs=True),
          lm.register_forward_pre_hook(lm_hook, with_kwargs=True)]
    try:
        with torch.no_grad():
            model.generate(**b, max_new_tokens=1, do_sample=False)
    finally:
        for h in hs:
            h.remove()
    args, kwargs = seen["layer"]
    n = b["input_ids"].shape[1]
    assert len(args) == 1 and args[0].shape[:2] == (1, n)
    assert {"attention_mask", "position_embeddings", "position_ids"} <= set(kwargs)
    from vlprune import compat

    # 5.24 renamed the cache argument: the name compat resolves is the one the layers are called with
    assert compat.cache_kwarg(type(lm.layers[-1]).forward) in kwargs
    cos, sin = kwargs["position_embeddings"]
    assert cos.shape[:2] == (1, n) and sin.shape == cos.shape and kwargs["position_ids"].shape == (1, n)
    _, akw = seen["attn"]
    assert {"hidden_states", "position_embeddings", "attention_mask"} <= set(akw)
    attn = lm.layers[attn_layer].self_attn
    assert all(hasattr(attn, a) for a in ("q_proj", "k_proj", "head_dim", "scaling"))
    assert attn.q_proj.out_features == attn.config.num_attention_heads * attn.head_dim * (2 if family == "qwen3.5" else 1)
    if family == "qwen3-vl":
        assert {"deepstack_visual_embeds", "visual_pos_masks"} <= set(seen["lm"])
        assert callable(getattr(lm, "_deepstack_process", None))
    for fn in (masking_utils.create_causal_mask, masking_utils.create_sliding_window_causal_mask):
        assert "layer_idx" in inspect.signature(fn).parameters


@pytest.mark.parametrize("name", ["fastv", "divprune"])
def test_history_retain_splits_the_budget(name):
    """Baselines at GUIPruner's split budget: ``retain`` for each sample's last image, ``history_retain``
    for the images before it."""
    family = "qwen2-vl"
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    with torch.no_grad(), apply(model, create_method(name, retain=0.75, history_retain=0.25)) as run:
        model(**b)
    stage = get_method_class(name).stage
    prev = {"llm": "raw", "post_vit": "raw"}[stage]
    for s in run.stats:
        last = s.order == sum(1 for x in run.stats if x.sample == s.sample) - 1
        n = s.tokens_by_stage[prev]
        assert s.tokens_by_stage[stage] == kept_of(n, "3/4" if last else "1/4")


def test_select_stays_a_function_after_importing_the_algorithms():
    """The selection algorithms live in vlprune.algorithms; importing them must not shadow vlprune.select."""
    import importlib

    import vlprune

    importlib.import_module("vlprune.algorithms.predictive")
    importlib.import_module("vlprune.algorithms.ssp")
    assert callable(vlprune.select) and vlprune.select.__module__ == "vlprune"

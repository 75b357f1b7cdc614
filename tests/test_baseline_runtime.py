"""CDPruner, VisionZip, VisPruner, DART and MoB on the staged runtime (tiny random models): the vision
tower's attention rows recomputed from a block's own projections equal eager attention's weights; DART's
key norms equal the KV cache's keys; instruction embeddings are the text after the image; a merge reaches
the LLM (DeepStack too); budgets; bad options. (The registry matrix of test_runtime.py covers batching,
retain = 1 bit-identity, compositions and clean exit for these methods too.)"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import torch
from model_fixtures import FAMILIES, build_batch, image_processor, kept_of, synthetic_image, tiny_model
from transformers.vision_utils import get_vision_window_index

from vlprune.api import apply
from vlprune.methods import create_method
from vlprune.options import OptionError
from vlprune.methods.vit_baselines import CDPruner, VisionZip

SAMPLES = [
    {"text": [1, 2], "images": [(4, 6, 0), (2, 4, 1)], "after": [4, 5, 6]},
    {"text": [3, 4, 5, 6], "images": [(6, 4, 2)], "after": [7, 8]},
]
NEW = ["cdpruner", "visionzip", "vispruner", "dart", "mob"]


def _samples(family):
    return [{**s, "images": [synthetic_image(family, *g) for g in s["images"]]} for s in SAMPLES]


def _record_eager(monkeypatch, attn):
    """Wrap the modeling module's eager attention: keep (weights, keys) of the calls made by ``attn``."""
    mod = sys.modules[type(attn).__module__]
    orig, seen = mod.eager_attention_forward, []

    def wrapper(module, query, key, value, attention_mask, **kw):
        out, weights = orig(module, query, key, value, attention_mask, **kw)
        if module is attn:
            seen.append((weights.detach(), key.detach()))
        return out, weights

    monkeypatch.setattr(mod, "eager_attention_forward", wrapper)
    return seen


@pytest.mark.parametrize("family,layer", [(f, -1) for f in FAMILIES] + [("qwen2.5-vl", 0)])
def test_vision_attention_rows_equal_eager_weights(family, layer, monkeypatch):
    """qwen2.5-vl block 0 attends within windows and runs in window order; block -1 is a full-attention block."""
    model = tiny_model(family, "eager")
    b = build_batch(family, _samples(family))
    attn = model.model.visual.blocks[layer].attn
    seen = _record_eager(monkeypatch, attn)
    with torch.no_grad(), apply(model, create_method("vispruner", vision_layer=layer)) as run:
        model(**b)
        tap = run.prepare.post_vit.tap
    # per patch in the tower's order: attention received (mean over heads, summed over queries), keys
    received = torch.cat([w[0].float().mean(0).sum(0) for w, _ in seen])
    keys = torch.cat([k[0].float().mean(0) for _, k in seen])
    u = model.config.vision_config.spatial_merge_size ** 2
    received, keys = received.view(-1, u).mean(1), keys.view(-1, u, keys.shape[-1]).mean(1)
    if family == "qwen2.5-vl":  # transformers' own window order of the unpruned images
        vc = model.config.vision_config
        order, _ = get_vision_window_index(b["image_grid_thw"], vc.spatial_merge_size, vc.window_size, vc.patch_size)
        inv = torch.argsort(order)
        received, keys = received[inv], keys[inv]
    assert received.numel() == sum(int(t.prod()) // u for t in b["image_grid_thw"])
    torch.testing.assert_close(tap.received, received, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tap.keys, keys, atol=1e-5, rtol=1e-5)
    # every segment hands out one unit of attention per query: the mean received is 1 per token
    assert abs(float(tap.received.mean()) - 1.0) < 1e-5


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_dart_key_norms_equal_the_cache_keys(family):
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    with torch.no_grad(), apply(model, "dart") as run:
        cache = model(**b, use_cache=True).past_key_values
        norms, k = run.llm.state.key_norms, run.llm_layer
    keys = cache.layers[k - 1].keys  # (B, Hkv, L', hd), after k_norm and rotary
    ref = keys.float().abs().sum(dim=(1, 3))
    valid = run.last_prepared.plan.attention_mask.bool()
    torch.testing.assert_close(norms[valid], ref[valid], atol=1e-4, rtol=1e-5)


@dataclass
class _Recording(CDPruner):
    """CDPruner that keeps what the runtime handed it (not registered)."""

    def select(self, features, ctx):
        self.seen = getattr(self, "seen", []) + [(ctx.image, ctx.text.clone())]
        return super().select(features, ctx)


def test_cdpruner_reads_the_text_after_each_image():
    family = "qwen2-vl"
    model = tiny_model(family)
    b = build_batch(family, _samples(family), "left")
    method = _Recording(retain=0.5)
    with torch.no_grad(), apply(model, method):
        model(**b)
    emb = model.model.get_input_embeddings()
    ids, am = b["input_ids"], b["attention_mask"].bool()
    img = model.config.image_token_id
    for image, text in method.seen:
        row = 0 if image < 2 else 1
        cols = torch.nonzero(ids[row] == img).view(-1)
        ends = [int(c) + 1 for c, nxt in zip(cols, torch.cat([cols[1:], torch.tensor([-1])])) if nxt != c + 1]
        end = ends[image if row == 0 else 0]  # the column after this image's last token
        after = [c for c in range(end, ids.shape[1]) if am[row, c] and ids[row, c] != img]
        torch.testing.assert_close(text, emb(ids[row, after]))


def test_visionzip_merge_reaches_the_llm_with_deepstack():
    """Qwen3-VL: the merged features the method chose are what the LLM gets, for the merger output and
    every DeepStack feature alike; tokens sit at the positions of their kept blocks."""
    family = "qwen3-vl"
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    tower, lm_in = {}, {}

    def tower_hook(module, args, out):  # copies: the runtime replaces the output's fields afterwards
        tower["pooled"] = out.pooler_output.clone()
        tower["deep"] = [f.clone() for f in out.deepstack_features]

    def lm_hook(module, args, kwargs):
        lm_in.update(kwargs)

    h1 = model.model.visual.register_forward_hook(tower_hook)
    h2 = model.model.language_model.register_forward_pre_hook(lm_hook, with_kwargs=True)
    method = VisionZip(retain=0.5, contextual=0.5)
    try:
        with torch.no_grad(), apply(model, method) as run:
            model(**b)
    finally:
        h1.remove(), h2.remove()
    tap = run.prepare.post_vit.tap
    sizes = [s.tokens_by_stage["raw"] for s in run.stats]
    pooled = torch.split(tower["pooled"], sizes)
    deep = [torch.split(f, sizes) for f in tower["deep"]]
    from vlprune.algorithms.visionzip import visionzip_select
    from vlprune.methods.views import TokenMerge

    want_pooled, want_deep, merged = [], [[] for _ in deep], 0
    for i, (va, s) in enumerate(zip(tap.per_image(), run.stats)):
        k = kept_of(sizes[i], "1/2")
        kept, src, dst, w = visionzip_select(va.received, va.keys, k, min(int(k * 0.5 + 0.5), k - 1))
        assert s.kept_blocks.tolist() == kept.tolist()
        merged += int(src.numel() > kept.numel())
        m = TokenMerge(kept, src, dst, w)
        want_pooled.append(m.apply(pooled[i]))
        for d, f in zip(want_deep, deep):
            d.append(m.apply(f[i]))
    assert merged == len(run.stats)  # every image had tokens merged into its contextual ones
    kw = lm_in
    ids = run.last_prepared.plan.input_ids
    got = kw["inputs_embeds"][ids == model.config.image_token_id]
    torch.testing.assert_close(got, torch.cat(want_pooled))
    for got_d, want_d in zip(kw["deepstack_visual_embeds"], want_deep):
        torch.testing.assert_close(got_d, torch.cat(want_d))


@pytest.mark.parametrize("name", NEW)
def test_budget_per_image_with_history_retain(name):
    family = "qwen2-vl"
    model = tiny_model(family)
    b = build_batch(family, _samples(family))
    with torch.no_grad(), apply(model, create_method(name, retain=0.75, history_retain=0.25)) as run:
        model(**b)
    stage = "llm" if name in ("dart", "mob") else "post_vit"
    for s in run.stats:
        last = s.order == sum(1 for x in run.stats if x.sample == s.sample) - 1
        assert s.tokens_by_stage[stage] == kept_of(s.tokens_by_stage["raw"], "3/4" if last else "1/4")
        assert s.stage_ms.get("post_vit", 0.0) >= 0.0


@pytest.mark.parametrize("name,options,match", [
    ("cdpruner", {"theta": 1.0}, r"theta must be in \[0, 1\)"),
    ("cdpruner", {"theta": -0.1}, r"theta must be in \[0, 1\]"),
    ("visionzip", {"contextual": 1.5}, r"contextual must be in \[0, 1\]"),
    ("visionzip", {"vision_layer": True}, "vision_layer must be an integer"),
    ("vispruner", {"important": -0.1}, r"important must be in \[0, 1\]"),
    ("dart", {"pivot_image": 0, "pivot_text": 0}, "cannot both be 0"),
    ("dart", {"pivot_text": -1}, "pivot_text must be an integer"),
    ("mob", {"fold": 0}, "fold must be an integer"),
    ("mob", {"eta": 0}, "eta must be a number > 0"),
    ("mob", {"prompt_share": 2}, r"prompt_share must be in \[0, 1\]"),
    ("mob", {"retain": 0}, r"retain must be in \(0, 1\]"),
])
def test_bad_options_are_refused(name, options, match):
    with pytest.raises(OptionError, match=match):
        create_method(name, **options)


def test_vision_layer_outside_the_tower_is_refused_before_install():
    model = tiny_model("qwen2-vl")
    before = {n: len(m._forward_pre_hooks) + len(m._forward_hooks) for n, m in model.named_modules()}
    with pytest.raises(ValueError, match=r"vision_layer=5 of method 'visionzip' must be in \[-2, 1\]"):
        with apply(model, create_method("visionzip", vision_layer=5)):
            pass
    assert before == {n: len(m._forward_pre_hooks) + len(m._forward_hooks) for n, m in model.named_modules()}


def test_in_llm_methods_need_an_instruction():
    from vlprune.methods.base import ImageContext, LLMRow
    from vlprune.methods.views import LLMRowView

    row = LLMRow(0, [(1, 5)], 0, 4)
    view = LLMRowView(row, (1, 5), torch.randn(5, 8), torch.rand(5), torch.zeros(0, dtype=torch.int64),
                      torch.nn.Identity())
    ctx = ImageContext(0, 0, 0, 1, None, torch.arange(4).numpy())
    for name in ("dart", "mob"):
        with pytest.raises(ValueError, match=f"method '{name}': image 0 .* has no text after it"):
            create_method(name).select_in_row(ctx, None, view.hidden[1:5], view)
    # DART without text pivots does not need one
    kept = create_method("dart", pivot_text=0, retain=0.5).select_in_row(ctx, None, view.hidden[1:5], view)
    assert kept.numel() == 2

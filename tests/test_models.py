"""Model integration: every family x every registered pre-ViT method on tiny random models.

(a) keep-everything -> bit-identical logits and greedy generate; (b) kept tokens carry their unpruned
M-RoPE positions, decoding continues from the unpruned next position; (c) the ViT sees exactly the
kept patch rows with their original 2-D coordinates; (d) batch == single within 1e-4;
(e) nothing is left installed after the context exits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import FAMILIES, IMG, assert_same_state, build_batch, model_state, synthetic_image, tiny_model
from PIL import Image

from vlprune.api import apply
from vlprune.families import get_family
from vlprune.methods import list_methods

PRE_VIT = list_methods(stage="pre_vit")
GEN = dict(max_new_tokens=4, do_sample=False)


def _mixed_batch(family, seed=0):
    """Sample 0: two images; sample 1: one image (different kept counts), left-padded."""
    return build_batch(family, [
        {"text": [1, 2], "images": [synthetic_image(family, 4, 6, seed), synthetic_image(family, 2, 4, seed + 1)]},
        {"text": [3, 4, 5, 6], "images": [synthetic_image(family, 6, 4, seed + 2)], "after": [7, 8]},
    ])


def _capture_llm_positions(model):
    """Forward pre-hook on the decoder stack recording the position_ids of every call."""
    seen = []

    def hook(mod, args, kwargs):
        seen.append((kwargs["position_ids"].clone(), kwargs["inputs_embeds"].shape[1]))

    return seen, model.model.language_model.register_forward_pre_hook(hook, with_kwargs=True)


# ---------------------------------------------------------------- (a) nothing pruned == unmodified
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_full_is_bit_identical(family, attn):
    model = tiny_model(family, attn)
    b = _mixed_batch(family)
    with torch.no_grad():
        ref = model(**b).logits
        ref_gen = model.generate(**b, **GEN)
        with apply(model, "full") as run:
            out = model(**b).logits
            gen = model.generate(**b, **GEN)
    assert torch.equal(ref, out)
    assert torch.equal(ref_gen, gen)
    assert [s.tokens_after for s in run.stats] == [s.tokens_before for s in run.stats] == [24, 8, 24]


# ---------------------------------------------------------------- (b) positions
def _expected_kept_columns(b, run, family):
    """Per row: columns of the unpruned batch that must survive (text + kept image tokens)."""
    ids, am = b["input_ids"], b["attention_mask"].bool()
    cols = []
    img_cols = [torch.nonzero(ids[r] == IMG).view(-1) for r in range(ids.shape[0])]
    keep = am.clone()
    keep &= ids != IMG
    counts = (b["image_grid_thw"].prod(-1) // 4).tolist()
    per_row_pos = [0] * ids.shape[0]
    for i, sel in enumerate(run.last_prepared.selections):
        r = run.stats[i].sample
        c = img_cols[r][per_row_pos[r] : per_row_pos[r] + counts[i]]
        per_row_pos[r] += counts[i]
        keep[r, c[torch.from_numpy(sel.kept)]] = True
    for r in range(ids.shape[0]):
        cols.append(torch.nonzero(keep[r]).view(-1))
    return cols


@pytest.mark.parametrize("method", PRE_VIT)
@pytest.mark.parametrize("family", FAMILIES)
def test_kept_tokens_keep_unpruned_positions_and_decode(family, method):
    model = tiny_model(family)
    b = _mixed_batch(family)
    full_pos, full_delta = model.model.get_rope_index(
        b["input_ids"], b["mm_token_type_ids"], image_grid_thw=b["image_grid_thw"], attention_mask=b["attention_mask"])
    with torch.no_grad(), apply(model, method) as run:
        seen, h = _capture_llm_positions(model)
        try:
            model.generate(**b, max_new_tokens=3, do_sample=False)
        finally:
            h.remove()
        resized = any(s.resized is not None for s in run.stats)
        plan = run.last_prepared.plan
    prefill_pos = seen[0][0][-3:]  # (3, B, L') M-RoPE rows (text row dropped)
    am = plan.attention_mask.bool() if plan.attention_mask is not None else torch.ones_like(plan.input_ids).bool()
    if not resized:
        cols = _expected_kept_columns(b, run, family)
        for r, c in enumerate(cols):
            assert torch.equal(plan.input_ids[r][am[r]], b["input_ids"][r, c])
            assert torch.equal(prefill_pos[:, r][:, am[r]], full_pos[:, r, c])
        # decode continues from the unpruned sequence's next position (all three axes)
        nxt = full_pos.amax(dim=(0, 2)) + 1
    else:
        # Resize changes the input itself: positions are those of the downscaled image's prompt.
        nxt = _resized_reference_positions(model, family, b, run)
    for step, (pos, n) in enumerate(seen[1:]):
        assert n == 1
        assert torch.equal(pos[-3:, :, 0], (nxt + step).view(1, -1).expand(3, -1))


def _resized_images(family, b, run):
    from vlprune.grid import BlockGrid

    spec = get_family(family)
    grids = BlockGrid.from_pixel_values(b["pixel_values"], b["image_grid_thw"], spec)
    out = []
    for g, s in zip(grids, run.stats):
        img = g.image()
        if s.resized is not None:
            h, w = s.resized
            img = np.asarray(Image.fromarray(img).resize((w, h), resample=Image.Resampling.BICUBIC))
        out.append(img)
    return out


def _resized_reference_positions(model, family, b, run):
    imgs = _resized_images(family, b, run)
    rb = build_batch(family, [{"text": [1, 2], "images": imgs[:2]}, {"text": [3, 4, 5, 6], "images": imgs[2:], "after": [7, 8]}])
    pos, _ = model.model.get_rope_index(rb["input_ids"], rb["mm_token_type_ids"], image_grid_thw=rb["image_grid_thw"],
                                        attention_mask=rb["attention_mask"])
    return pos.amax(dim=(0, 2)) + 1


@pytest.mark.parametrize("family", FAMILIES)
def test_manual_decode_uses_unpruned_rope_deltas(family):
    """model(**inputs) then a cached step without position_ids: the model's rope_deltas continue
    from the unpruned next position (unpadded sample: upstream's own manual-decode path)."""
    model = tiny_model(family)
    b = build_batch(family, [{"text": [1, 2], "images": [synthetic_image(family, 4, 6, 0)], "after": [5]}])
    b.pop("attention_mask")
    full_pos, _ = model.model.get_rope_index(b["input_ids"], b["mm_token_type_ids"], image_grid_thw=b["image_grid_thw"])
    with torch.no_grad(), apply(model, "pixelprune") as run:
        out = model(**b, use_cache=True)
        assert run.last_prepared.plan.input_ids.shape[1] < b["input_ids"].shape[1]
        seen, h = _capture_llm_positions(model)
        try:
            nxt_tok = out.logits[:, -1].argmax(-1, keepdim=True)
            model(input_ids=nxt_tok, past_key_values=out.past_key_values)
        finally:
            h.remove()
    pos = seen[0][0][-3:, :, 0]
    assert torch.equal(pos, (full_pos.amax(dim=(0, 2)) + 1).view(1, -1).expand(3, -1))


# ---------------------------------------------------------------- (c) the ViT sees the kept rows
def _patch_coords(kept, gw_blocks, m=2):
    """Independent (h, w) patch coordinates of kept blocks, block-major (m x m inside a block)."""
    out = []
    for blk in kept.tolist():
        bh, bw = divmod(blk, gw_blocks)
        for i in range(m):
            for j in range(m):
                out.append((bh * m + i, bw * m + j))
    return torch.tensor(out)


@pytest.mark.parametrize("method", PRE_VIT)
@pytest.mark.parametrize("family", FAMILIES)
def test_vit_receives_exactly_the_kept_patches(family, method):
    model = tiny_model(family)
    b = _mixed_batch(family)
    vis = model.model.visual
    got = {}
    h1 = vis.patch_embed.register_forward_pre_hook(lambda m, a: got.__setitem__("rows", a[0].clone()))
    h2 = vis.rotary_pos_emb.register_forward_pre_hook(lambda m, a: got.__setitem__("pos", a[1].clone()))
    h3 = vis.blocks[-1].register_forward_pre_hook(
        lambda m, a, k: got.__setitem__("cu", k["cu_seqlens"].clone()), with_kwargs=True)
    try:
        with torch.no_grad(), apply(model, method) as run:
            model(**b)
    finally:
        for h in (h1, h2, h3):
            h.remove()
    sels = run.last_prepared.selections
    thw = b["image_grid_thw"].tolist()
    rows, coords, sizes, off = [], [], [], 0
    for (t, hh, ww), sel in zip(thw, sels):
        k = torch.from_numpy(sel.kept)
        if sel.resized is None:
            rows.append(b["pixel_values"][off + (k[:, None] * 4 + torch.arange(4)).reshape(-1)])
        coords.append(_patch_coords(sel.kept, sel.grid[1]))
        sizes.append(4 * len(sel.kept))
        off += t * hh * ww
    assert got["rows"].shape[0] == sum(sizes) < b["pixel_values"].shape[0] or method == "full"
    if all(s.resized is None for s in sels):
        assert torch.equal(got["rows"], torch.cat(rows).to(got["rows"].dtype))
    assert torch.equal(got["pos"].long(), torch.cat(coords))
    # full-attention layers: one segment per image over all of its kept patches
    if family != "qwen2.5-vl" or 1 in model.config.vision_config.fullatt_block_indexes:
        assert got["cu"].tolist() == np.concatenate([[0], np.cumsum(sizes)]).tolist()


@pytest.mark.parametrize("family", ["qwen3-vl", "qwen3.5"])
def test_interpolated_pos_embed_uses_original_coordinates(family):
    """Kept patches get the learned position embedding of their original (h, w) on the full grid."""
    from transformers.vision_utils import get_vision_interpolation_indices_and_weights

    model = tiny_model(family)
    b = _mixed_batch(family)
    vis = model.model.visual
    got = {}
    h = vis.pos_embed.register_forward_pre_hook(lambda m, a: got.__setitem__("idx", a[0].clone()))
    try:
        with torch.no_grad(), apply(model, "pixelprune") as run:
            model(**b)
    finally:
        h.remove()
    full_idx, _ = get_vision_interpolation_indices_and_weights(
        b["image_grid_thw"], vis.num_grid_per_side, mode="bilinear", align_corners=True, spatial_merge_size=2)
    exp, off = [], 0
    for (t, hh, ww), sel in zip(b["image_grid_thw"].tolist(), run.last_prepared.selections):
        k = torch.from_numpy(sel.kept)
        exp.append(full_idx[off + (k[:, None] * 4 + torch.arange(4)).reshape(-1)])
        off += hh * ww
    assert got["idx"].shape[0] < full_idx.shape[0]
    assert torch.equal(got["idx"], torch.cat(exp))


def test_qwen3_vl_deepstack_only_kept_tokens():
    model = tiny_model("qwen3-vl")
    b = _mixed_batch("qwen3-vl")
    got = {}
    lm = model.model.language_model
    h = lm.register_forward_pre_hook(
        lambda m, a, k: got.__setitem__("ds", (k["deepstack_visual_embeds"], k["visual_pos_masks"])), with_kwargs=True)
    try:
        with torch.no_grad(), apply(model, "pixelprune") as run:
            model(**b)
    finally:
        h.remove()
    ds, mask = got["ds"]
    n_kept = sum(s.tokens_after for s in run.stats)
    assert n_kept < sum(s.tokens_before for s in run.stats)
    assert int(mask.sum()) == n_kept and all(f.shape[0] == n_kept for f in ds)


def test_qwen2_vl_pruned_rectangle_equals_cropped_image():
    """Qwen2-VL's ViT only sees relative 2-D RoPE positions: keeping a block rectangle must give the
    same features as running the unmodified ViT on that crop (checks positions + per-image attention)."""
    from vlprune.methods.base import PreViTMethod

    family = "qwen2-vl"
    model = tiny_model(family)
    img = synthetic_image(family, 4, 6, seed=3)
    b = build_batch(family, [{"images": [img]}])

    class Rect(PreViTMethod):
        def select(self, grid):
            return np.array([i * 6 + j for i in range(1, 3) for j in range(2, 5)], dtype=np.int64)

    with torch.no_grad(), apply(model, Rect()) as run:
        model(**b)
        enc = run.last_prepared.kwargs["mm_encoder_outputs"]["image"].pooler_output[0]
    crop = img[28:84, 56:140]
    cb = build_batch(family, [{"images": [crop]}])
    with torch.no_grad():
        ref = model.model.get_image_features(cb["pixel_values"], cb["image_grid_thw"]).pooler_output[0]
    torch.testing.assert_close(enc, ref, atol=1e-5, rtol=1e-5)


def test_qwen2_5_windows_rebuilt_from_kept_blocks():
    from transformers.vision_utils import get_vision_window_index

    from vlprune.models.qwen2_5_vl import kept_windows

    thw = torch.tensor([[1, 8, 12], [1, 6, 4]])
    full = [np.arange(24), np.arange(6)]
    wi, cu = kept_windows(thw, full, 2, 56, 14)
    ref_wi, ref_cu = get_vision_window_index(thw, 2, 56, 14)
    assert torch.equal(wi, ref_wi) and torch.equal(cu, ref_cu)
    kept = [np.array([0, 1, 5, 7, 8, 13, 14, 23]), np.array([2, 3])]
    wi, cu = kept_windows(thw, kept, 2, 56, 14)
    flat = [(0, k) for k in kept[0]] + [(1, k) for k in kept[1]]
    gws = [6, 2]
    bounds = (cu // 4).tolist()
    seen = []
    for a, z in zip(bounds[:-1], bounds[1:]):
        members = [flat[int(i)] for i in wi[a:z]]
        wins = {(img, (k // gws[img]) // 2, (k % gws[img]) // 2) for img, k in members}
        assert len(wins) == 1 and z > a  # one non-empty window per segment
        seen += members
    assert sorted(seen) == sorted(flat)


# ---------------------------------------------------------------- (d) batch == single
@pytest.mark.parametrize("method", PRE_VIT)
@pytest.mark.parametrize("family", FAMILIES)
def test_batch_matches_single(family, method):
    model = tiny_model(family)
    samples = [
        {"text": [1, 2], "images": [synthetic_image(family, 4, 6, 0), synthetic_image(family, 2, 4, 1)]},
        {"text": [3, 4, 5, 6], "images": [synthetic_image(family, 6, 4, 2)], "after": [7, 8]},
    ]
    with torch.no_grad(), apply(model, method) as run:
        b = build_batch(family, samples)
        out = model(**b).logits
        plan = run.last_prepared.plan
        per = [s.tokens_after for s in run.stats]
        singles = []
        for s in samples:
            sb = build_batch(family, [s])
            singles.append(model(**sb).logits[0])
    am = plan.attention_mask.bool() if plan.attention_mask is not None else torch.ones(out.shape[:2], dtype=torch.bool)
    for r in range(2):
        torch.testing.assert_close(out[r][am[r]], singles[r], atol=1e-4, rtol=0)
    if method not in ("full", "resize"):
        assert per != [24, 8, 24]


@pytest.mark.parametrize("family", FAMILIES)
def test_text_only_sample_in_batch(family):
    model = tiny_model(family)
    samples = [{"text": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, {"text": [3, 4], "images": [synthetic_image(family, 4, 6, 5)]}]
    with torch.no_grad(), apply(model, "pixelprune") as run:
        out = model(**build_batch(family, samples)).logits
        plan = run.last_prepared.plan
        single_img = model(**build_batch(family, samples[1:])).logits[0]
    single_txt = model(**build_batch(family, samples[:1])).logits[0]
    am = plan.attention_mask.bool()
    torch.testing.assert_close(out[0][am[0]], single_txt, atol=1e-4, rtol=0)
    torch.testing.assert_close(out[1][am[1]], single_img, atol=1e-4, rtol=0)
    assert run.stats[0].tokens_after < run.stats[0].tokens_before


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_batch_matches_single(family):
    model = tiny_model(family)
    samples = [{"text": [1, 2], "images": [synthetic_image(family, 4, 6, 0)]},
               {"text": [3, 4, 5, 6, 7], "images": [synthetic_image(family, 6, 4, 2)]}]
    with torch.no_grad(), apply(model, "pixelprune"):
        b = build_batch(family, samples)
        gen = model.generate(**b, **GEN)
        new = gen[:, b["input_ids"].shape[1]:]
        assert torch.equal(gen[:, : b["input_ids"].shape[1]], b["input_ids"])  # caller's prompt restored
        for r, s in enumerate(samples):
            sb = build_batch(family, [s])
            g1 = model.generate(**sb, **GEN)
            assert torch.equal(g1[0, sb["input_ids"].shape[1]:], new[r])


def test_resize_matches_processor_on_downscaled_image():
    """Resize baseline: same logits as the unmodified model given the downscaled image."""
    family = "qwen2-vl"
    model = tiny_model(family)
    b = build_batch(family, [{"images": [synthetic_image(family, 6, 8, 4)]}])
    with torch.no_grad(), apply(model, "resize") as run:
        out = model(**b).logits
    assert run.stats[0].resized is not None and run.stats[0].tokens_after < run.stats[0].tokens_before
    imgs = _resized_images(family, b, run)
    with torch.no_grad():
        ref = model(**build_batch(family, [{"images": imgs}])).logits
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- videos: passed through untouched
def _video_batch(family, t=2, gh=2, gw=3):
    spec = get_family(family)
    b = build_batch(family, [{"text": [1, 2], "images": [synthetic_image(family, 4, 6, 0)]}])
    torch.manual_seed(0)
    n_frame = gh * gw
    vids = torch.randn(t * gh * 2 * gw * 2, 3 * spec.temporal_patch_size * spec.patch_size**2)
    from model_fixtures import VE, VID, VS
    if family in ("qwen3-vl", "qwen3.5"):
        extra = sum(([VS] + [VID] * n_frame + [VE, 20] for _ in range(t)), [])
    else:
        extra = [VS] + [VID] * (t * n_frame) + [VE, 20]
    ids = torch.cat([b["input_ids"], torch.tensor([extra])], 1)
    b["input_ids"] = ids
    b["attention_mask"] = torch.ones_like(ids)
    b["mm_token_type_ids"] = (ids == IMG).int() + 2 * (ids == VID).int()
    b["pixel_values_videos"] = vids
    b["video_grid_thw"] = torch.tensor([[t, gh * 2, gw * 2]])
    return b, VID


@pytest.mark.parametrize("family", FAMILIES)
def test_videos_pass_through_untouched(family):
    model = tiny_model(family)
    b, vid = _video_batch(family)
    with torch.no_grad():
        ref = model(**b).logits
        with apply(model, "full"):
            same = model(**b).logits
        with apply(model, "pixelprune") as run:
            model(**b)
            plan = run.last_prepared.plan
    assert torch.equal(ref, same)
    assert int((plan.input_ids == vid).sum()) == int((b["input_ids"] == vid).sum())
    assert run.last.videos_passed_through == 1
    assert run.stats[0].tokens_after < run.stats[0].tokens_before


# ---------------------------------------------------------------- (e) clean exit
@pytest.mark.parametrize("family", FAMILIES)
def test_nothing_left_after_exit(family):
    model = tiny_model(family)
    b = _mixed_batch(family)
    model.model.rope_deltas = None
    before = model_state(model)
    with torch.no_grad(), apply(model, "pixelprune"):
        inside = model_state(model)
        model(**b)
        model.generate(**b, max_new_tokens=2, do_sample=False)
    assert inside["hooks"] != before["hooks"] and not inside["generate"]  # really installed
    assert_same_state(before, model_state(model))
    with pytest.raises(RuntimeError, match="boom"):
        with apply(model, "pixelprune"):
            raise RuntimeError("boom")
    assert_same_state(before, model_state(model))
    with torch.no_grad():  # and the model still runs unpruned
        assert model(**b).logits.shape[1] == b["input_ids"].shape[1]


# ---------------------------------------------------------------- bad input: clear errors, no compute
def _vit_never_runs(model):
    calls = []
    return calls, model.model.visual.register_forward_pre_hook(lambda m, a: calls.append(1))


def test_unsupported_family_and_no_vision_tower():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(ValueError, match="unsupported model family"):
        with apply(lm, "full"):
            pass
    from vlprune.models.configs import build_model

    m = build_model("qwen2-vl")
    del m.model.visual
    with pytest.raises(ValueError, match="no vision tower"):
        with apply(m, "full"):
            pass
    assert "generate" not in m.__dict__


def test_processor_model_mismatch():
    from model_fixtures import image_processor

    model = tiny_model("qwen2-vl")
    with pytest.raises(ValueError, match="patch_size"):
        with apply(model, "full", processor=image_processor("qwen3-vl")):
            pass
    # pixel_values patchified for 16-px patches fed to a 14-px model
    b = build_batch("qwen3-vl", [{"images": [synthetic_image("qwen3-vl", 2, 2)]}])
    calls, h = _vit_never_runs(model)
    try:
        with torch.no_grad(), apply(model, "pixelprune"), pytest.raises(ValueError, match="patch size"):
            model(**b)
    finally:
        h.remove()
    assert not calls


@pytest.mark.parametrize("family", FAMILIES)
def test_grid_token_disagreement_raises_before_compute(family):
    model = tiny_model(family)
    b = _mixed_batch(family)
    ids = b["input_ids"].clone()
    first = int(torch.nonzero(ids[0] == IMG)[0])
    ids[0, first] = 7  # one image token short
    b["input_ids"] = ids
    calls, h = _vit_never_runs(model)
    try:
        with torch.no_grad(), apply(model, "pixelprune"):
            with pytest.raises(ValueError, match="image grids disagree"):
                model(**b)
            with pytest.raises(ValueError, match="image grids disagree"):
                model.generate(**b, max_new_tokens=2)
    finally:
        h.remove()
    assert not calls


def test_unknown_method_and_stage():
    model = tiny_model("qwen2-vl")
    with pytest.raises(ValueError, match="unknown method"):
        with apply(model, "no-such-method"):
            pass
    assert "generate" not in model.__dict__

"""Method options the papers' ablations need: FastV's query rows (``queries="all"``), SSP's random fill and
``rho=0``, TAR's uniform allocation, and PixelPrune's keep set applied inside the vision encoder
(``after_block``) -- each against a hand-computed or independently computed expectation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import FAMILIES, IMG, build_batch, image_processor, kept_of, synthetic_image, tiny_model

from vlprune.algorithms.ssp import ssp_select
from vlprune.algorithms.tar import tar_plan
from vlprune.api import apply
from vlprune.methods import create_method
from vlprune.methods.base import LLMRow


# ---------------------------------------------------------------------------------------------- FastV
def test_fastv_queries_option():
    row = LLMRow(0, [(3, 9)], first=1, last=12)
    assert create_method("fastv").queries(row) == [12]
    assert create_method("fastv", queries="all").queries(row) == list(range(1, 13))
    assert "queries='all'" in create_method("fastv", queries="all").describe()
    with pytest.raises(ValueError, match="option queries must be one of last, all"):
        create_method("fastv", queries="text")


def test_fastv_all_queries_rank_by_mean_attention_from_every_token():
    """queries="all" keeps the tokens with the highest attention averaged over heads and every token's row at
    layer K - 1, computed here from eager attention weights of the unmodified model."""
    family = "qwen2-vl"
    model = tiny_model(family, "eager")
    img = synthetic_image(family, 4, 6, 3)
    b = build_batch(family, [{"images": [img]}])
    with torch.no_grad():
        att = model(**b, output_attentions=True).attentions[1][0]  # layer K - 1 = 1: (heads, L, L)
        with apply(model, create_method("fastv", queries="all", retain=0.25), processor=image_processor(family)) as run:
            model(**b)
    cols = torch.nonzero(b["input_ids"][0] == IMG).view(-1)
    scores = att.mean(0)[:, cols].mean(0)  # every row is a query (one unpadded sample)
    k = kept_of(len(cols), "1/4")
    want = torch.sort(torch.sort(scores, descending=True, stable=True).indices[:k]).values
    assert run.last.llm_query_rows == [b["input_ids"].shape[1]]
    assert run.stats[0].kept_blocks.tolist() == want.tolist()


# ---------------------------------------------------------------------------------------------- SSP
GRID = (4, 4)
#: foreground = the top two rows; importance rises with the index
FG = np.array([True] * 8 + [False] * 8)
IMPORTANCE = np.arange(16, dtype=float)


def test_ssp_rho_zero_has_no_background_stratum():
    # mu 0.5: M = 8; floor(0.5 * 8) = 4 foreground (top importance: 4..7); rho 0: no background; 4 grid
    sel = ssp_select(IMPORTANCE, FG, 0.5, 0.0, grid_shape=GRID)
    assert sel.fg_top.tolist() == [4, 5, 6, 7] and sel.bg_top.size == 0
    assert sel.budget == 8 and sel.kept.size == 8 and sel.grid.size == 4
    with_bg = ssp_select(IMPORTANCE, FG, 0.5, 0.5, grid_shape=GRID)  # floor(0.5 * 0.5 * 8) = 2: tokens 14, 15
    assert with_bg.bg_top.tolist() == [14, 15]
    assert create_method("ssp", rho=0.0).rho == 0.0 and create_method("guipruner", rho=0.0).components()[1].rho == 0.0
    with pytest.raises(ValueError, match=r"rho must be in \[0, 1\]"):
        create_method("ssp", rho=-0.1)


def test_ssp_random_fill_is_seeded_and_draws_from_the_rest():
    grid = ssp_select(IMPORTANCE, FG, 0.5, 0.5, grid_shape=GRID)
    rnd = [ssp_select(IMPORTANCE, FG, 0.5, 0.5, grid_shape=GRID, fill="random", seed=s) for s in (0, 0, 1, 2)]
    for sel in rnd:  # the saliency strata are untouched; the fill picks 2 of the other 10 tokens
        assert sel.fg_top.tolist() == [4, 5, 6, 7] and sel.bg_top.tolist() == [14, 15]
        assert sel.grid.size == 2 and not set(sel.grid.tolist()) & {4, 5, 6, 7, 14, 15}
    assert rnd[0].grid.tolist() == rnd[1].grid.tolist()
    assert len({tuple(s.grid.tolist()) for s in rnd} | {tuple(grid.grid.tolist())}) > 1
    assert create_method("guipruner", fill="random", seed=3).components()[1].fill == "random"
    with pytest.raises(ValueError, match="option fill must be one of grid, random"):
        create_method("ssp", fill="spiral")


# ---------------------------------------------------------------------------------------------- TAR
def test_tar_uniform_allocation_scales_every_frame_alike():
    # qwen2-vl blocks of 28 px: 280 px = 10 x 10 = 100 tokens, 560 px = 400 tokens; lam 0.25, B = 125
    sizes = [(280, 280), (560, 560)]  # oldest first
    uniform = [f.tokens_after for f in tar_plan(sizes, 0.25, 0.2, "qwen2-vl", allocation="uniform")]
    linear = [f.tokens_after for f in tar_plan(sizes, 0.25, 0.2, "qwen2-vl")]
    assert uniform == [25, 100]  # each keeps a quarter: 5 x 5 and 10 x 10
    assert linear == [16, 100]   # quotas 125 * 0.2 / 1.2 = 20.8 -> 4 x 4, and 125 / 1.2 = 104.2 -> 10 x 10
    same = [(280, 280)] * 3  # frames of one size: uniform == gamma 1
    assert ([f.target for f in tar_plan(same, 0.25, 0.2, "qwen2-vl", allocation="uniform")]
            == [f.target for f in tar_plan(same, 0.25, 1.0, "qwen2-vl")])
    assert create_method("guipruner", allocation="uniform").components()[0].allocation == "uniform"
    with pytest.raises(ValueError, match="option allocation must be one of linear, uniform"):
        create_method("tar", allocation="decay")


# ---------------------------------------------------------------------------------------------- in-ViT pruning
def _encoded(model, family, batch, method):
    with torch.no_grad(), apply(model, method, processor=image_processor(family)) as run:
        logits = model(**batch).logits
        enc = run.last_prepared.kwargs["mm_encoder_outputs"]["image"]
        deep = [[t.clone() for t in f] for f in (getattr(enc, "deepstack_features", None) or [])]
        return [p.clone() for p in enc.pooler_output], deep, logits, run.stats


def _batch(family, noise=False):
    if noise:  # no two blocks alike: PixelPrune keeps everything
        rng = np.random.default_rng(5)
        b = 32 if family in ("qwen3-vl", "qwen3.5") else 28
        imgs = [rng.integers(0, 256, (4 * b, 6 * b, 3), dtype=np.uint8), rng.integers(0, 256, (6 * b, 4 * b, 3), dtype=np.uint8)]
    else:
        imgs = [synthetic_image(family, 4, 6, 0), synthetic_image(family, 6, 4, 2)]
    return build_batch(family, [{"images": imgs[:1]}, {"images": imgs[1:]}])


@pytest.mark.parametrize("family", FAMILIES)
def test_after_block_keep_all_is_bit_identical(family):
    model = tiny_model(family)
    b = _batch(family, noise=True)
    with torch.no_grad():
        ref = model(**b).logits
    _, _, out, stats = _encoded(model, family, b, create_method("pixelprune", after_block=0))
    assert all(s.tokens_after == s.tokens_before for s in stats)
    assert torch.equal(ref, out)


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_after_last_block_equals_the_full_encoder_cut_to_the_keep_set(family):
    """Pruning after the last block = the unpruned encoder's outputs (DeepStack features too) at the kept
    tokens; the ViT saw every block, the LLM only the kept ones."""
    model = tiny_model(family)
    b = _batch(family)
    full, full_deep, _, _ = _encoded(model, family, b, "full")
    before, _, _, st = _encoded(model, family, b, create_method("pixelprune"))
    last, last_deep, _, st_last = _encoded(model, family, b, create_method("pixelprune", after_block=-1))
    for i, s in enumerate(st):
        kept = torch.as_tensor(s.kept_blocks)
        assert kept.numel() < s.tokens_before
        torch.testing.assert_close(last[i], full[i][kept], atol=1e-6, rtol=0)
        assert not torch.allclose(before[i], last[i], atol=1e-6)  # pre-ViT pruning gives other features
        for f, g in zip(last_deep, full_deep):
            torch.testing.assert_close(f[i], g[i][kept], atol=1e-6, rtol=0)
        assert len(st_last[i].vit_blocks) == s.tokens_before and st_last[i].tokens_after == kept.numel()


def _block_io(model, batch) -> dict:
    """Unmodified run: vision block 0's output (``h0``) and the kwargs block 1 is called with (``kw``)."""
    visual, captured = model.model.visual, {}
    h0 = visual.blocks[0].register_forward_hook(lambda m, a, out: captured.update(h0=out))
    h1 = visual.blocks[1].register_forward_pre_hook(lambda m, a, kw: captured.update(kw=dict(kw)), with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        h0.remove()
        h1.remove()
    return captured


def test_after_block_zero_matches_a_manual_two_stage_encoder():
    """Qwen2-VL: block 0 on every patch, then block 1 and the merger on the kept patches' rows only, with
    their own attention segments and rotary rows -- computed here by calling the tower's modules directly."""
    family = "qwen2-vl"
    model = tiny_model(family)
    b = build_batch(family, [{"images": [synthetic_image(family, 4, 6, 0)]}])
    visual = model.model.visual
    captured = _block_io(model, b)
    pruned, _, _, stats = _encoded(model, family, b, create_method("pixelprune", after_block=0))
    kept = torch.as_tensor(stats[0].kept_blocks)
    rows = (kept[:, None] * 4 + torch.arange(4)).reshape(-1)
    kw = captured["kw"]
    cos, sin = kw["position_embeddings"]
    cu = torch.tensor([0, rows.numel()], dtype=torch.int32)
    with torch.no_grad():
        x = visual.blocks[1](captured["h0"][rows], cu_seqlens=cu, max_seqlen=kw.get("max_seqlen") and rows.numel(),
                             position_embeddings=(cos[rows], sin[rows]))
        want = visual.merger(x)
    torch.testing.assert_close(pruned[0], want, atol=1e-6, rtol=0)


def test_after_block_outside_the_encoder_is_refused():
    model = tiny_model("qwen2-vl")  # 2 vision blocks
    with pytest.raises(ValueError, match=r"after_block=2 is outside the vision encoder's 2 blocks \(0 \.\. 1"):
        with apply(model, create_method("pixelprune", after_block=2), processor=image_processor("qwen2-vl")):
            pass
    with pytest.raises(ValueError, match=r"option after_block must be an integer in \[-1, inf\]"):
        create_method("pixelprune", after_block=-2)


def test_after_block_windowed_blocks_attend_within_kept_windows():
    """Qwen2.5-VL with block 1 windowed: after block 0 each kept token attends to the kept tokens of its own
    window (the upstream window partition, ``get_vision_window_index``), checked window by window."""
    from transformers import AutoModelForImageTextToText
    from transformers.vision_utils import get_vision_window_index

    from vlprune.models.configs import build_config

    family = "qwen2.5-vl"
    cfg = build_config(family, "tiny")
    cfg.vision_config.fullatt_block_indexes = [0]  # block 1 is windowed
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(cfg).eval()
    b = build_batch(family, [{"images": [synthetic_image(family, 4, 6, 0)]}])
    visual, captured = model.model.visual, _block_io(model, b)
    pruned, _, _, stats = _encoded(model, family, b, create_method("pixelprune", after_block=0))
    kept = set(stats[0].kept_blocks.tolist())
    order, cu = get_vision_window_index(b["image_grid_thw"], 2, visual.window_size, visual.patch_size)
    cos, sin = captured["kw"]["position_embeddings"]
    want = {}
    for w in range(len(cu) - 1):
        pos = [p for p in range(int(cu[w]) // 4, int(cu[w + 1]) // 4) if int(order[p]) in kept]
        if not pos:
            continue
        rows = (torch.tensor(pos)[:, None] * 4 + torch.arange(4)).reshape(-1)
        with torch.no_grad():
            x = visual.blocks[1](captured["h0"][rows], cu_seqlens=torch.tensor([0, rows.numel()], dtype=torch.int32),
                                 max_seqlen=rows.numel(), position_embeddings=(cos[rows], sin[rows]))
            for p, feat in zip(pos, visual.merger(x)):
                want[int(order[p])] = feat
    assert len(cu) - 1 > 1 and len(want) == len(kept)  # several windows
    torch.testing.assert_close(pruned[0], torch.stack([want[k] for k in sorted(kept)]), atol=1e-5, rtol=0)

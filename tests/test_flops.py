"""vlprune.flops (analytic FLOPs / KV cache) against torch's FLOP counter on small configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlprune import flopcount, flops
from vlprune.flops import ImageTokens, LLMPrune, Prompt

TOL = 0.02  # the issue's bound; on these configs the match is exact up to Qwen3.5's conv1d padding

_MROPE = {"rope_type": "default", "mrope_section": [2, 2, 2], "rope_theta": 1e6}


def tiny_config(model_type: str):
    """A few-layer config of each family with the real patch/merge/window/deepstack structure."""
    from transformers import CONFIG_MAPPING

    ids = dict(image_token_id=100, video_token_id=101, vision_start_token_id=102, vision_end_token_id=103)
    text = dict(hidden_size=48, intermediate_size=80, num_hidden_layers=4, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=160, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)  # fmt: skip
    if model_type == "qwen2_vl":
        vision = dict(depth=2, embed_dim=32, mlp_ratio=2, num_heads=2, hidden_size=48)
        text["rope_parameters"] = _MROPE
    elif model_type == "qwen2_5_vl":  # window 56 px = 2x2 blocks; layer 1 full attention
        vision = dict(depth=3, hidden_size=32, intermediate_size=40, num_heads=2, out_hidden_size=48,
                      window_size=56, fullatt_block_indexes=[1])  # fmt: skip
        text["rope_parameters"] = _MROPE
    elif model_type == "qwen3_vl":
        vision = dict(depth=3, hidden_size=32, intermediate_size=40, num_heads=2, out_hidden_size=48,
                      num_position_embeddings=64, deepstack_visual_indexes=[0, 1])  # fmt: skip
        text.update(head_dim=16, rope_parameters={**_MROPE, "mrope_section": [4, 2, 2], "mrope_interleaved": True})
    elif model_type in ("qwen3_vl_moe", "qwen3_5_moe"):  # routed experts; layer 0 dense in Qwen3-VL-MoE
        base = tiny_config(model_type.removesuffix("_moe"))
        text = {**base.text_config.to_dict(), **text}
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)
        if model_type == "qwen3_vl_moe":
            text.update(mlp_only_layers=[0], decoder_sparse_step=1)
        else:
            text.update(shared_expert_intermediate_size=16)
        for k in ("model_type", "architectures", "transformers_version"):
            text.pop(k, None)
        return CONFIG_MAPPING[model_type](vision_config=base.vision_config.to_dict(), text_config=text, **ids)
    else:  # qwen3_5: hybrid linear / full attention, GQA-style value heads (4 v-heads over 2 k-heads)
        vision = dict(depth=2, hidden_size=32, intermediate_size=40, num_heads=2, out_hidden_size=48,
                      num_position_embeddings=64)  # fmt: skip
        text.update(head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                    linear_value_head_dim=12, linear_conv_kernel_dim=4,
                    layer_types=["linear_attention", "full_attention"] * 2,
                    rope_parameters={**_MROPE, "mrope_section": [2, 1, 1], "mrope_interleaved": True,
                                     "partial_rotary_factor": 0.5})  # fmt: skip
    return CONFIG_MAPPING[model_type](vision_config=vision, text_config=text, **ids)


FAMILIES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_5"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matmuls: one thread is ~100x faster than oversubscribed intra-op threads on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request):
    cfg = tiny_config(request.param)
    torch.manual_seed(0)
    return cfg, flopcount.build_model(cfg, device="cpu", attn_implementation="eager")


def _random_kept(grid, retain, seed):
    t, h, w = grid
    n = t * (h // 2) * (w // 2)
    k = max(1, int(round(retain * n)))
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def _cases():
    """(name, prompt): full and pruned inputs at several sizes; text lengths avoid model dimensions."""
    g1, g2, g3 = (1, 12, 20), (1, 16, 16), (1, 8, 8)
    return [
        ("full-small", Prompt([ImageTokens(g3)], 37)),
        ("full-large", Prompt([ImageTokens(g1)], 37)),
        ("full-video", Prompt([ImageTokens((2, 8, 12))], 21)),
        ("previt-30%", Prompt([ImageTokens(g1, kept=_random_kept(g1, 0.3, 0))], 37)),
        ("previt-60%-2img", Prompt([ImageTokens(g2, kept=_random_kept(g2, 0.6, 1)), ImageTokens(g3, kept=_random_kept(g3, 0.5, 2))], 29)),
        ("previt-count", Prompt([ImageTokens(g2, kept=17)], 37)),
        ("tar-history", Prompt([ImageTokens(g1), ImageTokens((1, 8, 12)), ImageTokens((1, 4, 8))], 53)),
        ("llm-k2", Prompt([ImageTokens(g1)], 37, llm_prune=LLMPrune(2, 20))),
        ("llm-k0", Prompt([ImageTokens(g2)], 37, llm_prune=LLMPrune(0, 9))),
        ("previt+llm", Prompt([ImageTokens(g2, kept=_random_kept(g2, 0.5, 3))], 37, llm_prune=LLMPrune(3, 11))),
    ]  # fmt: skip


def _rel(a, b):
    return abs(a - b) / max(b, 1)


@pytest.mark.parametrize("model_type", ["qwen3_vl_moe", "qwen3_5_moe"])
def test_moe_model_types_match_flop_counter(model_type):
    """MoE model types belong to their family everywhere: the FLOPs model counts router, routed experts
    (top-k per token) and the shared expert exactly as torch's counter does on the real forward."""
    cfg = tiny_config(model_type)
    torch.manual_seed(0)
    model = flopcount.build_model(cfg, device="cpu", attn_implementation="eager")
    ts = flops.text_shape(cfg)
    assert ts.experts == 4 and ts.top_k == 2 and (0 not in ts.moe_layers) == (model_type == "qwen3_vl_moe")
    for prompt in (Prompt([ImageTokens((1, 8, 12))], 37), Prompt([ImageTokens((1, 8, 12), kept=9)], 37, llm_prune=LLMPrune(2, 5))):
        measured = flopcount.count_prefill(model, prompt, logits_to_keep=1)
        est = flops.prefill_flops(cfg, prompt, logits_to_keep=1)
        assert _rel(est.llm, measured.llm) < TOL and _rel(est.total, measured.total) < TOL


@pytest.mark.parametrize("name,prompt", _cases(), ids=[c[0] for c in _cases()])
def test_prefill_matches_flop_counter(tiny, name, prompt):
    cfg, model = tiny
    measured = flopcount.count_prefill(model, prompt, logits_to_keep=1)
    est = flops.prefill_flops(cfg, prompt, logits_to_keep=1)
    assert _rel(est.vit + est.merger, measured.vision) < TOL, (est, measured)
    assert _rel(est.llm, measured.llm) < TOL, (est, measured)
    assert est.lm_head == measured.lm_head
    assert _rel(est.total, measured.total) < TOL
    if "count" not in name or cfg.model_type != "qwen2_5_vl":  # Qwen2.5-VL windows from a bare count are estimated
        assert est.vit + est.merger == measured.vision


def test_lm_head_all_positions(tiny):
    cfg, model = tiny
    prompt = Prompt([ImageTokens((1, 8, 8))], 37)
    measured = flopcount.count_prefill(model, prompt, logits_to_keep=0)
    est = flops.prefill_flops(cfg, prompt, logits_to_keep=0)
    assert est.lm_head == measured.lm_head == 2 * (37 + 16) * 48 * 160


@pytest.mark.parametrize("kept", [None, 7])
def test_decode_step_matches_flop_counter(tiny, kept):
    cfg, model = tiny
    prompt = Prompt([ImageTokens((1, 12, 20), kept=kept)], 37)
    measured = flopcount.count_decode_step(model, prompt)
    est = flops.decode_flops(cfg, prompt)
    # HF's recurrent gated-delta step is elementwise (mul + sum), which torch's counter does not see.
    assert _rel(est.total - est.llm_state, measured.total) < TOL
    assert (est.llm_state > 0) == (cfg.model_type == "qwen3_5")


def test_kv_cache_matches_dynamic_cache(tiny):
    cfg, model = tiny
    prompt = Prompt([ImageTokens((1, 12, 20), kept=_random_kept((1, 12, 20), 0.4, 5))], 37)
    n = 37 + len(prompt.images[0].kept)
    lm = model.model.language_model
    with torch.no_grad():
        cache = lm(inputs_embeds=torch.randn(1, n, 48), use_cache=True).past_key_values
    nbytes = lambda t: t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0  # noqa: E731
    kv = state = 0
    for layer in cache.layers:
        kv += nbytes(getattr(layer, "keys", None)) + nbytes(getattr(layer, "values", None))
        for name in ("conv_states", "recurrent_states"):  # Qwen3.5 linear layers: {state_idx: tensor}
            state += sum(nbytes(t) for t in (getattr(layer, name, None) or {}).values())
    est = flops.kv_cache_bytes(cfg, prompt, dtype="float32", state_dtype="float32")
    assert est.kv_bytes == kv
    assert est.state_bytes == state


def test_llm_prune_shrinks_later_layers_only():
    cfg = tiny_config("qwen3_vl")
    prompt = Prompt([ImageTokens((1, 12, 20))], 37, llm_prune=(2, 20))
    kv = flops.kv_cache_bytes(cfg, prompt, dtype="bf16")
    assert kv.tokens_per_layer == (97, 97, 57, 57)
    assert kv.kv_bytes == sum(2 * 2 * 16 * n * 2 for n in kv.tokens_per_layer)
    later = flops.decode_flops(cfg, prompt, step=5)
    assert later.llm_attn == sum(4 * 16 * 4 * (n + 5 + 1) for n in kv.tokens_per_layer)


def test_causal_pairs_and_sliding_window():
    cfg = tiny_config("qwen3_vl")
    prompt = Prompt([], 100)
    dense = flops.prefill_flops(cfg, prompt)
    causal = flops.prefill_flops(cfg, prompt, count_masked=False)
    assert dense.llm_attn == 4 * 4 * 16 * 4 * 100 * 100
    assert causal.llm_attn == 4 * 4 * 16 * 4 * 100 * 101 // 2
    assert flops.count._attn_pairs(5, 0, 2, False) == 1 + 2 + 2 + 2 + 2


def test_qwen2_5_windows_exact_from_indices():
    cfg = tiny_config("qwen2_5_vl")
    vs = flops.vision_shape(cfg)
    assert vs.window_blocks == 2 and vs.full_layers == {1}
    # 6x10 blocks, windows 2x2 blocks; keep the top-left window's 4 blocks and one lone block
    kept = np.array([0, 1, 10, 11, 59])
    est = flops.prefill_flops(cfg, Prompt([ImageTokens((1, 12, 20), kept=kept)], 1))
    d, full, windowed = 32, 1, 2
    assert est.vit_attn == 4 * d * (full * 20**2 + windowed * (16**2 + 4**2))


def test_table4_grid_and_retain():
    im = flops.image_tokens_for_size(1616, 2716, "qwen3-vl", retain=0.262)
    assert im.grid_thw == (1, 100, 170) and im.kept == 1114


def test_real_size_qwen3_vl_2b_on_meta():
    from vlprune.shapes import build_config

    cfg = build_config("qwen3-vl-2b")
    model = flopcount.build_model(cfg, device="meta", attn_implementation="sdpa")
    grid = (1, 40, 64)
    for prompt in (Prompt([ImageTokens(grid)], 64), Prompt([ImageTokens(grid, kept=_random_kept(grid, 0.3, 0))], 64, llm_prune=(2, 100))):
        measured = flopcount.count_prefill(model, prompt)
        assert flops.prefill_flops(cfg, prompt).total == measured.total


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Prompt([ImageTokens((1, 12, 20), kept=61)], 1), "larger than the image's 60 blocks"),
        (lambda: ImageTokens((1, 12, 20), kept=-1), "kept must be >= 0"),
        (lambda: ImageTokens((1, 12, 20), kept=[3, 1]), "sorted"),
        (lambda: Prompt([ImageTokens((1, 12, 20), kept=[1, 60])], 1), "out of range"),
        (lambda: ImageTokens((1, 0, 20)), "grid_thw"),
        (lambda: Prompt([ImageTokens((1, 13, 20))], 1), "multiples of the merge size"),
        (lambda: Prompt([ImageTokens((1, 8, 8))], -3), "text_tokens"),
        (lambda: Prompt([], 0), "no tokens"),
        (lambda: Prompt([ImageTokens((1, 8, 8))], 5, llm_prune=(9, 1)), r"LLMPrune.layer = 9"),
        (lambda: Prompt([ImageTokens((1, 8, 8))], 5, llm_prune=(1, 17)), r"LLMPrune.kept_visual = 17"),
        (lambda: Prompt([ImageTokens((1, 8, 8))], 5, llm_prune=(1, -1)), r"LLMPrune.kept_visual = -1"),
    ],
)
def test_bad_inputs(make, match):
    cfg = tiny_config("qwen3_vl")
    with pytest.raises(ValueError, match=match):
        flops.prefill_flops(cfg, make())


def test_bad_config_and_options():
    cfg = tiny_config("qwen3_vl")
    prompt = Prompt([ImageTokens((1, 8, 8))], 5)
    cfg_other = tiny_config("qwen3_vl")
    cfg_other.model_type = "llava"
    with pytest.raises(ValueError, match="unknown config.model_type 'llava'"):
        flops.prefill_flops(cfg_other, prompt)
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        flops.kv_cache_bytes(cfg, prompt, dtype="int3")
    with pytest.raises(ValueError, match="logits_to_keep"):
        flops.prefill_flops(cfg, prompt, logits_to_keep=-1)
    with pytest.raises(ValueError, match="step"):
        flops.decode_flops(cfg, prompt, step=-1)
    with pytest.raises(ValueError, match="retain"):
        flops.image_tokens_for_size(100, 100, retain=1.5)
    from vlprune.shapes import get_shape

    with pytest.raises(ValueError, match="unknown shape 'qwen9-vl'"):
        get_shape("qwen9-vl")


def _page_request(cfg, gh: int = 6, gw: int = 10, seed: int = 0) -> tuple[dict, tuple[int, int, int], int]:
    """A batch-1 request of one flat page with noisy blocks (prunable), built with the family's real image
    processor in the tiny config's vocabulary. Returns (model inputs, grid_thw, text tokens)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from vlprune.families import get_family

    spec = get_family(cfg.model_type)
    b = spec.block
    rng = np.random.default_rng(seed)
    img = np.full((gh * b, gw * b, 3), 235, np.uint8)
    for i, j in zip(rng.integers(0, gh, 12), rng.integers(0, gw, 12)):  # noisy blocks on a flat page
        img[i * b : (i + 1) * b, j * b : (j + 1) * b] = rng.integers(0, 256, (b, b, 3))
    proc = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
        size={"shortest_edge": b**2, "longest_edge": b**2 * 400},
    )(images=[img], return_tensors="pt")  # fmt: skip
    ids = [5, 6, 7, cfg.vision_start_token_id] + [cfg.image_token_id] * (gh * gw) + [cfg.vision_end_token_id, 8, 9, 10]
    inputs = dict(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                  pixel_values=proc["pixel_values"], image_grid_thw=proc["image_grid_thw"])  # fmt: skip
    return inputs, tuple(int(x) for x in proc["image_grid_thw"][0]), len(ids) - gh * gw


def test_real_integration_apply_pixelprune(tiny):
    """The real pruned forward (``vlprune.apply`` + PixelPrune) against the analytic count of its kept blocks."""
    from vlprune.api import apply

    cfg, model = tiny
    inputs, grid, text = _page_request(cfg)
    with torch.no_grad(), apply(model, "pixelprune") as session, flopcount._counter() as fc:
        model(**inputs, logits_to_keep=1)
    kept = session.last_prepared.selections[0].kept
    assert 0 < len(kept) < 60
    est = flops.prefill_flops(cfg, Prompt([ImageTokens(grid, kept=kept)], text))
    assert _rel(est.total, fc.get_total_flops()) < TOL


def test_sliding_window_layers_decode_and_cache():
    """Qwen2-VL's optional sliding-window layers: decode attends to window - 1 cached tokens + itself."""
    cfg = tiny_config("qwen2_vl")
    cfg.text_config.use_sliding_window, cfg.text_config.sliding_window = True, 16
    cfg.text_config.layer_types = ["full_attention"] * 2 + ["sliding_attention"] * 2
    model = flopcount.build_model(cfg, device="cpu", attn_implementation="eager")
    prompt = Prompt([ImageTokens((1, 8, 8))], 37)
    measured = flopcount.count_decode_step(model, prompt)
    assert flops.decode_flops(cfg, prompt).total == measured.total
    with torch.no_grad():
        cache = model.model.language_model(inputs_embeds=torch.randn(1, 53, 48), use_cache=True).past_key_values
    kv = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert flops.kv_cache_bytes(cfg, prompt, dtype="float32").kv_bytes == kv


@pytest.mark.parametrize("spec", ["fastv", "pixelprune+fastv", "divprune"])
def test_flops_from_stats_of_a_staged_run(tiny, spec):
    """The FLOPs model fed with what a real ``vlprune.apply`` run reports (``CallStats.flops_prompts``)
    equals torch's FLOP counter on that very forward (ViT on the kept blocks, LLM with the in-LLM prune
    and its attention-row scoring, lm_head). DivPrune's own pairwise-distance matmul is selection work,
    not model work: it is counted apart and subtracted."""
    from vlprune.api import apply

    cfg, model = tiny
    gh, gw = 6, 10
    inputs, _, _ = _page_request(cfg, gh, gw, seed=1)
    selection = 0
    if spec == "divprune":
        n = gh * gw
        selection = 2 * n * n * flops.vision_shape(cfg).out_dim  # the cosine Gram matrix of the ViT outputs
    with torch.no_grad(), apply(model, spec) as session, flopcount._counter() as fc:
        model(**inputs, logits_to_keep=1)
    (prompt,) = session.last.flops_prompts()
    assert sum(s.tokens_after for s in session.stats) < gh * gw
    est = flops.prefill_flops(cfg, prompt)
    assert _rel(est.total, fc.get_total_flops() - selection) < 0.01
    if prompt.llm_prune is not None:
        assert est.llm_scoring > 0 and prompt.llm_prune.query_rows == 1

"""The counting: ViT (per-image and windowed attention, mergers), decoder layers (attention, MLP or MoE,
Qwen3.5's linear attention), the in-LLM prune and its scoring rows, lm_head, and the KV cache."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlprune.flops.inputs import ImageTokens, Prompt
from vlprune.flops.results import Estimate, FlopsBreakdown, KVCache
from vlprune.flops.shapes import DTYPE_BYTES, TextShape, VisionShape, text_shape, vision_shape


def _lin(rows: int, n_in: int, n_out: int) -> int:
    """``nn.Linear`` on ``rows`` rows: one multiply-add per weight per row."""
    return 2 * rows * n_in * n_out


def _frame_counts(im: ImageTokens, merge: int) -> tuple[np.ndarray, int, list[str]]:
    """Kept blocks per frame ``(t,)`` and the frame grid size; validates ``kept``."""
    t, h, w = im.grid_thw
    if h % merge or w % merge:
        raise ValueError(f"ImageTokens.grid_thw {im.grid_thw}: h and w must be multiples of the merge size {merge}")
    per_frame = (h // merge) * (w // merge)
    total = t * per_frame
    if im.kept is None:
        return np.full(t, per_frame, dtype=np.int64), per_frame, []
    if isinstance(im.kept, np.ndarray):
        if im.kept.size and im.kept[-1] >= total:
            raise ValueError(f"ImageTokens.kept index {int(im.kept[-1])} out of range for grid_thw {im.grid_thw} ({total} blocks)")
        return np.bincount(im.kept // per_frame, minlength=t).astype(np.int64), per_frame, []
    k = int(im.kept)
    if k > total:
        raise ValueError(f"ImageTokens.kept = {k} is larger than the image's {total} blocks (grid_thw {im.grid_thw})")
    counts = np.full(t, k // t, dtype=np.int64)
    counts[: k % t] += 1
    return counts, per_frame, ([] if t == 1 else ["kept count spread evenly over video frames"])


def _window_sizes(im: ImageTokens, vs: VisionShape) -> tuple[list[np.ndarray], list[str]]:
    """Qwen2.5-VL: kept blocks in each attention window, per frame (full-grid windows, kept blocks only)."""
    t, h, w = im.grid_thw
    gh, gw, ws = h // vs.merge, w // vs.merge, vs.window_blocks
    rows, cols = np.arange(gh)[:, None] // ws, np.arange(gw)[None, :] // ws
    win = (rows * (-(-gw // ws)) + cols).reshape(-1)  # window id of each block, raster order
    n_win = int(win.max()) + 1
    if im.kept is None or isinstance(im.kept, np.ndarray):
        keep = np.ones(t * gh * gw, dtype=bool)
        if isinstance(im.kept, np.ndarray):
            keep[:] = False
            keep[im.kept] = True
        keep = keep.reshape(t, gh * gw)
        return [np.bincount(win[keep[f]], minlength=n_win) for f in range(t)], []
    counts, per_frame, _ = _frame_counts(im, vs.merge)
    full = np.bincount(win, minlength=n_win)
    # A bare count: each window keeps the frame's retain ratio of its blocks (an approximation).
    return [full * (c / per_frame) for c in counts], ["Qwen2.5-VL window sizes estimated from a kept count (pass indices for exact)"]


def _vision_flops(vs: VisionShape, images: Sequence[ImageTokens]) -> tuple[FlopsBreakdown, int, int, list[str]]:
    m2 = vs.merge**2
    d = vs.dim
    attn_sq = 0.0  # sum over attention segments and layers of (segment patches)^2
    blocks = 0
    notes: list[str] = []
    for im in images:
        counts, _, n = _frame_counts(im, vs.merge)
        notes += n
        blocks += int(counts.sum())
        full_sq = float(((counts * m2) ** 2).sum())
        if vs.window_blocks is None:
            attn_sq += vs.depth * full_sq
        else:
            win, n = _window_sizes(im, vs)
            notes += n
            win_sq = float(sum(((c * m2) ** 2).sum() for c in win))
            n_full = sum(1 for i in range(vs.depth) if i in vs.full_layers)
            attn_sq += n_full * full_sq + (vs.depth - n_full) * win_sq
    patches = blocks * m2
    per_patch = _lin(1, d, 3 * d) + _lin(1, d, d) + vs.mlp_mats * _lin(1, d, vs.mlp_dim)
    merger_in = d * m2
    out = FlopsBreakdown(
        patch_embed=_lin(patches, vs.in_channels * vs.temporal_patch * vs.patch**2, d),
        vit_linear=vs.depth * patches * per_patch,
        vit_attn=int(round(4 * d * attn_sq)),  # QK^T and AV: 2 * n^2 * d each, summed over heads
        merger=(1 + vs.deepstack) * (_lin(blocks, merger_in, merger_in) + _lin(blocks, merger_in, vs.out_dim)),
    )
    return out, patches, blocks, sorted(set(notes))


def _visual_counts(prompt: Prompt, vs: VisionShape) -> list[int]:
    """Visual tokens of each image that enter the LLM."""
    out = []
    for im in prompt.images:
        vit = int(_frame_counts(im, vs.merge)[0].sum())
        if im.llm_kept is not None and int(im.llm_kept) > vit:
            raise ValueError(f"ImageTokens.llm_kept = {im.llm_kept} exceeds the {vit} blocks that went through the ViT")
        out.append(vit if im.llm_kept is None else int(im.llm_kept))
    return out


def _scoring_flops(ts: TextShape, prompt: Prompt, tokens: Sequence[int]) -> FlopsBreakdown:
    """Attention rows recomputed at layer ``K - 1`` for ``query_rows`` queries (q and k projections, q k^T)."""
    lp = prompt.llm_prune
    if lp is None or not int(lp.query_rows):
        return FlopsBreakdown()
    q, n = int(lp.query_rows), tokens[int(lp.layer) - 1]
    proj = _lin(q, ts.hidden, ts.q_gate * ts.heads * ts.head_dim) + _lin(n, ts.hidden, ts.kv_heads * ts.head_dim)
    return FlopsBreakdown(llm_scoring=proj + 2 * ts.heads * ts.head_dim * q * n)


def _layer_tokens(ts: TextShape, prompt: Prompt, visual: int) -> tuple[int, ...]:
    """Prefill sequence length of every decoder layer after the optional in-LLM prune."""
    n = int(prompt.text_tokens) + visual
    if n <= 0:
        raise ValueError("Prompt has no tokens: give text_tokens > 0 or at least one image")
    lp = prompt.llm_prune
    if lp is None:
        return (n,) * ts.layers
    if not 0 <= int(lp.layer) <= ts.layers:
        raise ValueError(f"LLMPrune.layer = {lp.layer} must be in [0, {ts.layers}] (the model has {ts.layers} layers)")
    if not 0 <= int(lp.kept_visual) <= visual:
        raise ValueError(f"LLMPrune.kept_visual = {lp.kept_visual} must be in [0, {visual}] (visual tokens entering the LLM)")
    if int(lp.query_rows) and not 1 <= int(lp.layer):
        raise ValueError("LLMPrune.query_rows needs layer >= 1 (scores come from layer - 1)")
    m = int(prompt.text_tokens) + int(lp.kept_visual)
    return tuple(n if i < lp.layer else m for i in range(ts.layers))


def _attn_pairs(q: int, past: int, window: int | None, count_masked: bool) -> int:
    """Query-key pairs scored by ``q`` new queries over ``past + q`` keys.

    ``count_masked=True``: the dense ``q x (past + q)`` block, what eager / SDPA-math kernels compute and
    torch's counter counts. ``False``: only the causal (and in-window) pairs, what flash kernels skip to.
    """
    keys = past + q
    if count_masked:
        return q * keys
    i = np.arange(past, keys, dtype=np.int64)  # absolute position of each query
    visible = i + 1 if window is None else np.minimum(i + 1, window)
    return int(visible.sum())


def _delta_rule_chunked(ts: TextShape, tokens: int) -> int:
    """Chunked gated delta rule (HF ``torch_chunk_gated_delta_rule``), per layer, all value heads.

    Per chunk of ``C`` tokens and value head: ``k_beta K^T`` and ``Q K^T`` (2 C^2 dk each), two unit-lower-
    triangular solves (C(C-1) per right-hand column, dv + dk columns), ``Kc S``, ``Q S``, ``K^T v_new``
    (2 C dk dv each) and ``A v_new`` (2 C^2 dv). The sequence is padded to a multiple of ``C``.
    """
    c, dk, dv = ts.chunk, ts.lin_k_dim, ts.lin_v_dim
    chunks = -(-tokens // c)
    per_chunk = 4 * c * c * dk + c * (c - 1) * (dk + dv) + 6 * c * dk * dv + 2 * c * c * dv
    return ts.lin_v_heads * chunks * per_chunk


def _delta_rule_step(ts: TextShape) -> int:
    """One recurrent decode step per layer: read ``S^T k``, write ``k delta^T``, output ``S^T q`` (2 dk dv each)."""
    return ts.lin_v_heads * 6 * ts.lin_k_dim * ts.lin_v_dim


def _llm_flops(ts: TextShape, q_tokens: Sequence[int], past: Sequence[int], count_masked: bool) -> FlopsBreakdown:
    """Decoder FLOPs for ``q_tokens[l]`` new tokens over ``past[l]`` cached ones at each layer ``l``."""
    h = ts.hidden
    q_dim, kv_dim = ts.heads * ts.head_dim, ts.kv_heads * ts.head_dim
    lin_k, lin_v = ts.lin_k_heads * ts.lin_k_dim, ts.lin_v_heads * ts.lin_v_dim
    linear = attn = state = 0
    for i, (kind, q, p) in enumerate(zip(ts.layer_types, q_tokens, past)):
        if i in ts.moe_layers:  # router, top-k routed SwiGLU experts, optional gated shared expert
            linear += _lin(q, h, ts.experts) + ts.top_k * 3 * _lin(q, h, ts.moe_mlp)
            linear += (3 * _lin(q, h, ts.shared_mlp) + _lin(q, h, 1)) if ts.shared_mlp else 0
        else:
            linear += 3 * _lin(q, h, ts.mlp_dim)  # SwiGLU gate, up, down
        if kind == "linear_attention":
            linear += _lin(q, h, 2 * lin_k + lin_v) + _lin(q, h, lin_v) + 2 * _lin(q, h, ts.lin_v_heads)
            linear += _lin(q, lin_v, h)  # out_proj
            linear += 2 * q * ts.lin_conv_dim * ts.conv_kernel  # depthwise causal conv1d
            # HF runs the recurrent kernel for a single cached token, the chunked one otherwise
            state += _delta_rule_step(ts) if q == 1 and p > 0 else _delta_rule_chunked(ts, q)
        else:
            linear += _lin(q, h, ts.q_gate * q_dim) + 2 * _lin(q, h, kv_dim) + _lin(q, q_dim, h)
            window = ts.sliding_window if kind == "sliding_attention" else None
            if window:  # HF's sliding-window cache keeps the last window - 1 tokens
                p = min(p, window - 1)
            attn += 4 * ts.head_dim * ts.heads * _attn_pairs(q, p, window, count_masked)
    return FlopsBreakdown(llm_linear=linear, llm_attn=attn, llm_state=state)


def _check_config_prompt(config, prompt: Prompt) -> tuple[VisionShape, TextShape]:
    if not isinstance(prompt, Prompt):
        raise ValueError(f"prompt must be a vlprune.flops.Prompt, got {type(prompt).__name__}")
    return vision_shape(config), text_shape(config)


def prefill_flops(config, prompt: Prompt, *, logits_to_keep: int = 1, count_masked: bool = True) -> FlopsBreakdown:
    """Prefill FLOPs: ViT + mergers for every image, the decoder over the whole prompt, and ``lm_head``.

    logits_to_keep: HF semantics -- ``1`` (what ``generate`` uses) scores only the last position, ``0``
        scores every position (a plain ``model(**inputs)`` forward).
    count_masked: count the dense ``S x S`` attention block (eager/SDPA kernels, torch's counter, the
        paper's Appendix E); ``False`` counts only causal pairs (flash kernels, about half).
    """
    vs, ts = _check_config_prompt(config, prompt)
    vit, _, _, _ = _vision_flops(vs, prompt.images)
    tokens = _layer_tokens(ts, prompt, sum(_visual_counts(prompt, vs)))
    llm = _llm_flops(ts, tokens, (0,) * ts.layers, count_masked) + _scoring_flops(ts, prompt, tokens)
    if int(logits_to_keep) < 0:
        raise ValueError(f"logits_to_keep must be >= 0, got {logits_to_keep}")
    n_logits = tokens[-1] if int(logits_to_keep) == 0 else min(int(logits_to_keep), tokens[-1])
    return vit + llm + FlopsBreakdown(lm_head=_lin(n_logits, ts.hidden, ts.vocab))


def decode_flops(config, prompt: Prompt, *, step: int = 0, count_masked: bool = True) -> FlopsBreakdown:
    """FLOPs of decode step ``step`` (0 = the first token after prefill): one token through every layer
    against a cache of ``prefill tokens(layer) + step`` entries, plus ``lm_head`` for that token."""
    if int(step) < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    vs, ts = _check_config_prompt(config, prompt)
    tokens = _layer_tokens(ts, prompt, sum(_visual_counts(prompt, vs)))
    past = tuple(t + int(step) for t in tokens)
    return _llm_flops(ts, (1,) * ts.layers, past, count_masked) + FlopsBreakdown(lm_head=_lin(1, ts.hidden, ts.vocab))


def kv_cache_bytes(
    config, prompt: Prompt, *, dtype: str = "bfloat16", new_tokens: int = 0, state_dtype: str = "float32"
) -> KVCache:
    """KV-cache size after prefill plus ``new_tokens`` decoded tokens (batch 1).

    Attention layers: ``2 (K, V) * kv_heads * head_dim * tokens(layer) * bytes(dtype)``; layers after an
    in-LLM prune hold only the kept tokens, earlier layers all. Qwen3.5 linear-attention layers hold a
    fixed state instead: the recurrent ``v_heads x dk x dv`` matrix in ``state_dtype`` (float32 in HF and
    FLA) and the conv window ``conv_dim x kernel`` in ``dtype``.
    """
    for name, dt in (("dtype", dtype), ("state_dtype", state_dtype)):
        if str(dt).replace("torch.", "") not in DTYPE_BYTES:
            raise ValueError(f"unknown {name} {dt!r}; expected one of: {', '.join(sorted(DTYPE_BYTES))}")
    if int(new_tokens) < 0:
        raise ValueError(f"new_tokens must be >= 0, got {new_tokens}")
    b = DTYPE_BYTES[str(dtype).replace("torch.", "")]
    sb = DTYPE_BYTES[str(state_dtype).replace("torch.", "")]
    vs, ts = _check_config_prompt(config, prompt)
    tokens = tuple(t + int(new_tokens) for t in _layer_tokens(ts, prompt, sum(_visual_counts(prompt, vs))))
    kv = state = 0
    for kind, n in zip(ts.layer_types, tokens):
        if kind == "linear_attention":
            state += ts.lin_v_heads * ts.lin_k_dim * ts.lin_v_dim * sb + ts.lin_conv_dim * ts.conv_kernel * b
        else:
            n = min(n, ts.sliding_window - 1) if kind == "sliding_attention" and ts.sliding_window else n
            kv += 2 * ts.kv_heads * ts.head_dim * n * b
    return KVCache(kv_bytes=kv, state_bytes=state, tokens_per_layer=tokens)


def estimate(
    config,
    prompt: Prompt,
    *,
    decode_tokens: int = 0,
    logits_to_keep: int = 1,
    count_masked: bool = True,
    dtype: str = "bfloat16",
    state_dtype: str = "float32",
) -> Estimate:
    """Prefill FLOPs, FLOPs of ``decode_tokens`` decode steps, and the cache after prefill."""
    if int(decode_tokens) < 0:
        raise ValueError(f"decode_tokens must be >= 0, got {decode_tokens}")
    vs, ts = _check_config_prompt(config, prompt)
    _, patches, blocks, notes = _vision_flops(vs, prompt.images)
    pre = prefill_flops(config, prompt, logits_to_keep=logits_to_keep, count_masked=count_masked)
    dec = FlopsBreakdown()
    for s in range(int(decode_tokens)):
        dec = dec + decode_flops(config, prompt, step=s, count_masked=count_masked)
    kv = kv_cache_bytes(config, prompt, dtype=dtype, state_dtype=state_dtype)
    return Estimate(pre, dec, kv, patches, sum(_visual_counts(prompt, vs)), kv.tokens_per_layer, tuple(notes))

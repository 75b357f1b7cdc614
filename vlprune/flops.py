"""Analytic FLOPs and KV-cache model for Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen3.5.

Counts every matmul-class op the Hugging Face implementation runs (``nn.Linear``, the patch-embedding
``Conv3d``, the depthwise ``Conv1d`` of Qwen3.5, attention ``QK^T`` and ``AV``, the gated-delta-rule
matmuls and triangular solves), one multiply-add = 2 FLOPs (``torch.utils.flop_counter`` convention;
PixelPrune Appendix E, Eq. 3-4, uses the same). Elementwise work (norms, activations, RoPE, softmax,
biases, residuals, DeepStack additions, Qwen3-VL's position-embedding interpolation) is left out; its
size is stated in ``docs/flops.md``. Every formula and decision is written down there.

Pruning points (PixelPrune §3.2, GUIPruner TAR/SSP):

* pre-ViT: :class:`ImageTokens` ``kept`` (a count or the kept block indices); the ViT sees
  ``kept * merge**2`` patches, attention runs per image over kept patches only, Qwen2.5-VL windows are
  the full-grid windows restricted to kept blocks.
* resized history (TAR): give each frame its own (resized) ``grid_thw``.
* inside the LLM (SSP, FastV): :class:`LLMPrune` -- layers ``>= layer`` hold ``kept_visual`` visual tokens.

The family is found from ``config.model_type`` in :mod:`vlprune.families` (dense and MoE model types);
its ``flops_vision`` names the vision-tower layout (:data:`VISION_READERS`).
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np

__all__ = [
    "DTYPE_BYTES",
    "Estimate",
    "FlopsBreakdown",
    "ImageTokens",
    "KVCache",
    "LLMPrune",
    "Prompt",
    "TextShape",
    "VISION_READERS",
    "VisionShape",
    "decode_flops",
    "estimate",
    "image_tokens_for_size",
    "kv_cache_bytes",
    "prefill_flops",
    "text_shape",
    "vision_shape",
]

DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "float8": 1, "fp8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "int8": 1,
}  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageTokens:
    """One image (or video) entering the model.

    grid_thw: ``(t, h, w)`` in ViT patches, exactly the processor's ``image_grid_thw`` row; ``h`` and ``w``
        are multiples of the spatial merge size. A still image has ``t = 1``.
    kept: ``None`` (all blocks), an ``int`` count of kept blocks (= LLM tokens), or the sorted kept block
        indices in raster order of the ``(t, h/merge, w/merge)`` merged grid (PixelPrune §3.2). Indices
        make Qwen2.5-VL's windowed attention exact; a bare count spreads the kept blocks evenly over frames
        and windows (stated in :attr:`Estimate.notes`).
    llm_kept: visual tokens of this image that enter the LLM when a post-ViT method dropped some of the
        ViT's output tokens (DivPrune); ``None``: every block that went through the ViT.
    """

    grid_thw: tuple[int, int, int]
    kept: int | Sequence[int] | np.ndarray | None = None
    llm_kept: int | None = None

    def __post_init__(self):
        g = tuple(int(x) for x in self.grid_thw)
        if len(g) != 3 or min(g) <= 0:
            raise ValueError(f"ImageTokens.grid_thw must be three positive ints (t, h, w), got {self.grid_thw!r}")
        object.__setattr__(self, "grid_thw", g)
        if self.kept is not None and not isinstance(self.kept, (int, np.integer)):
            idx = np.asarray(self.kept, dtype=np.int64).reshape(-1)
            if idx.size and ((idx[1:] <= idx[:-1]).any() or idx[0] < 0):
                raise ValueError("ImageTokens.kept indices must be sorted, unique and >= 0")
            object.__setattr__(self, "kept", idx)
        elif self.kept is not None and int(self.kept) < 0:
            raise ValueError(f"ImageTokens.kept must be >= 0, got {self.kept}")
        if self.llm_kept is not None and int(self.llm_kept) < 0:
            raise ValueError(f"ImageTokens.llm_kept must be >= 0, got {self.llm_kept}")


@dataclass(frozen=True)
class LLMPrune:
    """Visual tokens dropped inside the LLM (SSP, FastV; GUIPruner §SSP).

    layer: the first decoder layer that sees the pruned sequence; layers ``0 .. layer-1`` run on all visual
        tokens (a method that scores at 0-based layer ``k`` and drops right after it passes ``layer=k+1``).
    kept_visual: visual tokens left in the sequence from ``layer`` on (all images together).
    query_rows: attention rows recomputed at layer ``layer - 1`` to score the tokens (FastV: 1; SSP: the
        text after the current screenshot): q for those rows, k for every token, ``q k^T`` (``llm_scoring``).
    """

    layer: int
    kept_visual: int
    query_rows: int = 0


@dataclass(frozen=True)
class Prompt:
    """One request: its images (in order), its non-visual token count and an optional in-LLM prune.

    text_tokens: every token that is not an image token (chat template, ``<|vision_start|>``/``end``
        markers, the question).
    """

    images: Sequence[ImageTokens] = ()
    text_tokens: int = 0
    llm_prune: LLMPrune | tuple[int, int] | None = None

    def __post_init__(self):
        if int(self.text_tokens) < 0:
            raise ValueError(f"Prompt.text_tokens must be >= 0, got {self.text_tokens}")
        object.__setattr__(self, "images", tuple(self.images))
        for im in self.images:
            if not isinstance(im, ImageTokens):
                raise ValueError(f"Prompt.images must hold ImageTokens, got {type(im).__name__}")
        if self.llm_prune is not None and not isinstance(self.llm_prune, LLMPrune):
            object.__setattr__(self, "llm_prune", LLMPrune(*self.llm_prune))


# ----------------------------------------------------------------------------------------------------
# Architecture shapes, read from a HF config through one table keyed by model_type
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisionShape:
    """What the FLOPs of one vision tower depend on (``d`` = width, ``f`` = MLP width)."""

    depth: int
    dim: int
    heads: int
    mlp_dim: int
    mlp_mats: int  # 2 = fc1/fc2, 3 = SwiGLU gate/up/down (Qwen2.5-VL)
    patch: int
    temporal_patch: int
    in_channels: int
    merge: int
    out_dim: int
    deepstack: int = 0  # extra mergers (Qwen3-VL DeepStack)
    window_blocks: int | None = None  # Qwen2.5-VL: window side in merged blocks
    full_layers: frozenset[int] = frozenset()  # Qwen2.5-VL: layers with full (not windowed) attention


@dataclass(frozen=True)
class TextShape:
    """What the FLOPs of one decoder depend on."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp_dim: int
    vocab: int
    layer_types: tuple[str, ...]  # "full_attention" | "sliding_attention" | "linear_attention"
    q_gate: int = 1  # 2 when q_proj also emits an output gate (Qwen3.5)
    sliding_window: int | None = None
    lin_k_heads: int = 0
    lin_v_heads: int = 0
    lin_k_dim: int = 0
    lin_v_dim: int = 0
    conv_kernel: int = 0
    chunk: int = 64  # chunk length of the chunked gated delta rule (HF torch path and FLA)
    moe_layers: frozenset[int] = frozenset()  # layers whose MLP is a routed mixture of experts
    experts: int = 0
    top_k: int = 0
    moe_mlp: int = 0  # intermediate size of one expert
    shared_mlp: int = 0  # intermediate size of the always-on shared expert (Qwen3.5-MoE), 0 if none

    @property
    def lin_conv_dim(self) -> int:
        return 2 * self.lin_k_heads * self.lin_k_dim + self.lin_v_heads * self.lin_v_dim


def _vision_qwen2(v) -> VisionShape:
    return VisionShape(
        v.depth, v.embed_dim, v.num_heads, int(v.embed_dim * v.mlp_ratio), 2,
        v.patch_size, v.temporal_patch_size, v.in_channels, v.spatial_merge_size, v.hidden_size,
    )  # fmt: skip


def _vision_qwen2_5(v) -> VisionShape:
    return VisionShape(
        v.depth, v.hidden_size, v.num_heads, v.intermediate_size, 3,
        v.patch_size, v.temporal_patch_size, v.in_channels, v.spatial_merge_size, v.out_hidden_size,
        window_blocks=v.window_size // v.spatial_merge_size // v.patch_size,
        full_layers=frozenset(v.fullatt_block_indexes),
    )  # fmt: skip


def _vision_qwen3(v) -> VisionShape:
    return VisionShape(
        v.depth, v.hidden_size, v.num_heads, v.intermediate_size, 2,
        v.patch_size, v.temporal_patch_size, v.in_channels, v.spatial_merge_size, v.out_hidden_size,
        deepstack=len(getattr(v, "deepstack_visual_indexes", ()) or ()),
    )  # fmt: skip


def _moe_fields(t) -> dict:
    """MoE text configs (Qwen3-VL-MoE, Qwen3.5-MoE): which layers route, experts, top-k, expert widths."""
    experts = int(getattr(t, "num_experts", 0) or 0)
    if not experts:
        return {}
    only = set(getattr(t, "mlp_only_layers", None) or ())
    step = int(getattr(t, "decoder_sparse_step", 1) or 1)
    layers = frozenset(i for i in range(t.num_hidden_layers) if i not in only and (i + 1) % step == 0)
    return dict(moe_layers=layers, experts=experts, top_k=int(t.num_experts_per_tok), moe_mlp=int(t.moe_intermediate_size),
                shared_mlp=int(getattr(t, "shared_expert_intermediate_size", 0) or 0))


def _text(t, q_gate: int) -> TextShape:
    layer_types = tuple(getattr(t, "layer_types", None) or ("full_attention",) * t.num_hidden_layers)
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    extra = _moe_fields(t)
    if "linear_attention" in layer_types:
        extra.update(lin_k_heads=t.linear_num_key_heads, lin_v_heads=t.linear_num_value_heads,
                     lin_k_dim=t.linear_key_head_dim, lin_v_dim=t.linear_value_head_dim,
                     conv_kernel=t.linear_conv_kernel_dim)  # fmt: skip
    return TextShape(
        t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads, head_dim,
        getattr(t, "intermediate_size", 0) or 0, t.vocab_size, layer_types, q_gate=q_gate,
        sliding_window=getattr(t, "sliding_window", None), **extra,
    )  # fmt: skip


#: vision-tower layouts, named by ``FamilySpec.flops_vision``
VISION_READERS: dict[str, Callable[[Any], VisionShape]] = {
    "qwen2": _vision_qwen2,
    "qwen2_5": _vision_qwen2_5,
    "qwen3": _vision_qwen3,
}


def _family(config):
    from vlprune.families import get_family

    model_type = getattr(config, "model_type", None)
    try:
        return get_family(model_type)
    except ValueError as exc:
        raise ValueError(f"unknown config.model_type {model_type!r} for FLOPs: {exc}") from None


def vision_shape(config) -> VisionShape:
    """The :class:`VisionShape` of a HF VLM config (its family from ``config.model_type``)."""
    spec = _family(config)
    shape = VISION_READERS[spec.flops_vision](config.vision_config)
    return shape if spec.deepstack else dataclasses.replace(shape, deepstack=0)


def text_shape(config) -> TextShape:
    """The :class:`TextShape` of a HF VLM config (its family from ``config.model_type``)."""
    shape = _text(config.text_config, 2 if _family(config).query_gate else 1)
    if len(shape.layer_types) != shape.layers:
        raise ValueError(f"config.text_config.layer_types has {len(shape.layer_types)} entries for {shape.layers} layers")
    unknown = set(shape.layer_types) - {"full_attention", "sliding_attention", "linear_attention"}
    if unknown:
        raise ValueError(f"config.text_config.layer_types has unknown layer type(s) {sorted(unknown)}")
    return shape


# ----------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlopsBreakdown:
    """FLOPs by stage (multiply-add = 2). ``llm_state`` is the gated-delta-rule state math of Qwen3.5's
    linear-attention layers (0 for the other families)."""

    patch_embed: int = 0
    vit_linear: int = 0
    vit_attn: int = 0
    merger: int = 0
    llm_linear: int = 0
    llm_attn: int = 0
    llm_state: int = 0
    llm_scoring: int = 0
    lm_head: int = 0

    @property
    def vit(self) -> int:
        return self.patch_embed + self.vit_linear + self.vit_attn

    @property
    def llm(self) -> int:
        return self.llm_linear + self.llm_attn + self.llm_state + self.llm_scoring

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    @property
    def tflops(self) -> float:
        return self.total / 1e12

    def __add__(self, other: FlopsBreakdown) -> FlopsBreakdown:
        return FlopsBreakdown(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self, unit: float = 1.0) -> dict[str, float]:
        """Every field plus ``vit``, ``llm`` and ``total``, divided by ``unit`` (``1e12`` for TFLOPs)."""
        out = {f.name: getattr(self, f.name) / unit for f in fields(self)}
        out.update(vit=self.vit / unit, llm=self.llm / unit, total=self.total / unit)
        return out


@dataclass(frozen=True)
class KVCache:
    """Cache size after prefill (+ ``new_tokens`` decoded): attention K/V, and Qwen3.5's fixed-size
    linear-attention state (recurrent state + conv state), which does not grow with the sequence."""

    kv_bytes: int
    state_bytes: int
    tokens_per_layer: tuple[int, ...]

    @property
    def total_bytes(self) -> int:
        return self.kv_bytes + self.state_bytes

    @property
    def gib(self) -> float:
        return self.total_bytes / 2**30


@dataclass(frozen=True)
class Estimate:
    """Everything :func:`estimate` computes for one :class:`Prompt`."""

    prefill: FlopsBreakdown
    decode: FlopsBreakdown  # all ``decode_tokens`` steps together
    kv: KVCache
    vit_patches: int  # patches entering the ViT (all images)
    visual_tokens: int  # visual tokens entering the LLM, before any in-LLM prune
    llm_tokens: tuple[int, ...]  # prefill sequence length of each decoder layer
    notes: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------------------------------------------
# Counting
# ----------------------------------------------------------------------------------------------------


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


def image_tokens_for_size(
    height: int, width: int, family: str = "qwen3-vl", *, kept: int | None = None, retain: float | None = None
) -> ImageTokens:
    """:class:`ImageTokens` of a ``height x width`` px image after the family's ``smart_resize``.

    ``retain`` (0..1) sets ``kept = round(retain * blocks)``; give at most one of ``kept`` and ``retain``.
    """
    from vlprune.families import get_family

    spec = get_family(family)
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if kept is not None and retain is not None:
        raise ValueError("give either kept or retain, not both")
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    hb, wb = smart_resize(height, width, factor=spec.block, min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    grid = (1, hb // spec.patch_size, wb // spec.patch_size)
    if retain is not None:
        if not 0.0 <= retain <= 1.0:
            raise ValueError(f"retain must be in [0, 1], got {retain}")
        kept = int(round(retain * (hb // spec.block) * (wb // spec.block)))
    return ImageTokens(grid, kept)


"""Measure FLOPs of a HF Qwen-VL model with ``torch.utils.flop_counter.FlopCounterMode`` (checks
:mod:`vlprune.flops`).

Pruned runs are emulated on the unmodified model, so the check does not depend on ``vlprune.models``:

* pre-ViT prune: the vision tower gets only the kept patch rows, with precomputed ``position_ids``,
  ``cu_seqlens``, Qwen2.5-VL ``window_index`` / ``cu_window_seqlens`` (full-grid windows restricted to
  kept blocks) and Qwen3-VL ``interp_indices`` / ``interp_weights`` (transformers ``vision_utils``
  pops these from the kwargs instead of computing them from ``grid_thw``);
* in-LLM prune: forward pre-hooks on decoder layers ``>= K`` cut the sequence to the kept length
  (hidden states, mask, rotary cos/sin, position ids).

Works on CPU (``attn_implementation="eager"``: torch's CPU SDPA kernel is not counted) and on the meta
device (SDPA decomposes to counted ``bmm``), so real-size shapes cost no memory.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from vlprune import compat
from vlprune.flops import ImageTokens, Prompt, VisionShape, text_shape, vision_shape
from vlprune.flops.count import _frame_counts

__all__ = ["Measured", "build_model", "count_decode_step", "count_prefill"]

aten = torch.ops.aten


def _solve_triangular_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """Unit-lower-triangular solve ``A X = B`` by forward substitution: ``n(n-1)`` FLOPs per column."""
    n = a_shape[-1]
    return int(np.prod(b_shape[:-2], dtype=np.int64)) * n * (n - 1) * b_shape[-1]


def _grouped_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """Grouped matmul of the MoE experts (each row of ``a`` meets one group's matrix): 2 * out * K."""
    return 2 * int(np.prod(out_shape, dtype=np.int64)) * a_shape[-1]


# torch's counter has no formula for triangular solves (Qwen3.5's chunked gated delta rule uses two) nor
# for the grouped matmul transformers runs the routed MoE experts with.
CUSTOM_FORMULAS = {aten.linalg_solve_triangular: _solve_triangular_flop, aten._grouped_mm: _grouped_mm_flop}


@dataclass(frozen=True)
class Measured:
    """Counted FLOPs by stage: ``vision`` (patch embed + blocks + all mergers), ``llm`` (decoder layers),
    ``lm_head``."""

    vision: int
    llm: int
    lm_head: int

    @property
    def total(self) -> int:
        return self.vision + self.llm + self.lm_head


def build_model(config, device: str = "cpu", attn_implementation: str = "eager", dtype=torch.float32):
    """``*ForConditionalGeneration`` with random weights (``device="meta"``: no memory at all)."""
    from transformers import AutoModelForImageTextToText

    config._attn_implementation = attn_implementation
    for sub in (config.vision_config, config.text_config):
        sub._attn_implementation = attn_implementation
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, attn_implementation=attn_implementation, dtype=dtype)
    return model.eval()


def _counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=CUSTOM_FORMULAS)


def _kept_blocks(im: ImageTokens, merge: int) -> np.ndarray:
    """Kept block indices of one image in raster order of its ``(t, h/m, w/m)`` merged grid."""
    t, h, w = im.grid_thw
    total = t * (h // merge) * (w // merge)
    if im.kept is None:
        return np.arange(total, dtype=np.int64)
    if isinstance(im.kept, np.ndarray):
        return im.kept
    # A bare count: the first `kept` blocks of each frame (window layout then matches the analytic estimate
    # only approximately for Qwen2.5-VL; pass indices for an exact check).
    counts = _frame_counts(im, merge)[0]
    per = total // t
    return np.concatenate([f * per + np.arange(c) for f, c in enumerate(counts)]).astype(np.int64)


def _window_index(im: ImageTokens, kept: np.ndarray, vs: VisionShape, offset: int) -> tuple[list[int], list[int]]:
    """Qwen2.5-VL: order of the kept blocks by window and the kept blocks per window (empty ones dropped)."""
    t, h, w = im.grid_thw
    gh, gw, ws = h // vs.merge, w // vs.merge, vs.window_blocks
    frame, rc = kept // (gh * gw), kept % (gh * gw)
    win = frame * (-(-gh // ws)) * (-(-gw // ws)) + (rc // gw // ws) * (-(-gw // ws)) + (rc % gw) // ws
    order = np.argsort(win, kind="stable")
    sizes = np.bincount(win)
    return (order + offset).tolist(), sizes[sizes > 0].tolist()


def _vision_inputs(model, vs: VisionShape, images, device) -> tuple[torch.Tensor, torch.Tensor, dict]:
    from transformers import vision_utils as vu

    m2 = vs.merge**2
    grid = torch.tensor([im.grid_thw for im in images], dtype=torch.long)
    rows, seg, win_order, win_sizes, offset = [], [], [], [], 0
    for i, im in enumerate(images):
        kept = _kept_blocks(im, vs.merge)
        start = int(sum(np.prod(g) for g in grid[:i].tolist()))
        rows.append(start + (kept[:, None] * m2 + np.arange(m2)).reshape(-1))
        per_frame = (im.grid_thw[1] // vs.merge) * (im.grid_thw[2] // vs.merge)
        seg += (np.bincount(kept // per_frame, minlength=im.grid_thw[0]) * m2).tolist()
        if vs.window_blocks is not None:
            o, s = _window_index(im, kept, vs, offset)
            win_order += o
            win_sizes += (np.asarray(s) * m2).tolist()
        offset += len(kept)
    rows_t = torch.from_numpy(np.concatenate(rows))
    cu = lambda sizes: torch.tensor(np.concatenate([[0], np.cumsum(sizes)]), dtype=torch.int32)  # noqa: E731
    kw = {
        "position_ids": vu.get_vision_position_ids(grid, vs.merge)[rows_t].to(device),
        "cu_seqlens": cu(seg),  # stays on CPU: the eager/SDPA path splits with .tolist()
    }
    if vs.window_blocks is not None:
        kw["window_index"] = torch.tensor(win_order, dtype=torch.long, device=device)
        kw["cu_window_seqlens"] = cu(win_sizes)
    visual = model.model.visual
    if hasattr(visual, "num_grid_per_side"):  # Qwen3-VL / Qwen3.5 learned position embedding
        idx, wts = vu.get_vision_interpolation_indices_and_weights(
            grid, visual.num_grid_per_side, mode=visual.interpolation_mode,
            align_corners=visual.interpolation_align_corners, spatial_merge_size=vs.merge,
        )  # fmt: skip
        kw["interp_indices"], kw["interp_weights"] = idx[rows_t].to(device), wts[rows_t].to(device)
    patch_dim = vs.in_channels * vs.temporal_patch * vs.patch**2
    pixels = torch.randn(len(rows_t), patch_dim, device=device) if device != "meta" else torch.empty(len(rows_t), patch_dim, device=device)
    return pixels, grid.to(device), kw


def _narrow_to(x, full: int, kept: int):
    """Cut every sequence dimension of size ``full`` (hidden, mask, cos/sin, position ids) to ``kept``."""
    if isinstance(x, torch.Tensor):
        for d in range(x.dim()):
            if x.shape[d] == full:
                x = x.narrow(d, 0, kept)
        return x
    if isinstance(x, (tuple, list)):
        return type(x)(_narrow_to(v, full, kept) for v in x)
    return x


@contextmanager
def _llm_prune_hooks(layers, layer: int, full: int, kept: int, forbidden: set[int]):
    if full == kept or layer >= len(layers):
        yield
        return
    if full in forbidden:
        raise ValueError(f"sequence length {full} equals a model dimension; change text_tokens by one")

    def hook(module, args, kwargs):
        return _narrow_to(args, full, kept), {k: _narrow_to(v, full, kept) for k, v in kwargs.items()}

    handles = [layers[i].register_forward_pre_hook(hook, with_kwargs=True) for i in range(layer, len(layers))]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _text_inputs(model, prompt: Prompt, vs: VisionShape, device):
    visual = sum(len(_kept_blocks(im, vs.merge)) for im in prompt.images)
    n = int(prompt.text_tokens) + visual
    hidden = model.config.text_config.hidden_size
    make = torch.randn if device != "meta" else torch.empty
    return make(1, n, hidden, device=device), n, visual


def _mask(q: int, k: int, device) -> torch.Tensor:
    """A ready 4D additive mask: transformers passes it through as-is, so mask creation runs no
    data-dependent checks (which fail on the meta device). Its values do not change FLOPs."""
    return torch.zeros(1, 1, q, k, device=device)


def count_prefill(model, prompt: Prompt, *, logits_to_keep: int = 1) -> Measured:
    """Counted prefill FLOPs of ``prompt`` (kept patches through the ViT, the decoder with the optional
    in-LLM prune emulated, ``lm_head`` on the last ``logits_to_keep`` positions, 0 = all)."""
    config = model.config
    vs, ts = vision_shape(config), text_shape(config)
    device = str(next(model.parameters()).device)
    vision = 0
    with torch.no_grad():
        if prompt.images:
            pixels, grid, kw = _vision_inputs(model, vs, prompt.images, device)
            with _counter() as fc:
                model.model.visual(pixels, grid_thw=grid, **kw)
            vision = fc.get_total_flops()
        embeds, n, visual = _text_inputs(model, prompt, vs, device)
        lm = model.model.language_model
        lp = prompt.llm_prune
        kept_n = n if lp is None else int(prompt.text_tokens) + int(lp.kept_visual)
        forbidden = {ts.hidden, ts.head_dim, ts.heads, ts.kv_heads, 1, 2, 3, 4}
        with _llm_prune_hooks(lm.layers, 0 if lp is None else int(lp.layer), n, kept_n, forbidden), _counter() as fc:
            out = lm(inputs_embeds=embeds, attention_mask=_mask(n, n, device), use_cache=False).last_hidden_state
        llm = fc.get_total_flops()
        keep = out.shape[1] if int(logits_to_keep) == 0 else min(int(logits_to_keep), out.shape[1])
        with _counter() as fc:
            model.lm_head(out[:, -keep:])
    return Measured(vision=vision, llm=llm, lm_head=fc.get_total_flops())


def count_decode_step(model, prompt: Prompt) -> Measured:
    """Counted FLOPs of the first decode step after prefilling ``prompt`` (no in-LLM prune)."""
    if prompt.llm_prune is not None:
        raise ValueError("count_decode_step does not emulate an in-LLM prune; check those per layer")
    vs = vision_shape(model.config)
    device = str(next(model.parameters()).device)
    embeds, n, _ = _text_inputs(model, prompt, vs, device)
    lm = model.model.language_model
    with torch.no_grad():
        cache = compat.cache_from_output(lm(inputs_embeds=embeds, attention_mask=_mask(n, n, device), use_cache=True))
        with _counter() as fc:
            # On CPU transformers builds the per-layer-type masks itself (sliding layers see fewer keys)
            mask = _mask(1, n + 1, device) if device == "meta" else None
            out = lm(inputs_embeds=embeds[:, :1], attention_mask=mask, **{compat.cache_kwarg(type(lm).forward): cache},
                     use_cache=True)
            out = out.last_hidden_state
        llm = fc.get_total_flops()
        with _counter() as fc:
            model.lm_head(out[:, -1:])
    return Measured(vision=0, llm=llm, lm_head=fc.get_total_flops())

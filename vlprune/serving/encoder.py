"""Encoder metadata of vLLM's Qwen-VL vision towers for the kept blocks only (PixelPrune §3.2.3).

Each tower's ``forward(x, grid_thw, encoder_metadata=...)`` takes its per-patch tables (rotary cos/sin,
Qwen3-VL's interpolated position embeddings, Qwen2.5-VL's window order) and its attention-segment
bookkeeping (``cu_seqlens``, ``max_seqlen``, backend-specific lengths) precomputed. Here both come from
the tower's own ``prepare_encoder_metadata``: the per-patch tables of the full grid are gathered at
the kept patch rows (so every kept patch keeps its original 2-D position), and the segment
bookkeeping is what the tower computes for segments of the kept lengths (one per image for full
attention; one per non-empty window for Qwen2.5-VL's windowed layers), so attention-backend specifics
stay vLLM's. Kind of tower per architecture: :mod:`vlprune.serving.families`.

Shapes: ``keep[i]`` is image i's (h/m * w/m,) bool mask over its merged-token grid (raster order);
the tower's input is the kept patch rows, block-major (m*m consecutive rows per kept block).
"""

from __future__ import annotations

import numpy as np
import torch


def _kept_rows(keep: list[np.ndarray], grids: list[list[int]], merge: int) -> torch.Tensor:
    """(sum_i k_i * m^2,) rows of each image's kept patches in the full (virtual) patch sequence."""
    u = merge * merge
    rows, off = [], 0
    for mask, (t, h, w) in zip(keep, grids):
        k = np.flatnonzero(mask).astype(np.int64)
        rows.append(off + (k[:, None] * u + np.arange(u)).reshape(-1))
        off += t * h * w
    return torch.from_numpy(np.concatenate(rows))


def _segments(visual, lengths: list[int], merge: int) -> dict:
    """The tower's own segment bookkeeping for attention segments of ``lengths`` merged blocks each:
    ``prepare_encoder_metadata`` on stand-in grids (1, n*m, m) -- one column of n blocks -- whose patch
    counts are the kept counts."""
    return visual.prepare_encoder_metadata([[1, n * merge, merge] for n in lengths])


def _gather(meta: dict, keys: tuple[str, ...], rows: torch.Tensor) -> dict:
    return {k: meta[k][rows.to(meta[k].device)] for k in keys}


def full_attention_metadata(visual, grids: list[list[int]], keep: list[np.ndarray],
                            per_patch: tuple[str, ...]) -> dict:
    """Qwen2-VL (``per_patch`` = rotary cos / sin) and Qwen3-VL / Qwen3.5 (+ ``pos_embeds``): towers
    with one attention segment per image."""
    m = visual.spatial_merge_size
    full = visual.prepare_encoder_metadata(grids)
    meta = _segments(visual, [int(k.sum()) for k in keep], m)
    meta.update(_gather(full, per_patch, _kept_rows(keep, grids, m)))
    return meta


def windowed_metadata(visual, grids: list[list[int]], keep: list[np.ndarray]) -> dict:
    """Qwen2.5-VL: windowed layers attend within each window's kept blocks (a kept block stays in its
    original window, windows left empty disappear); full-attention layers see all kept blocks of the
    image. Per-patch rotary tables are in window order, as the tower expects."""
    m = visual.spatial_merge_size
    order, window_sizes, cos, sin = [], [], [], []
    base = 0
    for mask, (t, h, w) in zip(keep, grids):
        windex, cu_win = visual.get_window_index_thw(t, h, w)  # raster blocks in window order, boundaries
        windex = windex.numpy()
        counts = np.diff(np.concatenate([[0], cu_win.numpy().astype(np.int64)])) // (m * m)
        window_of = np.repeat(np.arange(len(counts)), counts)
        kept = mask[windex]
        k_sorted = np.flatnonzero(mask)
        order.append(base + np.searchsorted(k_sorted, windex[kept]))  # into the packed kept sequence
        per_window = np.bincount(window_of[kept], minlength=len(counts))
        window_sizes += [int(c) for c in per_window if c > 0]
        c, s = visual.rotary_pos_emb_thw(t, h, w)  # (blocks, m*m, d), raster block order
        idx = torch.from_numpy(windex[kept].astype(np.int64)).to(c.device)
        cos.append(c[idx].flatten(0, 1))
        sin.append(s[idx].flatten(0, 1))
        base += len(k_sorted)
    device = visual.device
    window_index = torch.from_numpy(np.concatenate(order).astype(np.int64))
    reverse = torch.empty_like(window_index)
    reverse[window_index] = torch.arange(window_index.numel())
    full = _segments(visual, [int(k.sum()) for k in keep], m)
    win = _segments(visual, window_sizes, m)
    return {
        "rotary_pos_emb_cos": torch.cat(cos).to(device),
        "rotary_pos_emb_sin": torch.cat(sin).to(device),
        "window_index": window_index.to(device),
        "reverse_indices": reverse.to(device),
        "cu_seqlens": full["cu_seqlens"],
        "max_seqlen_full": full["max_seqlen_full"],
        "sequence_lengths_full": full.get("sequence_lengths_full"),
        "cu_window_seqlens": win["cu_seqlens"],
        "max_seqlen_window": win["max_seqlen_full"],
        "sequence_lengths_window": win.get("sequence_lengths_full"),
    }


#: per tower kind (:attr:`vlprune.serving.families.ServedArchitecture.encoder`), the metadata builder
BUILDERS = {
    "rope2d": lambda visual, grids, keep: full_attention_metadata(
        visual, grids, keep, ("rotary_pos_emb_cos", "rotary_pos_emb_sin")),
    "interpolated": lambda visual, grids, keep: full_attention_metadata(
        visual, grids, keep, ("pos_embeds", "rotary_pos_emb_cos", "rotary_pos_emb_sin")),
    "windows": windowed_metadata,
}

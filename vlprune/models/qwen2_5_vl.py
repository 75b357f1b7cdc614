"""Qwen2.5-VL: windowed ViT layers; windows are rebuilt from the kept patches (PixelPrune §3.2.3).

The unpruned window order of each image (``get_vision_window_index``) is filtered to the kept blocks:
a kept block stays in its original window, windows left empty disappear, and the full-attention
layers (``fullatt_block_indexes``) see all kept patches of the image via ``cu_seqlens``. Pruning inside
the tower (after block k) uses the same kept windows from block k + 1 on; the hidden sequence is in
window order there.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from transformers.vision_utils import get_vision_window_index

from vlprune.models.base import FamilyAdapter, register_adapter


def kept_windows(grid_thw: torch.Tensor, kept: list[np.ndarray], merge: int, window_size: int, patch_size: int):
    """Window permutation and boundaries over the kept blocks of all images.

    grid_thw: (n, 3); kept[i]: sorted kept block indices of image i.
    Returns ``window_index`` (sum_k,) int64: kept blocks (indices into the packed kept sequence) in
    window order, and ``cu_window_seqlens`` (n_windows + 1,) int32 in patch rows.
    """
    u = merge * merge
    order, bounds, base, rows = [], [0], 0, 0
    for (t, h, w), k in zip(grid_thw.tolist(), kept):
        wi, cu = get_vision_window_index(torch.tensor([[t, h, w]]), merge, window_size, patch_size)
        wi = wi.numpy()
        cu = cu.numpy().astype(np.int64)
        n_win = len(cu) - 1
        win_of_pos = np.repeat(np.arange(n_win), np.diff(cu) // u)
        k = np.asarray(k, dtype=np.int64)
        sel = np.isin(wi, k)
        order.append(base + np.searchsorted(k, wi[sel]))
        counts = np.bincount(win_of_pos[sel], minlength=n_win)
        counts = counts[counts > 0]
        bounds.extend((rows + np.cumsum(counts) * u).tolist())
        base += len(k)
        rows += len(k) * u
    window_index = torch.from_numpy(np.concatenate(order).astype(np.int64))
    return window_index, torch.tensor(bounds, dtype=torch.int32)


@register_adapter
class Qwen2_5_VLAdapter(FamilyAdapter):
    family = "qwen2.5-vl"
    vision_helpers = (*FamilyAdapter.vision_helpers, "get_vision_window_index")
    rope_extra_keys: ClassVar[tuple[str, ...]] = ("second_per_grid_ts",)

    def vision_kwargs(self, grid_thw, rows, kept):
        kw = super().vision_kwargs(grid_thw, rows, kept)
        wi, cu = self._kept_windows(grid_thw, kept)
        kw["window_index"] = wi.to(grid_thw.device)
        kw["cu_window_seqlens"] = cu.to(grid_thw.device)
        return kw

    def vit_sequence_order(self, vkw, total):
        return vkw["window_index"].cpu().numpy().astype(np.int64)

    def vit_block_windowed(self, block):
        return block not in self.visual.fullatt_block_indexes

    def vit_kept_segments(self, grid_thw, kept):
        out = super().vit_kept_segments(grid_thw, kept)
        out["window"] = self._kept_windows(grid_thw, kept)[1]
        return out

    def _kept_windows(self, grid_thw, kept):
        """(window_index, cu_window_seqlens) of the kept blocks (:func:`kept_windows`, the tower's window size)."""
        vc = self.config.vision_config
        return kept_windows(grid_thw.cpu(), kept, self.merge, vc.window_size, vc.patch_size)

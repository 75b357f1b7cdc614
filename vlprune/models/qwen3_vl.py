"""Qwen3-VL: learned position embedding interpolated to each image's grid, plus DeepStack.

Kept patches take the interpolation taps/weights of their original (h, w) patch (gathered from the
unpruned grid's ``get_vision_interpolation_indices_and_weights``); DeepStack features come out of the
same ViT pass and are split per image over kept tokens only (PixelPrune §3.2.3).
"""

from __future__ import annotations

from transformers.vision_utils import get_vision_interpolation_indices_and_weights

from vlprune.models.base import FamilyAdapter, register_adapter


def interpolation_kwargs(visual, grid_thw, rows, merge: int) -> dict:
    """``interp_indices`` / ``interp_weights`` (N_kept, taps) of the kept patch rows."""
    idx, wts = get_vision_interpolation_indices_and_weights(
        grid_thw, num_grid_per_side=visual.num_grid_per_side, mode=visual.interpolation_mode,
        align_corners=visual.interpolation_align_corners, spatial_merge_size=merge,
    )
    r = rows.to(idx.device)
    return {"interp_indices": idx[r], "interp_weights": wts[r]}


@register_adapter
class Qwen3VLAdapter(FamilyAdapter):
    family = "qwen3-vl"
    vision_helpers = (*FamilyAdapter.vision_helpers, "get_vision_interpolation_indices_and_weights")

    def vision_kwargs(self, grid_thw, rows, kept):
        kw = super().vision_kwargs(grid_thw, rows, kept)
        kw.update(interpolation_kwargs(self.visual, grid_thw, rows, self.merge))
        return kw

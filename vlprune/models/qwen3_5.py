"""Qwen3.5: Qwen3-VL's vision tower without DeepStack; hybrid (Gated DeltaNet) LLM."""

from __future__ import annotations

from vlprune.models.base import FamilyAdapter, register_adapter
from vlprune.models.qwen3_vl import interpolation_kwargs


@register_adapter
class Qwen3_5Adapter(FamilyAdapter):
    family = "qwen3.5"
    vision_helpers = (*FamilyAdapter.vision_helpers, "get_vision_interpolation_indices_and_weights")

    def vision_kwargs(self, grid_thw, rows, kept):
        kw = super().vision_kwargs(grid_thw, rows, kept)
        kw.update(interpolation_kwargs(self.visual, grid_thw, rows, self.merge))
        return kw

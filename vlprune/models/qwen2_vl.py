"""Qwen2-VL: 2-D rotary ViT with full attention per image; the base adapter covers it."""

from __future__ import annotations

from vlprune.models.base import FamilyAdapter, register_adapter


@register_adapter
class Qwen2VLAdapter(FamilyAdapter):
    family = "qwen2-vl"

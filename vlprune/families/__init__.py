"""Per-family constants (SPEC.md §1), keyed by family name and by ``config.model_type``.

One table, no ``isinstance`` chains: everything that differs between Qwen2-VL, Qwen2.5-VL,
Qwen3-VL and Qwen3.5 at the pixel level lives in a :class:`FamilySpec` row.
"""

from __future__ import annotations

from dataclasses import dataclass

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class FamilySpec:
    """Pixel-level settings of one model family's image processor.

    ``block = patch_size * merge_size`` pixels per side is one LLM token.
    """

    name: str
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    min_pixels: int
    max_pixels: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    model_types: tuple[str, ...]

    @property
    def block(self) -> int:
        return self.patch_size * self.merge_size


FAMILIES: dict[str, FamilySpec] = {
    "qwen2-vl": FamilySpec(
        "qwen2-vl", 14, 2, 2, 3136, 12845056, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ("qwen2_vl",)
    ),
    "qwen2.5-vl": FamilySpec(
        "qwen2.5-vl", 14, 2, 2, 3136, 12845056, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ("qwen2_5_vl",)
    ),
    "qwen3-vl": FamilySpec(
        "qwen3-vl", 16, 2, 2, 65536, 16777216, HALF, HALF, ("qwen3_vl", "qwen3_vl_moe")
    ),
    "qwen3.5": FamilySpec(
        "qwen3.5", 16, 2, 2, 65536, 16777216, HALF, HALF, ("qwen3_5", "qwen3_5_moe")
    ),
}

DEFAULT_FAMILY = "qwen3-vl"

_BY_MODEL_TYPE = {mt: spec for spec in FAMILIES.values() for mt in spec.model_types}


def get_family(name: str) -> FamilySpec:
    """Look up a family by its vlprune name (``qwen3-vl``) or a ``config.model_type`` (``qwen3_vl``)."""
    if isinstance(name, FamilySpec):
        return name
    spec = FAMILIES.get(name) or _BY_MODEL_TYPE.get(name)
    if spec is None:
        known = ", ".join(sorted(FAMILIES))
        raise ValueError(f"unknown model family {name!r}; expected one of: {known}")
    return spec


def list_families() -> list[str]:
    return sorted(FAMILIES)

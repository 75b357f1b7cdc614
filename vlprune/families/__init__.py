"""Model families: one module per family holds every fact vlprune needs about it.

``vlprune/families/<family>.py`` defines that family's :class:`FamilySpec`: pixel settings of its image
processor (block = patch x merge, resize limits, normalisation), the ``config.model_type`` names it covers
(dense and MoE), the processor class and chat template flavour, the coordinate frame of its grounding
outputs, in-LLM facts (a gated query projection, DeepStack), its released architectures (:class:`Shape`
rows) and a tiny test shape. Everything else -- model adapters, the FLOPs model, the offline processor,
benchmarks, the evaluation parsers -- looks a family up here (by vlprune name or by ``model_type``), so
a model type is supported everywhere or nowhere. No ``isinstance`` chains; no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Shape:
    """One named architecture: ``model_type`` plus vision / text / top-level config kwargs (no weights)."""

    name: str
    model_type: str
    vision: dict
    text: dict
    top: dict = field(default_factory=dict)
    checkpoint: str = ""

    @property
    def family(self) -> str:
        return get_family(self.model_type).name


@dataclass(frozen=True)
class FamilySpec:
    """Everything that differs between Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen3.5.

    block = ``patch_size * merge_size`` pixels per side is one LLM token.
    processor_class: the transformers processor; system_prompt: its chat template adds the default system
    turn; coord_frame: ``knorm`` (0-1000 grid) or ``canvas_px`` (pixels of the resized image) in grounding
    outputs; query_gate: attention ``q_proj`` emits [query, gate] per head; deepstack: the vision tower
    feeds DeepStack features into the first decoder layers; flops_vision: which vision-tower layout the
    FLOPs model reads; shapes: released architectures; default_shape: the one demos and benchmarks build;
    tiny: the test shape.
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
    processor_class: str = ""
    system_prompt: bool = False
    coord_frame: str = "knorm"
    query_gate: bool = False
    deepstack: bool = False
    flops_vision: str = ""
    shapes: tuple[Shape, ...] = ()
    default_shape: str = ""
    tiny: Shape | None = None

    @property
    def block(self) -> int:
        return self.patch_size * self.merge_size


def _load() -> dict[str, FamilySpec]:
    from vlprune.families import qwen2_5_vl, qwen2_vl, qwen3_5, qwen3_vl

    return {m.SPEC.name: m.SPEC for m in (qwen2_vl, qwen2_5_vl, qwen3_vl, qwen3_5)}


FAMILIES: dict[str, FamilySpec] = {}
_BY_MODEL_TYPE: dict[str, FamilySpec] = {}
DEFAULT_FAMILY = "qwen3-vl"


def _ensure() -> None:
    if not FAMILIES:
        FAMILIES.update(_load())
        _BY_MODEL_TYPE.update({mt: spec for spec in FAMILIES.values() for mt in spec.model_types})


def get_family(name) -> FamilySpec:
    """Look up a family by its vlprune name (``qwen3-vl``) or a ``config.model_type`` (``qwen3_vl_moe``)."""
    if isinstance(name, FamilySpec):
        return name
    _ensure()
    spec = FAMILIES.get(name) or _BY_MODEL_TYPE.get(name)
    if spec is None:
        known = ", ".join(sorted(FAMILIES))
        types = ", ".join(sorted(_BY_MODEL_TYPE))
        raise ValueError(f"unknown model family {name!r}; expected one of: {known} (model types: {types})")
    return spec


def list_families() -> list[str]:
    _ensure()
    return sorted(FAMILIES)


def model_types() -> list[str]:
    """Every ``config.model_type`` vlprune supports."""
    _ensure()
    return sorted(_BY_MODEL_TYPE)


def all_shapes() -> dict[str, Shape]:
    """Every released shape of every family, by name."""
    _ensure()
    return {s.name: s for spec in FAMILIES.values() for s in spec.shapes}

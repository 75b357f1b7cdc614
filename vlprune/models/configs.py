"""Random-weight models built locally (no downloads) from each family's shapes
(:mod:`vlprune.families`): ``shape="tiny"`` for tests (hidden 32, 2 ViT blocks, 4 LLM layers; Qwen3.5
5 with linear and full attention mixed), ``"real"`` or a released shape name for benchmarks.

``build_config(family, shape)`` returns a transformers config; ``build_model(...)`` instantiates the
``*ForConditionalGeneration`` class with random weights (depth optionally cut with ``text_layers`` /
``vision_layers``).
"""

from __future__ import annotations

import torch

from vlprune.families._config import TINY_EOS, TINY_PAD, TINY_TOKENS, TINY_VOCAB  # noqa: F401  (test vocabulary)


def list_shapes() -> list[str]:
    from vlprune.shapes import list_shapes as real

    return ["tiny", "real", *real()]


def build_config(family: str, shape: str = "tiny", text_layers: int | None = None, vision_layers: int | None = None,
                 attn_implementation: str = "sdpa"):
    """A transformers config for ``family``: ``shape="tiny"`` (tests), ``"real"`` (the family's default
    real shape, ``FamilySpec.default_shape``) or a name from :mod:`vlprune.shapes`; optionally
    with cut LLM / ViT depth."""
    from vlprune import shapes
    from vlprune.families import get_family

    spec = get_family(family)
    if shape == "tiny":
        chosen = spec.tiny
    else:
        name = spec.default_shape if shape == "real" else shape
        if name not in shapes.SHAPES:
            raise ValueError(f"unknown model shape {shape!r}; expected one of: {', '.join(list_shapes())}")
        chosen = shapes.get_shape(name)
        if chosen.family != spec.name:
            raise ValueError(f"shape {name!r} is a {chosen.family} model, not {spec.name}")
    cfg = shapes.shape_config(chosen, text_layers, vision_layers)
    cfg._attn_implementation = attn_implementation
    return cfg


def build_model(family: str, shape: str = "tiny", *, seed: int = 0, dtype: torch.dtype = torch.float32,
                attn_implementation: str = "sdpa", text_layers: int | None = None, vision_layers: int | None = None):
    """Random-weight ``*ForConditionalGeneration`` (eval mode) of ``family`` at ``shape``."""
    from transformers import AutoModelForImageTextToText

    cfg = build_config(family, shape, text_layers, vision_layers, attn_implementation)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(cfg, dtype=dtype, attn_implementation=attn_implementation)
    return model.eval()

"""Named real-size architectures (config kwargs only, no weights) for FLOPs checks and ``vlprune bench``.

The rows live with their family (:mod:`vlprune.families`); numbers are the architecture fields of the
released ``config.json`` files (written from the published configs; no download). Only fields that
change compute or the cache are listed; the rest take the transformers defaults.
``build_config("qwen3-vl-2b")`` gives a HF config to build the model from (``from_config`` on the meta
device, or on CPU with random weights).
"""

from __future__ import annotations

import copy

from vlprune.families import Shape, all_shapes

__all__ = ["SHAPES", "Shape", "build_config", "get_shape", "list_shapes", "shape_config"]


#: Every released shape of every family (each family module lists its own).
SHAPES: dict[str, Shape] = all_shapes()


def list_shapes() -> list[str]:
    return sorted(SHAPES)


def get_shape(name: str) -> Shape:
    """Look up a named shape; unknown names raise a ``ValueError`` listing the known ones."""
    shape = SHAPES.get(name)
    if shape is None:
        raise ValueError(f"unknown shape {name!r}; expected one of: {', '.join(list_shapes())}")
    return shape


def shape_config(shape: Shape, layers: int | None = None, vision_layers: int | None = None, **top_overrides):
    """The HF config (``Qwen2VLConfig``, ``Qwen3VLConfig``, ...) of ``shape``; no weights.

    ``layers`` / ``vision_layers`` cut the LLM / ViT depth (widths unchanged): Qwen3.5 keeps its first
    ``layers`` layer types with at least one full-attention layer, and Qwen2.5-VL full-attention /
    Qwen3-VL DeepStack indexes past the cut are dropped (the last layer takes over if none is left).
    """
    from transformers import CONFIG_MAPPING

    text, vision = copy.deepcopy(shape.text), copy.deepcopy(shape.vision)
    if layers is not None:
        if not 1 <= layers <= text["num_hidden_layers"]:
            raise ValueError(f"layers={layers}: shape {shape.name} has 1..{text['num_hidden_layers']} LLM layers")
        text["num_hidden_layers"] = layers
        if "layer_types" in text:
            lt = list(text["layer_types"])[:layers]
            if "full_attention" not in lt:
                lt[-1] = "full_attention"
            text["layer_types"] = lt
    if vision_layers is not None:
        if not 1 <= vision_layers <= vision["depth"]:
            raise ValueError(f"vision_layers={vision_layers}: shape {shape.name} has 1..{vision['depth']} ViT layers")
        vision["depth"] = vision_layers
        for key in ("fullatt_block_indexes", "deepstack_visual_indexes"):
            if key in vision:
                vision[key] = [i for i in vision[key] if i < vision_layers] or [vision_layers - 1]
    kwargs = dict(copy.deepcopy(shape.top), vision_config=vision, text_config=text)
    kwargs.update(top_overrides)
    return CONFIG_MAPPING[shape.model_type](**kwargs)


def build_config(name: str, layers: int | None = None, vision_layers: int | None = None, **top_overrides):
    """:func:`shape_config` of the named shape."""
    return shape_config(get_shape(name), layers, vision_layers, **top_overrides)

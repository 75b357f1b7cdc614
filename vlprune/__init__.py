"""vlprune: drop visual tokens that carry no new information from Qwen-VL-family models.

    import vlprune
    sel = vlprune.select("page.png", family="qwen3-vl")          # which blocks PixelPrune keeps
    with vlprune.apply(model, vlprune.create_method("pixelprune")) as run:
        out = model.generate(**inputs)                             # pruned before the ViT
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public names and the module each comes from; imported on first use, so ``import vlprune`` (and the
#: vLLM plug-in's entry point, which loads in every vLLM process) stays light: no numba, torch or PIL
_LAZY = {
    "FamilySpec": "vlprune.families", "get_family": "vlprune.families", "list_families": "vlprune.families",
    "BlockGrid": "vlprune.grid", "MAX_IMAGE_PIXELS": "vlprune.images", "ImageError": "vlprune.images",
    "ImageOptions": "vlprune.images", "load_image": "vlprune.images", "Method": "vlprune.methods",
    "PreViTMethod": "vlprune.methods", "create_method": "vlprune.methods", "list_methods": "vlprune.methods",
    "register_method": "vlprune.methods", "Selection": "vlprune.selection", "apply": "vlprune.api",
}


def select(image, method="pixelprune", family: str = "qwen3-vl", *,
           min_pixels: int | None = None, max_pixels: int | None = None,
           max_image_pixels: int | None = None, exif: bool | None = None, alpha: str | None = None,
           high_bit_depth: str | None = None, **method_options):
    """Run a pre-ViT method on one image (path, bytes, PIL image or uint8 array) as ``family``'s
    processor loads and resizes it.

    The keyword arguments named here are image options (:class:`vlprune.ImageOptions`: resize bounds,
    decompression-bomb limit (default :data:`vlprune.MAX_IMAGE_PIXELS`), conversion); every other keyword
    is an option of ``method``. Returns a :class:`vlprune.Selection`.
    """
    from vlprune.grid import BlockGrid
    from vlprune.images import MAX_IMAGE_PIXELS, ImageOptions
    from vlprune.methods import create_method, list_methods

    if isinstance(method, str):
        m = create_method(method, **method_options)
    elif method_options:
        raise TypeError(f"method options {', '.join(sorted(method_options))} need a method name, not an instance")
    else:
        m = method
    stage = getattr(m, "stage", None)
    if stage != "pre_vit":
        name = getattr(m, "name", type(m).__name__)
        what = (f"{name!r} works at stage {stage!r}, not on an image alone; run it on a model with "
                f"vlprune.apply(model, {name!r})" if stage else f"got {type(m).__name__}, not a method")
        raise TypeError(f"select runs a pre-ViT method on one image: {what}. Pre-ViT methods: "
                        f"{', '.join(list_methods('pre_vit'))}")
    if max_image_pixels is None:
        max_image_pixels = MAX_IMAGE_PIXELS
    options = ImageOptions(min_pixels=min_pixels, max_pixels=max_pixels, max_image_pixels=max_image_pixels,
                           exif=exif, alpha=alpha, high_bit_depth=high_bit_depth)
    return m(BlockGrid.from_image(image, family, options))


def resize_history(history, lam: float, gamma: float = 0.2, family: str = "qwen2-vl", **options):
    """GUIPruner TAR on history screenshots (chronological, oldest first; never the current one): each
    resized once, before the processor, to its share of ``lam`` of their tokens
    (:func:`vlprune.algorithms.tar.resize_history`; ``options``: ``min_pixels`` / ``max_pixels``,
    ``max_image_pixels``, ``allocation``). Options are checked here, with the rules of the ``tar`` method."""
    from vlprune import options as opt
    from vlprune.algorithms.tar import ALLOCATIONS
    from vlprune.algorithms.tar import resize_history as _resize

    lam, gamma = opt.fraction("lam", lam), opt.unit_interval("gamma", gamma)
    if "allocation" in options:
        options["allocation"] = opt.choice("allocation", options["allocation"], ALLOCATIONS)
    for name in ("min_pixels", "max_pixels", "max_image_pixels"):
        if options.get(name) is not None:
            options[name] = opt.integer(name, options[name], minimum=1)
    if options.get("min_pixels") is not None and options.get("max_pixels") is not None:
        opt.integer("max_pixels", options["max_pixels"], minimum=options["min_pixels"])
    return _resize(history, lam, gamma, family, **options)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vlprune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BlockGrid", "FamilySpec", "ImageError", "ImageOptions", "Method", "PreViTMethod", "Selection", "apply",
    "create_method", "get_family", "list_families", "list_methods", "load_image", "register_method",
    "resize_history", "select",
]

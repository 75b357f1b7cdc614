"""vlprune: drop visual tokens that carry no new information from Qwen-VL-family models.

    import vlprune
    sel = vlprune.select("page.png", family="qwen3-vl")          # which blocks PixelPrune keeps
    with vlprune.apply(model, vlprune.create_method("pixelprune")) as run:
        out = model.generate(**inputs)                             # pruned before the ViT
"""

from vlprune.families import FamilySpec, get_family, list_families
from vlprune.grid import BlockGrid
from vlprune.images import MAX_IMAGE_PIXELS, ImageError, ImageOptions, load_image
from vlprune.methods import Method, PreViTMethod, create_method, list_methods, register_method
from vlprune.selection import Selection

__version__ = "0.1.0"


def select(image, method: str | Method = "pixelprune", family: str = "qwen3-vl", *,
           min_pixels: int | None = None, max_pixels: int | None = None,
           max_image_pixels: int = MAX_IMAGE_PIXELS, exif: bool | None = None, alpha: str | None = None,
           high_bit_depth: str | None = None, **method_options) -> Selection:
    """Run a pre-ViT method on one image (path, bytes, PIL image or uint8 array) as ``family``'s
    processor loads and resizes it.

    The keyword arguments named here are image options (:class:`vlprune.ImageOptions`: resize bounds,
    decompression-bomb limit, conversion); every other keyword is an option of ``method``.
    """
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
    options = ImageOptions(min_pixels=min_pixels, max_pixels=max_pixels, max_image_pixels=max_image_pixels,
                           exif=exif, alpha=alpha, high_bit_depth=high_bit_depth)
    return m(BlockGrid.from_image(image, family, options))


def resize_history(history, lam: float, gamma: float = 0.2, family: str = "qwen2-vl", **options):
    """GUIPruner TAR on history screenshots (chronological, oldest first; never the current one): each
    resized once, before the processor, to its share of ``lam`` of their tokens
    (:func:`vlprune.algorithms.tar.resize_history`, which takes ``min_pixels`` / ``max_pixels``)."""
    from vlprune.algorithms.tar import resize_history as _resize

    return _resize(history, lam, gamma, family, **options)


def __getattr__(name):
    if name == "apply":  # model integration pulls in transformers; import it on first use
        from vlprune.api import apply

        return apply
    raise AttributeError(f"module 'vlprune' has no attribute {name!r}")


__all__ = [
    "BlockGrid", "FamilySpec", "ImageError", "ImageOptions", "Method", "PreViTMethod", "Selection", "apply",
    "create_method", "get_family", "list_families", "list_methods", "load_image", "register_method",
    "resize_history", "select",
]

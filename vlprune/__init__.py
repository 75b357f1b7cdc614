"""vlprune: drop visual tokens that carry no new information from Qwen-VL-family models.

    import vlprune
    sel = vlprune.select("page.png", family="qwen3-vl")          # which blocks PixelPrune keeps
    with vlprune.apply(model, vlprune.create_method("pixelprune")) as run:
        out = model.generate(**inputs)                             # pruned before the ViT
"""

from vlprune.families import FamilySpec, get_family, list_families
from vlprune.grid import BlockGrid, ImageError, load_image
from vlprune.methods import Method, PreViTMethod, create_method, list_methods, register_method
from vlprune.selection import Selection

__version__ = "0.1.0"


def select(image, method: str | Method = "pixelprune", family: str = "qwen3-vl", **options) -> Selection:
    """Run a pre-ViT method on one image (path, PIL image or uint8 array) resized for ``family``."""
    m = create_method(method, **options) if isinstance(method, str) else method
    return m(BlockGrid.from_image(image, family))


def __getattr__(name):
    if name == "apply":  # model integration pulls in transformers; import it on first use
        from vlprune.api import apply

        return apply
    raise AttributeError(f"module 'vlprune' has no attribute {name!r}")


__all__ = [
    "BlockGrid", "FamilySpec", "ImageError", "Method", "PreViTMethod", "Selection", "apply",
    "create_method", "get_family", "list_families", "list_methods", "load_image", "register_method",
    "select",
]

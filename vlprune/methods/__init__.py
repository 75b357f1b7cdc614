"""Built-in methods; importing this package registers them."""

from vlprune.methods import baselines, pixelprune  # noqa: F401
from vlprune.methods.base import Method, PreViTMethod, create_method, list_methods, register_method

__all__ = ["Method", "PreViTMethod", "create_method", "list_methods", "register_method"]

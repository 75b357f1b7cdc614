"""Built-in methods; importing this package registers them."""

from vlprune.methods import baselines, guipruner, llm_baselines, pixelprune, token_methods, vit_baselines  # noqa: F401
from vlprune.methods.base import (
    STAGES,
    ImageContext,
    InputMethod,
    LLMMethod,
    LLMRow,
    Method,
    PostViTMethod,
    PreViTMethod,
    create_method,
    keep_count,
    list_methods,
    register_method,
)

__all__ = [
    "STAGES", "ImageContext", "InputMethod", "LLMMethod", "LLMRow", "Method", "PostViTMethod", "PreViTMethod",
    "create_method", "keep_count", "list_methods", "register_method",
]

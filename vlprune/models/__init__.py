"""Per-family model adapters (one file per family), dispatched by ``config.model_type``."""

from vlprune.models import qwen2_5_vl, qwen2_vl, qwen3_5, qwen3_vl  # noqa: F401  (register adapters)
from vlprune.models.base import FamilyAdapter, get_adapter, register_adapter, supported_model_types

__all__ = ["FamilyAdapter", "get_adapter", "register_adapter", "supported_model_types"]

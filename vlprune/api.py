"""``vlprune.apply`` and its types (the implementation lives in :mod:`vlprune.runtime`)."""

from vlprune.runtime import ApplyConfig, CallStats, ImageStats, Pipeline, Prepared, PruningSession, apply

__all__ = ["ApplyConfig", "CallStats", "ImageStats", "Pipeline", "Prepared", "PruningSession", "apply"]

"""The staged pruning runtime: one pipeline (input -> pre_vit -> post_vit -> llm) on a loaded model,
hooks only (see :func:`apply`)."""

from vlprune.runtime.pipeline import Pipeline, resolve_pipeline
from vlprune.runtime.prepare import Prepared
from vlprune.runtime.session import ApplyConfig, PruningSession, apply
from vlprune.runtime.stats import CallStats, ImageStats

__all__ = ["ApplyConfig", "CallStats", "ImageStats", "Pipeline", "Prepared", "PruningSession", "apply",
           "resolve_pipeline"]

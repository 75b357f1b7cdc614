"""PixelPrune (paper §3.2) and the keep-everything reference, as pre-ViT methods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlprune.methods.base import PreViTMethod, register_method
from vlprune.algorithms.predictive import _check, predictive_select


@register_method("full")
@dataclass
class Full(PreViTMethod):
    """Keeps every block (the unpruned model)."""

    def select(self, grid) -> np.ndarray:
        return np.arange(grid.n_blocks, dtype=np.int64)


@register_method("pixelprune")
@dataclass
class PixelPrune(PreViTMethod):
    """Predictive coding on blocks: drop a block when dist(block, prediction) <= tau (§3.2-3.3).

    order: "pred2d" (default), "raster" or "serpentine"; metric: "max", "mae" or "rmse" in [0, 1]
    pixel units; tau in [0, 1]: 0 is exact (lossless), tau > 0 is anchored near-exact matching.
    """

    order: str = "pred2d"
    metric: str = "max"
    tau: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        self.tau = _check(self.order, self.metric, self.tau)[2]

    def select(self, grid) -> np.ndarray:
        return predictive_select(grid.base, grid.geometry, grid.scale, self.order, self.metric, self.tau)

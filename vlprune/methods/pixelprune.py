"""PixelPrune (paper §3.2) and the keep-everything reference, as pre-ViT methods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlprune import options as opt
from vlprune.methods.base import PreViTMethod, register_method
from vlprune.algorithms.predictive import METRICS, ORDERS, predictive_select


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
    after_block: None (default) prunes before the ViT; k applies the same keep set after ViT block k
    (0-based; -1 = the last block, i.e. after the ViT), the ablation of §4.6.3 / Table 7.
    """

    order: str = "pred2d"
    metric: str = "max"
    tau: float = 0.0
    after_block: int | None = None

    def __post_init__(self):
        super().__post_init__()
        self.order = opt.choice("order", self.order, ORDERS)
        self.metric = opt.choice("metric", self.metric, METRICS)
        self.tau = opt.unit_interval("tau", self.tau)  # distances are in [0, 1]; tau = 1 drops every match
        if self.after_block is not None:
            self.after_block = opt.integer("after_block", self.after_block, minimum=-1)

    def vit_block(self) -> int | None:
        return self.after_block

    def select(self, grid) -> np.ndarray:
        return predictive_select(grid.base, grid.geometry, grid.scale, self.order, self.metric, self.tau)

"""Same-budget baselines (PixelPrune §4.1): each keeps, per image, as many blocks as its ``reference``
PixelPrune keeps on that image (or ``retain`` of the image's blocks, if given)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vlprune import options as opt
from vlprune.methods.base import PreViTMethod, keep_count, register_method
from vlprune.methods.pixelprune import PixelPrune
from vlprune.algorithms import baselines as B
from vlprune.algorithms.predictive import neighbour_equality
from vlprune.selection import Selection


@dataclass
class SameBudget(PreViTMethod):
    """Base of the baselines: ``budget(grid)`` is the reference PixelPrune's kept count."""

    reference: PixelPrune = field(default_factory=PixelPrune)
    retain: float | None = None
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.reference, PixelPrune):
            raise TypeError(f"reference must be a PixelPrune method, got {type(self.reference).__name__}")
        if self.retain is not None:
            self.retain = opt.fraction("retain", self.retain)
        self.seed = opt.seed(self.seed)

    def budget(self, grid) -> int:
        if self.retain is not None:
            return keep_count(grid.n_blocks, self.retain)
        return int(self.reference.select(grid).shape[0])

    def rng(self, grid, k: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *grid.shape, k])


@register_method("random")
@dataclass
class Random(SameBudget):
    """Uniform random subset (seeded)."""

    def select(self, grid) -> np.ndarray:
        k = self.budget(grid)
        return B.random_keep(grid.n_blocks, k, self.rng(grid, k))


@register_method("uniform")
@dataclass
class Uniform(SameBudget):
    """Evenly spaced 2-D subset of the grid."""

    def select(self, grid) -> np.ndarray:
        return B.uniform_keep(grid.shape, self.budget(grid))


@register_method("conncomp")
@dataclass
class ConnComp(SameBudget):
    """ShowUI-style: at least one random block per 4-connected component of identical blocks."""

    def select(self, grid) -> np.ndarray:
        k = self.budget(grid)
        labels = B.connected_components(*neighbour_equality(grid.base, grid.geometry))
        return B.conncomp_keep(labels, k, self.rng(grid, k))


@register_method("resize")
@dataclass
class Resize(SameBudget):
    """Downscale the image to the largest block grid with at most the budget's tokens (before the
    ViT). The Selection's ``resized`` gives the new pixel size; all its blocks are kept."""

    def select(self, grid) -> Selection:
        gh, gw = B.resize_grid(grid.shape, self.budget(grid))
        b = grid.family.block
        return Selection(kept=np.arange(gh * gw, dtype=np.int64), grid=(gh, gw), resized=(gh * b, gw * b),
                         source_grid=grid.shape)

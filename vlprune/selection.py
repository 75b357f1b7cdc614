"""The result of selecting blocks on one image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Selection:
    """Kept blocks of one image.

    kept:   int64 array (n_kept,), sorted, unique block indices in raster order of ``grid``.
    grid:   (gh, gw) merged-token grid the indices refer to (one block = one LLM token).
    resized: for methods that change the input resolution (Resize): the new (height, width) in
        pixels; ``grid`` and ``kept`` then describe the resized image (all its blocks kept).
    source_grid: the grid of the unresized input when ``resized`` is set (else ``grid``).

    ``n_total`` is the token count of the unresized input and ``retain = n_kept / n_total`` for every
    method (the same figure ``vlprune analyze`` reports; Resize keeps its downscaled image's tokens).
    """

    kept: np.ndarray
    grid: tuple[int, int]
    resized: tuple[int, int] | None = None
    selector_ms: float = 0.0
    method: str = ""
    source_grid: tuple[int, int] | None = None

    @property
    def n_total(self) -> int:
        """Tokens of the unresized input grid."""
        gh, gw = self.source_grid if self.source_grid is not None else self.grid
        return int(gh * gw)

    @property
    def n_kept(self) -> int:
        return int(self.kept.shape[0])

    @property
    def retain(self) -> float:
        """Kept tokens / tokens of the unresized grid."""
        return self.n_kept / self.n_total

    @property
    def n_grid(self) -> int:
        """Blocks of ``grid`` (the grid ``kept`` indexes)."""
        return int(self.grid[0] * self.grid[1])

    def mask(self) -> np.ndarray:
        """Boolean (gh, gw) map of ``grid``, True where a block is kept."""
        m = np.zeros(self.n_grid, dtype=bool)
        m[self.kept] = True
        return m.reshape(self.grid)

    def validate(self) -> None:
        k = self.kept
        if k.ndim != 1 or k.dtype != np.int64:
            raise ValueError(f"selection of {self.method!r}: kept must be a 1-D int64 array, got {k.dtype} {k.shape}")
        if k.size == 0:
            raise ValueError(f"selection of {self.method!r} keeps no block; at least one block must be kept")
        if k[0] < 0 or k[-1] >= self.n_grid or (k.size > 1 and not np.all(k[1:] > k[:-1])):
            raise ValueError(
                f"selection of {self.method!r}: kept indices must be sorted, unique and in [0, {self.n_grid})"
            )

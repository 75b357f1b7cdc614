"""What enters the model: images (ViT grid, kept blocks, tokens entering the LLM), text, in-LLM prune."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageTokens:
    """One image (or video) entering the model.

    grid_thw: ``(t, h, w)`` in ViT patches, exactly the processor's ``image_grid_thw`` row; ``h`` and ``w``
        are multiples of the spatial merge size. A still image has ``t = 1``.
    kept: ``None`` (all blocks), an ``int`` count of kept blocks (= LLM tokens), or the sorted kept block
        indices in raster order of the ``(t, h/merge, w/merge)`` merged grid (PixelPrune §3.2). Indices
        make Qwen2.5-VL's windowed attention exact; a bare count spreads the kept blocks evenly over frames
        and windows (stated in :attr:`Estimate.notes`).
    llm_kept: visual tokens of this image that enter the LLM when a post-ViT method dropped some of the
        ViT's output tokens (DivPrune); ``None``: every block that went through the ViT.
    """

    grid_thw: tuple[int, int, int]
    kept: int | Sequence[int] | np.ndarray | None = None
    llm_kept: int | None = None

    def __post_init__(self):
        g = tuple(int(x) for x in self.grid_thw)
        if len(g) != 3 or min(g) <= 0:
            raise ValueError(f"ImageTokens.grid_thw must be three positive ints (t, h, w), got {self.grid_thw!r}")
        object.__setattr__(self, "grid_thw", g)
        if self.kept is not None and not isinstance(self.kept, (int, np.integer)):
            idx = np.asarray(self.kept, dtype=np.int64).reshape(-1)
            if idx.size and ((idx[1:] <= idx[:-1]).any() or idx[0] < 0):
                raise ValueError("ImageTokens.kept indices must be sorted, unique and >= 0")
            object.__setattr__(self, "kept", idx)
        elif self.kept is not None and int(self.kept) < 0:
            raise ValueError(f"ImageTokens.kept must be >= 0, got {self.kept}")
        if self.llm_kept is not None and int(self.llm_kept) < 0:
            raise ValueError(f"ImageTokens.llm_kept must be >= 0, got {self.llm_kept}")


@dataclass(frozen=True)
class LLMPrune:
    """Visual tokens dropped inside the LLM (SSP, FastV; GUIPruner §SSP).

    layer: the first decoder layer that sees the pruned sequence; layers ``0 .. layer-1`` run on all visual
        tokens (a method that scores at 0-based layer ``k`` and drops right after it passes ``layer=k+1``).
    kept_visual: visual tokens left in the sequence from ``layer`` on (all images together).
    query_rows: attention rows recomputed at layer ``layer - 1`` to score the tokens (FastV: 1; SSP: the
        text after the current screenshot): q for those rows, k for every token, ``q k^T`` (``llm_scoring``).
    """

    layer: int
    kept_visual: int
    query_rows: int = 0


@dataclass(frozen=True)
class Prompt:
    """One request: its images (in order), its non-visual token count and an optional in-LLM prune.

    text_tokens: every token that is not an image token (chat template, ``<|vision_start|>``/``end``
        markers, the question).
    """

    images: Sequence[ImageTokens] = ()
    text_tokens: int = 0
    llm_prune: LLMPrune | tuple[int, int] | None = None

    def __post_init__(self):
        if int(self.text_tokens) < 0:
            raise ValueError(f"Prompt.text_tokens must be >= 0, got {self.text_tokens}")
        object.__setattr__(self, "images", tuple(self.images))
        for im in self.images:
            if not isinstance(im, ImageTokens):
                raise ValueError(f"Prompt.images must hold ImageTokens, got {type(im).__name__}")
        if self.llm_prune is not None and not isinstance(self.llm_prune, LLMPrune):
            object.__setattr__(self, "llm_prune", LLMPrune(*self.llm_prune))


def image_tokens_for_size(
    height: int, width: int, family: str = "qwen3-vl", *, kept: int | None = None, retain: float | None = None
) -> ImageTokens:
    """:class:`ImageTokens` of a ``height x width`` px image after the family's ``smart_resize``.

    ``retain`` (0..1) sets ``kept = round(retain * blocks)``; give at most one of ``kept`` and ``retain``.
    """
    from vlprune.families import get_family

    spec = get_family(family)
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if kept is not None and retain is not None:
        raise ValueError("give either kept or retain, not both")
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    hb, wb = smart_resize(height, width, factor=spec.block, min_pixels=spec.min_pixels, max_pixels=spec.max_pixels)
    grid = (1, hb // spec.patch_size, wb // spec.patch_size)
    if retain is not None:
        if not 0.0 <= retain <= 1.0:
            raise ValueError(f"retain must be in [0, 1], got {retain}")
        kept = int(round(retain * (hb // spec.block) * (wb // spec.block)))
    return ImageTokens(grid, kept)

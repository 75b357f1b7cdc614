"""Method base classes, one per pipeline stage, and the name registry (timm-style register/create/list).

Stages, in the order a pipeline runs them (:data:`STAGES`):

* ``input``    -- :class:`InputMethod` resizes a sample's images before the vision encoder (TAR).
* ``pre_vit``  -- :class:`PreViTMethod` picks the blocks (2x2 ViT patches = one LLM token) that enter the
  vision encoder (PixelPrune, Random, ConnComp, Uniform, Resize, Full).
* ``post_vit`` -- :class:`PostViTMethod` picks among each image's vision-encoder output tokens (DivPrune).
* ``llm``      -- :class:`LLMMethod` drops visual tokens inside the LLM from decoder layer ``K`` on, scored
  by the hidden states / attention at layer ``K - 1`` (FastV, GUIPruner SSP).

A method is a ``@dataclass`` with validated fields and one small method for its stage; it sees the data
it selects on plus an :class:`ImageContext` and returns indices (or scores). The runtime
(:mod:`vlprune.runtime`) owns tensors, hooks and bookkeeping. Adding a method = one dataclass with
``@register_method("name")``; the shared test matrix picks it up from :func:`list_methods`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from vlprune import options as opt
from vlprune.methods.views import LLMRow
from vlprune.selection import Selection

if TYPE_CHECKING:
    import torch

    from vlprune.grid import BlockGrid
    from vlprune.methods.views import LLMRowView, TokenMerge, VisionAttention

#: Pipeline stages in execution order (the one place they are spelled).
STAGES = ("input", "pre_vit", "post_vit", "llm")

_REGISTRY: dict[str, type["Method"]] = {}


def register_method(name: str):
    """Class decorator: register a :class:`Method` subclass under ``name``."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} is already registered by {_REGISTRY[name].__name__}")
        if cls.stage not in STAGES:
            raise ValueError(f"method {name!r}: stage {cls.stage!r} is not one of {STAGES}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _ensure_builtin_methods() -> None:
    # Importing the package registers the built-in methods (decorators run at import).
    import vlprune.methods  # noqa: F401


def list_methods(stage: str | None = None) -> list[str]:
    """Names of registered methods, optionally only those of one ``stage`` (see :data:`STAGES`)."""
    _ensure_builtin_methods()
    if stage is not None and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of: {', '.join(STAGES)}")
    return sorted(n for n, c in _REGISTRY.items() if stage is None or c.stage == stage)


def get_method_class(name: str) -> type["Method"]:
    _ensure_builtin_methods()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; expected one of: {', '.join(list_methods())}")
    return _REGISTRY[name]


def method_options(name: str) -> list[str]:
    """Option (field) names of a registered method."""
    return [f.name for f in fields(get_method_class(name))]


def create_method(name: str, **options) -> "Method":
    """Instantiate a registered method; unknown options raise a ``TypeError`` naming them."""
    cls = get_method_class(name)
    known = set(method_options(name))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"method {name!r} has no option(s) {', '.join(unknown)}; its options are: {', '.join(sorted(known)) or 'none'}"
        )
    return cls(**options)


def keep_count(n: int, retain: float) -> int:
    """Tokens kept of ``n`` at share ``retain`` in (0, 1]: ``max(1, floor(retain * n + 0.5))``
    (half rounds up, never zero, ``retain = 1`` keeps all ``n``)."""
    return max(1, min(n, int(np.floor(retain * n + 0.5))))


@dataclass
class ImageContext:
    """What a method knows about one image of the batch.

    image:    index in the batch (processor order); sample: its batch row; order: its 0-based order among
              that sample's images; n_images: images in that sample (the last one is the current
              screenshot of an agent prompt).
    grid:     the image's block grid as the vision encoder receives it (after the input stage; None while
              input methods run before the processor, see ``PruningSession.process``).
    kept:     (n,) sorted block indices (raster order of ``grid.shape``) still present when the stage runs;
              the tokens a post-ViT / LLM method sees are these blocks, in this order.
    raw_size: (height, width) px the processor makes of the image without any input-stage resize.
    family:   the model family; pixel_limits: the processor's (min_pixels, max_pixels).
    """

    image: int
    sample: int
    order: int
    n_images: int
    grid: "BlockGrid | None"
    kept: np.ndarray
    raw_size: tuple[int, int] = (0, 0)
    family: object = None
    pixel_limits: tuple[int, int] = (0, 0)
    #: filled for post-ViT methods that ask (``PostViTMethod.vision_attention`` / ``needs_text``):
    #: the vision tower's attention at the method's block, and the (T, D) LLM input embeddings of the
    #: image's instruction (:func:`vlprune.methods.views.instruction_columns`)
    vision: "VisionAttention | None" = None
    text: "torch.Tensor | None" = None

    @property
    def is_last(self) -> bool:
        return self.order == self.n_images - 1

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) (row, col) of the present tokens on the block grid."""
        gw = self.grid.shape[1]
        return np.stack([self.kept // gw, self.kept % gw], axis=1)


@dataclass
class Method:
    """Base of every method. ``stage`` says where in the pipeline it acts."""

    name: ClassVar[str] = "?"
    stage: ClassVar[str] = "?"

    def __post_init__(self):
        """Validate options (subclasses call ``super().__post_init__()``)."""

    def components(self) -> tuple["Method", ...]:
        """The stage methods this method stands for in a pipeline (itself; presets spanning several
        stages, such as GUIPruner = TAR + SSP, return their parts)."""
        return (self,)

    def describe(self) -> str:
        """``name(option=value, ...)`` for stats, tables and logs."""
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"{self.name}({args})"


@dataclass
class InputMethod(Method):
    """Resizes a sample's images before the vision encoder (GUIPruner TAR).

    :meth:`sizes` sees every image of one sample at once (budgets span frames) and returns, per image,
    the new (height, width) in pixels (multiples of the family's block) or ``None`` to leave it.
    """

    stage: ClassVar[str] = "input"

    def sizes(self, images: list[ImageContext]) -> list[tuple[int, int] | None]:
        raise NotImplementedError


@dataclass
class PreViTMethod(Method):
    """Selects which blocks (= LLM tokens, 2x2 ViT patches each) enter the vision encoder.

    Subclasses implement :meth:`select`; calling the method wraps it with timing and checks.
    Methods that need to know where the image sits in its sample override :meth:`select_in_context`.
    """

    stage: ClassVar[str] = "pre_vit"

    def select(self, grid: "BlockGrid") -> np.ndarray | Selection:
        """Return sorted kept block indices (raster order of the ``grid.shape`` grid), or a Selection."""
        raise NotImplementedError

    def select_in_context(self, grid: "BlockGrid", ctx: ImageContext | None) -> np.ndarray | Selection:
        return self.select(grid)

    def vit_block(self) -> int | None:
        """Where the kept blocks are applied: None (default) before the vision encoder, which then sees
        only them; ``k`` after ViT block ``k`` (0-based, -1 = the last block), the encoder running on every
        block up to there (PixelPrune §4.6.3)."""
        return None

    def __call__(self, grid: "BlockGrid", ctx: ImageContext | None = None) -> Selection:
        t0 = time.perf_counter()
        out = self.select_in_context(grid, ctx)
        ms = (time.perf_counter() - t0) * 1e3
        sel = out if isinstance(out, Selection) else Selection(kept=np.asarray(out, dtype=np.int64), grid=grid.shape)
        sel.selector_ms = ms
        sel.method = self.name
        sel.validate()
        return sel


@dataclass
class TokenBudget:
    """Mixin of token-level methods with a budget: keep ``retain`` of the stage's incoming visual tokens
    of each image (``retain = 1`` keeps everything); ``history_retain``, when given, is the share for the
    images that are not the last of their sample (the history screenshots of an agent prompt), so a
    baseline can run at GUIPruner's split budget. Owns the shared top-k."""

    retain: float = 0.5
    history_retain: float | None = None

    def __post_init__(self):
        super().__post_init__()
        self.retain = opt.fraction("retain", self.retain)
        if self.history_retain is not None:
            self.history_retain = opt.fraction("history_retain", self.history_retain)

    def budget(self, n: int, ctx: ImageContext | None = None) -> int:
        share = self.retain
        if self.history_retain is not None and ctx is not None and not ctx.is_last:
            share = self.history_retain
        return keep_count(n, share)

    def top(self, scores: "torch.Tensor", ctx: ImageContext | None = None) -> "torch.Tensor":
        """Sorted indices of the ``budget(n, ctx)`` highest scores (ties: lower index first). scores: (n,)."""
        import torch

        n = scores.shape[0]
        k = self.budget(n, ctx)
        if k >= n:
            return torch.arange(n, device=scores.device)
        order = torch.sort(scores.float(), descending=True, stable=True).indices
        return torch.sort(order[:k]).values


@dataclass
class PostViTMethod(Method):
    """Selects among one image's vision-encoder output tokens (merger output, one per block that entered
    the ViT). :meth:`select` returns sorted local indices into ``features``; DeepStack features follow."""

    stage: ClassVar[str] = "post_vit"
    #: the method reads ``ctx.vision`` (attention rows of block ``self.vision_layer``, recomputed from
    #: that block's own projections during the ViT pass) / ``ctx.text`` (instruction embeddings)
    vision_attention: ClassVar[bool] = False
    needs_text: ClassVar[bool] = False

    def select(self, features: "torch.Tensor", ctx: ImageContext) -> "torch.Tensor | np.ndarray | TokenMerge":
        """features: (n, D) float; returns kept local indices (sorted, unique, in [0, n)), or a
        :class:`~vlprune.methods.views.TokenMerge` when kept tokens carry merged features."""
        raise NotImplementedError


@dataclass
class LLMMethod(Method):
    """Drops visual tokens inside the LLM: decoder layers ``0 .. K-1`` run on the whole sequence, layers
    ``K ..`` on the kept tokens only (their KV cache too); scores come from layer ``K - 1``.

    layer: K (0-based), or None for the family's default (2; the first valid K on hybrid models whose
    layer K - 1 must be an attention layer). :meth:`queries` names the query columns whose attention rows
    the method needs at layer ``K - 1`` (computed for those rows only); :meth:`select` picks per image.
    """

    stage: ClassVar[str] = "llm"
    #: the K used when ``layer`` is None, where the model allows it
    default_layer: ClassVar[int] = 2
    #: the runtime computes layer K - 1's key norms for :meth:`select_in_row` (DART's pivots)
    needs_key_norms: ClassVar[bool] = False

    layer: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.layer is not None:
            self.layer = opt.integer("layer", self.layer, minimum=1)

    def acts_on(self, ctx: ImageContext) -> bool:
        """Whether this method prunes that image (others keep all their tokens)."""
        return True

    def queries(self, row: LLMRow) -> list[int]:
        """Columns of ``row`` whose attention rows at layer K - 1 are needed ([] for none)."""
        return []

    def select(self, ctx: ImageContext, scores: "torch.Tensor | None", hidden: "torch.Tensor") -> "torch.Tensor":
        """scores: (n,) attention the image's n tokens receive (mean over heads and query rows) or None
        when no queries were asked; hidden: (n, D) the layer-K input at those tokens. Returns sorted
        kept local indices."""
        raise NotImplementedError

    def select_in_row(self, ctx: ImageContext, scores: "torch.Tensor | None", hidden: "torch.Tensor",
                      row: "LLMRowView") -> "torch.Tensor":
        """What the runtime calls: :meth:`select`, for methods that also read the rest of the row
        (the instruction's hidden states, key norms; DART, MoB) through ``row``."""
        return self.select(ctx, scores, hidden)

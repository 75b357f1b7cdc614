"""Post-ViT baselines: CDPruner (instruction-conditioned DPP), VisionZip (dominant + contextual tokens) and
VisPruner (important + diverse tokens). Each keeps ``retain`` of the vision encoder's output tokens of every
image (``history_retain`` for the images before a sample's last). Algorithms: :mod:`vlprune.algorithms`;
decisions (no [CLS] token, the 2x2 merger, which block, which text) in docs/baselines.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vlprune.algorithms.cdpruner import cdpruner_select
from vlprune.algorithms.ranking import share
from vlprune.algorithms.vispruner import vispruner_select
from vlprune.algorithms.visionzip import visionzip_select
from vlprune import options as opt
from vlprune.methods.base import PostViTMethod, TokenBudget, register_method
from vlprune.methods.views import TokenMerge


@register_method("cdpruner")
@dataclass
class CDPruner(TokenBudget, PostViTMethod):
    """Keep the vision tokens of maximal instruction-conditioned diversity (CDPruner, Zhang et al., NeurIPS 2025).

    Conditional DPP over the merger's output tokens (§3.3-3.4): similarity = cosine of the tokens,
    relevance = mean cosine similarity to the LLM input embeddings of the image's instruction (the text
    after it), min-max normalised; greedy MAP inference keeps ``retain`` of the tokens. ``theta`` in
    [0, 1): optional relevance weight exp(theta / (2 (1 - theta)) * relevance) (default: none, as the
    official code)."""

    needs_text: ClassVar[bool] = True
    theta: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.theta is not None:
            self.theta = opt.unit_interval("theta", self.theta)
            if self.theta >= 1:
                raise opt.OptionError("theta", f"option theta must be in [0, 1) (1 would weight relevance "
                                               f"infinitely), got {self.theta!r}")

    def select(self, features, ctx):
        return cdpruner_select(features, ctx.text, self.budget(features.shape[0], ctx), self.theta)


@dataclass
class VisionLayer:
    """Mixin: the vision block whose attention ranks the tokens (``vision_layer``, 0-based, negative
    counts from the last; default -1, the block the merger reads)."""

    vision_attention: ClassVar[bool] = True
    vision_layer: int = -1

    def __post_init__(self):
        super().__post_init__()
        self.vision_layer = opt.integer("vision_layer", self.vision_layer)


@register_method("visionzip")
@dataclass
class VisionZip(VisionLayer, TokenBudget, PostViTMethod):
    """Keep dominant tokens by vision-tower attention, merge the rest into contextual ones (VisionZip, Yang et al., CVPR 2025).

    Dominant: the tokens that receive the most attention at vision block ``vision_layer`` (mean over all
    queries: Qwen's towers have no [CLS] token); contextual: ``contextual`` of the budget (default 10/64, the
    paper's 54 + 10 setting) as uniformly spaced targets among the rest, each merged with the remaining
    tokens whose keys are closest (§3.2-3.3). Keeps ``retain`` of the tokens in total."""

    contextual: float = 10 / 64

    def __post_init__(self):
        super().__post_init__()
        self.contextual = opt.unit_interval("contextual", self.contextual)

    def select(self, features, ctx):
        k = self.budget(features.shape[0], ctx)
        c = min(share(k, self.contextual), k - 1)
        kept, src, dst, weight = visionzip_select(ctx.vision.received, ctx.vision.keys, k, c)
        if src.numel() == kept.numel():  # nothing merged: a plain selection
            return kept
        return TokenMerge(kept, src, dst, weight)


@register_method("vispruner")
@dataclass
class VisPruner(VisionLayer, TokenBudget, PostViTMethod):
    """Keep important tokens by vision-tower attention, then diverse ones by de-duplication (VisPruner, Zhang et al., ICCV 2025).

    Important: ``important`` of the budget (default 0.5, the paper's) with the most attention received at
    vision block ``vision_layer`` (mean over all queries: Qwen's towers have no [CLS] token); diverse: the
    rest of the budget from the other tokens by iterative similarity matching on the merger's output
    (§3.3). Keeps ``retain`` of the tokens in total."""

    important: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        self.important = opt.unit_interval("important", self.important)

    def select(self, features, ctx):
        return vispruner_select(ctx.vision.received, features, self.budget(features.shape[0], ctx), self.important)

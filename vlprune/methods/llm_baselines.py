"""In-LLM baselines: DART (duplication-aware pivots) and MoB (multi-objective balanced covering). Decoder
layers ``0 .. K-1`` see every token; from layer K on each image keeps ``retain`` of its visual tokens
(``history_retain`` for the images before a sample's last). Both measure similarity on the layer-K input
hidden states through the text model's final norm and read the image's instruction (the text after it).
Algorithms: :mod:`vlprune.algorithms.dart`, :mod:`vlprune.algorithms.mob`; decisions in docs/baselines.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from vlprune.algorithms.dart import dart_select
from vlprune.algorithms.mob import mob_select
from vlprune import options as opt
from vlprune.methods.base import LLMMethod, TokenBudget, register_method


def _instruction(method: str, ctx, row) -> torch.Tensor:
    if row.instruction.numel() == 0:
        raise ValueError(f"method {method!r}: image {ctx.image} (sample {ctx.sample}) has no text after it; the "
                         f"method reads the instruction that follows the image in Qwen-VL prompts")
    return row.instruction


def _normed(row, cols: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return row.final_norm(row.hidden[cols.to(row.hidden.device)])


@register_method("dart")
@dataclass
class DART(TokenBudget, LLMMethod):
    """Keep the visual tokens least similar to a few pivot tokens, from layer K on (DART, Wen et al., EMNLP 2025).

    Pivots: the ``pivot_image`` visual tokens and ``pivot_text`` instruction tokens with the largest L1
    norm of their keys at layer K - 1; each pivot then takes its share of the budget as the visual tokens
    least cosine-similar to it (final-norm hidden states at layer K), duplicates of kept tokens dropped
    (§3). Defaults K = 2, 4 + 4 pivots (the official Qwen2-VL scripts)."""

    needs_key_norms: ClassVar[bool] = True
    pivot_image: int = 4
    pivot_text: int = 4

    def __post_init__(self):
        super().__post_init__()
        self.pivot_image = opt.integer("pivot_image", self.pivot_image, minimum=0)
        self.pivot_text = opt.integer("pivot_text", self.pivot_text, minimum=0)
        if self.pivot_image + self.pivot_text == 0:
            raise opt.OptionError("pivot_image", "options pivot_image and pivot_text cannot both be 0: DART needs "
                                                 "at least one pivot token")

    def select_in_row(self, ctx, scores, hidden, row):
        start, end = row.span
        img = torch.arange(start, end, device=row.hidden.device)
        txt = _instruction(self.name, ctx, row) if self.pivot_text else img[:0]
        return dart_select(row.key_norms[img], row.key_norms[txt.to(row.key_norms.device)], _normed(row, img),
                           _normed(row, txt), self.budget(end - start, ctx), self.pivot_image, self.pivot_text)


@register_method("mob")
@dataclass
class MoB(TokenBudget, LLMMethod):
    """Keep visual tokens that cover both the prompt and the image, from layer K on (MoB, Li et al., NeurIPS 2025).

    Bi-objective covering on final-norm hidden states at layer K (cosine distance): every prompt token
    (the image's instruction) takes its ``fold`` nearest visual tokens (prompt alignment), farthest-point
    sampling fills the rest of the budget (visual preservation). The prompt's share of the budget is
    ``prompt_share`` if given, else found by trading the two covering radii (weight ``eta`` on the
    prompt's). Default K = 2."""

    fold: int = 4
    prompt_share: float | None = None
    eta: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        self.fold = opt.integer("fold", self.fold, minimum=1)
        if self.prompt_share is not None:
            self.prompt_share = opt.unit_interval("prompt_share", self.prompt_share)
        self.eta = opt.positive("eta", self.eta)

    def select_in_row(self, ctx, scores, hidden, row):
        start, end = row.span
        img = torch.arange(start, end, device=row.hidden.device)
        prompt = _instruction(self.name, ctx, row)
        kept, _ = mob_select(_normed(row, img), _normed(row, prompt), self.budget(end - start, ctx), self.fold,
                             self.prompt_share, self.eta)
        return kept

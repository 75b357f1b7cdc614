"""Token-level baselines on the staged runtime: DivPrune after the vision encoder, FastV inside the LLM."""

from __future__ import annotations

from dataclasses import dataclass

from vlprune.algorithms.diversity import max_min_diverse
from vlprune.methods.base import LLMMethod, LLMRow, PostViTMethod, TokenBudget, register_method


@register_method("divprune")
@dataclass
class DivPrune(TokenBudget, PostViTMethod):
    """Max-min diversity over each image's vision-encoder output tokens, cosine distance (DivPrune,
    Alvar et al., CVPR 2025, §3.2, Alg. 1); keeps ``retain`` of the tokens that reach it."""

    def select(self, features, ctx):
        return max_min_diverse(features, self.budget(features.shape[0], ctx))


@register_method("fastv")
@dataclass
class FastV(TokenBudget, LLMMethod):
    """FastV (Chen et al., ECCV 2024, §4.2): at layer K - 1, the attention each visual token receives from
    the last prompt token (mean over heads) ranks it; layers K.. keep the top ``retain`` of each image's
    visual tokens. Defaults K = 2, retain = 0.5 (the paper's K = 2, R = 50 %)."""

    def queries(self, row: LLMRow) -> list[int]:
        return [row.last]

    def select(self, ctx, scores, hidden):
        return self.top(scores, ctx)

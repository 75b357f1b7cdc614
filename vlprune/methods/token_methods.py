"""Token-level baselines on the staged runtime: DivPrune after the vision encoder, FastV inside the LLM."""

from __future__ import annotations

from dataclasses import dataclass

from vlprune.algorithms.diversity import max_min_diverse
from vlprune.methods.base import LLMMethod, LLMRow, PostViTMethod, TokenBudget, register_method


@register_method("divprune")
@dataclass
class DivPrune(TokenBudget, PostViTMethod):
    """Keep the most diverse vision-encoder output tokens of each image (DivPrune, Alvar et al., CVPR 2025).

    Max-min diversity with cosine distance, the paper's greedy algorithm (§3.2, Alg. 1); keeps ``retain``
    of the tokens that reach it."""

    def select(self, features, ctx):
        return max_min_diverse(features, self.budget(features.shape[0], ctx))


@register_method("fastv")
@dataclass
class FastV(TokenBudget, LLMMethod):
    """Keep the visual tokens the last prompt token attends to most, from layer K on (FastV, Chen et al., ECCV 2024).

    At layer K - 1 the attention each visual token receives from the last prompt token (mean over heads)
    ranks it (§4.2); layers K .. keep the top ``retain`` of each image's visual tokens. Defaults K = 2,
    retain = 0.5 (the paper's K = 2, R = 50 %)."""

    def queries(self, row: LLMRow) -> list[int]:
        return [row.last]

    def select(self, ctx, scores, hidden):
        return self.top(scores, ctx)

"""Token-level baselines on the staged runtime: DivPrune after the vision encoder, FastV inside the LLM."""

from __future__ import annotations

from dataclasses import dataclass

from vlprune.algorithms.diversity import max_min_diverse
from vlprune import options as opt
from vlprune.methods.base import LLMMethod, LLMRow, PostViTMethod, TokenBudget, register_method


@register_method("divprune")
@dataclass
class DivPrune(TokenBudget, PostViTMethod):
    """Keep the most diverse vision-encoder output tokens of each image (DivPrune, Alvar et al., CVPR 2025).

    Max-min diversity with cosine distance, the paper's greedy algorithm (§3.2, Alg. 1); keeps ``retain``
    of the tokens that reach it."""

    def select(self, features, ctx):
        return max_min_diverse(features, self.budget(features.shape[0], ctx))


class QueryRule(str):
    """FastV's ``queries`` option value, which is also its llm-stage hook ``queries(row)``: ``"last"`` asks for
    the last prompt token's attention row, ``"all"`` for every non-padding token's row of the batch row."""

    def __call__(self, row: LLMRow) -> list[int]:
        return [row.last] if self == "last" else list(range(row.first, row.last + 1))


@register_method("fastv")
@dataclass
class FastV(TokenBudget, LLMMethod):
    """Keep the visual tokens the prompt attends to most, from layer K on (FastV, Chen et al., ECCV 2024).

    At layer K - 1 each visual token is ranked by the attention it receives (mean over heads and query
    rows); layers K .. keep the top ``retain`` of each image's visual tokens. ``queries="last"`` (default)
    scores with the last prompt token's row, as FastV's official code does; ``queries="all"`` averages the
    rows of every token, as the paper's §4.2 text defines the score (L query rows: L x L scores at one
    layer). Defaults K = 2, retain = 0.5 (the paper's K = 2, R = 50 %)."""

    queries: str = QueryRule("last")

    def __post_init__(self):
        super().__post_init__()
        self.queries = QueryRule(opt.choice("queries", self.queries, ("last", "all")))

    def select(self, ctx, scores, hidden):
        return self.top(scores, ctx)

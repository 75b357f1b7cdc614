"""Stats of the last call through :func:`vlprune.apply`: per image tokens after every stage, per stage
times, and the analytic FLOPs input of what actually ran (:meth:`CallStats.flops_prompts`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageStats:
    """One image of the last call.

    tokens_by_stage: ``{"raw": tokens the processor made, <stage>: tokens after that stage, ...}`` for
        every stage that ran, in stage order; ``tokens_before`` / ``tokens_after`` are its first / last.
    grid: the processor's merged-token grid (gh, gw); resized: (H, W) px when the input or pre-ViT stage
        resized the image (its grid is then ``vit_grid``).
    vit_grid_thw: (t, h, w) in patches of what the vision encoder got; vit_blocks: the blocks it got
        (raster order of ``vit_grid_thw``'s merged grid); kept_blocks: the blocks whose tokens reach the
        LLM's last layer.
    stage_ms: selection time per stage (the llm stage's scoring is in ``CallStats.llm_ms``).
    """

    image: int
    sample: int
    order: int
    grid: tuple[int, int]
    tokens_by_stage: dict[str, int]
    method: str
    vit_grid_thw: tuple[int, int, int]
    vit_blocks: np.ndarray
    kept_blocks: np.ndarray
    llm_kept_before_llm: int = 0
    resized: tuple[int, int] | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    strata: dict[str, np.ndarray] | None = None

    @property
    def tokens_before(self) -> int:
        return self.tokens_by_stage["raw"]

    @property
    def tokens_after(self) -> int:
        return list(self.tokens_by_stage.values())[-1]

    @property
    def retain(self) -> float:
        return self.tokens_after / self.tokens_before

    @property
    def selector_ms(self) -> float:
        return sum(self.stage_ms.values())


@dataclass
class CallStats:
    """Stats of one ``forward`` / ``generate`` call with images.

    plan_ms: everything before the vision encoder (input + pre-ViT selection, index bookkeeping);
    vit_ms: the vision encoder; post_ms: post-ViT selection + building the LLM sequence;
    llm_ms: the in-LLM stage (attention rows, selection, gathers, masks) summed over its hooks;
    llm_tokens_before / llm_tokens_after: longest unpruned row L / longest row entering the LLM L';
    llm_tokens_final: longest row from layer ``llm_layer`` on (= L' without an llm method).
    text_tokens: per batch row, its non-image tokens (for the FLOPs model).
    llm_keep: with an llm method, per batch row the columns of the sequence that entered the LLM which
        layers >= K (and the returned logits) hold, in order; llm_attention_mask: their (B, L'') mask.
    """

    entry: str
    images: list[ImageStats] = field(default_factory=list)
    plan_ms: float = 0.0
    vit_ms: float = 0.0
    post_ms: float = 0.0
    llm_ms: float = 0.0
    videos_passed_through: int = 0
    llm_tokens_before: int = 0
    llm_tokens_after: int = 0
    llm_tokens_final: int = 0
    llm_layer: int | None = None
    llm_query_rows: list[int] = field(default_factory=list)
    text_tokens: list[int] = field(default_factory=list)
    attn_implementation: str = ""
    llm_keep: list | None = None
    llm_attention_mask: object = None

    @property
    def tokens_before(self) -> int:
        return sum(s.tokens_before for s in self.images)

    @property
    def tokens_after(self) -> int:
        return sum(s.tokens_after for s in self.images)

    @property
    def retain(self) -> float:
        return self.tokens_after / max(1, self.tokens_before)

    @property
    def selector_ms(self) -> float:
        return sum(s.selector_ms for s in self.images)

    def flops_prompts(self):
        """Per batch row, the :class:`vlprune.flops.Prompt` of what ran: each image's ViT grid and blocks,
        the tokens that entered the LLM, and the in-LLM prune (layer, kept visual tokens, query rows)."""
        from vlprune.flops import ImageTokens, LLMPrune, Prompt

        prompts = []
        for row, text in enumerate(self.text_tokens):
            imgs = [s for s in self.images if s.sample == row]
            tokens = [ImageTokens(s.vit_grid_thw, kept=s.vit_blocks, llm_kept=s.llm_kept_before_llm) for s in imgs]
            prune = None
            if self.llm_layer is not None:
                prune = LLMPrune(self.llm_layer, sum(s.tokens_after for s in imgs), self.llm_query_rows[row])
            prompts.append(Prompt(tokens, text, prune))
        return prompts

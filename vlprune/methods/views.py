"""What the instruction-aware and merging methods see and return, beyond the basic stage contracts of
:mod:`vlprune.methods.base`:

* :class:`VisionAttention` -- per token of one image, the attention it receives at one vision-tower block
  and that block's keys (VisionZip, VisPruner), filled by the runtime when a post-ViT method asks;
* :func:`instruction_columns` -- which tokens of a sample are an image's instruction (CDPruner, DART, MoB);
* :class:`LLMRow` -- one batch row's image spans at the scoring layer (every in-LLM method);
* :class:`LLMRowView` -- the whole batch row at the in-LLM pruning layer (DART, MoB);
* :class:`TokenMerge` -- a post-ViT result that merges tokens instead of only dropping them (VisionZip).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch


@dataclass
class VisionAttention:
    """One image at one vision-tower block, per LLM token (= one merge x merge group of patches).

    received: (n,) float32 attention the token's patches receive (mean over heads, summed over the query
    patches of their attention segment, averaged over the group's patches): every segment hands out one
    unit per query, so 1.0 is the average token. keys: (n, head_dim) float32 keys after the rotary
    embedding, averaged over heads and the group's patches. layer: the block (0-based)."""

    received: torch.Tensor
    keys: torch.Tensor
    layer: int


def instruction_columns(input_ids: torch.Tensor, valid: torch.Tensor | None, after: int,
                        skip_ids: tuple[int, ...]) -> torch.Tensor:
    """Columns of an image's instruction: the tokens of its row after column ``after`` (the image's end)
    that are not padding and not image / video placeholders (other images of the sample).

    input_ids: (L,) one row; valid: (L,) bool non-padding or None. Returns (T,) int64 sorted (T may be 0).
    In Qwen-VL chat prompts the question or agent task follows the images, so this is the user's
    instruction plus the chat template's closing tokens."""
    cols = torch.arange(input_ids.shape[0], device=input_ids.device)
    keep = cols >= after
    if valid is not None:
        keep &= valid.to(torch.bool)
    for t in skip_ids:
        keep &= input_ids != t
    return cols[keep]


@dataclass
class LLMRow:
    """One batch row of the LLM sequence at the scoring layer (columns of the pre-LLM-prune sequence).

    images: per image of the row, its (start, end) column span (kept visual tokens, in order);
    first / last: the first and last non-padding columns.
    """

    sample: int
    images: list[tuple[int, int]]
    first: int
    last: int


@dataclass
class LLMRowView:
    """The batch row an image belongs to, at the in-LLM pruning layer K.

    row: its :class:`LLMRow`; span: (start, end) of this image's tokens;
    hidden: (L', D) the row's layer-K input; key_norms: (L',) L1 norms of layer K - 1's keys (every
    key head concatenated, after the q/k norm and rotary embedding, as the KV cache holds them) when the
    method set ``needs_key_norms``, else None; instruction: (T,) columns of the image's instruction
    (:func:`instruction_columns`); final_norm: the text model's final norm module."""

    row: LLMRow
    span: tuple[int, int]
    hidden: torch.Tensor
    key_norms: torch.Tensor | None
    instruction: torch.Tensor
    final_norm: torch.nn.Module


@dataclass
class TokenMerge:
    """Kept tokens whose features are combinations of several input tokens (VisionZip's contextual tokens).

    kept: (k,) sorted local indices: output slot j sits at token kept[j]'s position; src, dst: (m,) int64,
    weight: (m,) float32: slot j's feature is ``sum(weight[e] * x[src[e]] for e with dst[e] == j)``. The
    runtime applies it to the merger output and to every DeepStack feature alike."""

    kept: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    weight: torch.Tensor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, D) -> (k, D), accumulated in float32, returned in x's dtype."""
        dev = x.device
        out = torch.zeros((self.kept.numel(), x.shape[-1]), dtype=torch.float32, device=dev)
        contrib = x[self.src.to(dev)].float() * self.weight.to(dev, torch.float32)[:, None]
        out.index_add_(0, self.dst.to(dev), contrib)
        return out.to(x.dtype)

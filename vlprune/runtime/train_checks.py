"""What the runtime refuses in a training forward (the model in training mode, gradients on), before any
compute: pipelines whose gradient would be wrong or whose backward pass would fail inside the model.

Trained as in PixelPrune §4.3-4.4: input, pre-ViT and post-ViT methods (the LLM sees the kept tokens
from its first layer on, so logits and labels stay aligned). Refused:

* an in-LLM method: from layer K on the model returns logits of the kept tokens only, so they no longer
  align with labels or with a full-token teacher, and the layer-K selection runs inside decoder-layer
  hooks that gradient checkpointing may replay;
* an in-ViT keep set (``after_block``) with gradient checkpointing of the vision tower on a transformers
  release whose checkpointing replays module hooks in the backward pass
  (:func:`vlprune.compat.checkpointing_replays_hooks`): the replay would run the blocks after ``k`` on
  every row.
"""

from __future__ import annotations

from vlprune import compat


def refuse_untrainable(pipeline, adapter, vit_block: int | None) -> None:
    """ValueError naming the method and the reason when ``pipeline`` cannot run a training forward."""
    llm = pipeline.get("llm")
    if llm is not None:
        raise ValueError(
            f"the in-LLM method {llm.name!r} cannot be trained through: from layer K on the model returns logits "
            f"of the kept tokens only, which no longer align with labels or a full-token teacher; train with "
            f"input / pre-ViT / post-ViT methods (e.g. 'pixelprune') and add {llm.name!r} at inference, or run "
            f"this forward under torch.no_grad() or with model.eval()")
    if vit_block is None or not compat.checkpointing_replays_hooks():
        return
    if any(getattr(b, "gradient_checkpointing", False) for b in adapter.visual.blocks):
        pre = pipeline.get("pre_vit")
        raise ValueError(
            f"method {pre.name!r} applies its keep set after ViT block {vit_block}, and gradient checkpointing of "
            f"the vision tower on transformers {compat.version_string()} replays the blocks' hooks in the backward "
            f"pass, where they are gone; turn gradient checkpointing off for the vision tower, prune before the "
            f"ViT (no after_block), or use a transformers release that checkpoints forward only (5.24 does)")

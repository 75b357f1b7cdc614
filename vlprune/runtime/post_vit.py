"""The post-ViT stage: what a post-ViT method is given, and how its answer is applied.

Per image the method gets the vision encoder's output tokens (n, D) and its :class:`ImageContext`, plus on
request ``ctx.vision`` (attention rows of one vision block, :mod:`vlprune.runtime.vision_attention`) and
``ctx.text`` (the LLM input embeddings of the image's instruction,
:func:`~vlprune.methods.views.instruction_columns`). It answers with kept local indices or a
:class:`~vlprune.methods.views.TokenMerge`; the same selection / merge is applied to the merger output and
to every DeepStack feature of the image.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from vlprune.methods.base import ImageContext, PostViTMethod
from vlprune.methods.views import TokenMerge, instruction_columns
from vlprune.models.base import FamilyAdapter
from vlprune.runtime.checks import check_local_indices
from vlprune.runtime.vision_attention import VisionAttentionTap, resolve_vision_layer


class PostViTStage:
    """The post-ViT method of one pipeline on one model (or none)."""

    def __init__(self, adapter: FamilyAdapter, pipeline):
        self.ad = adapter
        self.method: PostViTMethod | None = pipeline.get("post_vit")
        self.layer = None
        m = self.method
        if m is not None and m.vision_attention:
            self.layer = resolve_vision_layer(m.vision_layer, adapter.vision_depth(), m.name)
            pre = pipeline.get("pre_vit")
            if pre is not None and pre.vit_block() is not None:
                raise ValueError(f"method {m.name!r} ranks tokens by the vision encoder's attention and cannot follow "
                                 f"{pre.name!r} applied inside the encoder (after_block); prune before the encoder")
        self.tap: VisionAttentionTap | None = None

    def watch(self, vision_kwargs: dict, kept_sizes: list[int]):
        """Context manager around the vision-tower call: recomputes the method's attention rows, if it asks."""
        if self.layer is None:
            self.tap = None
            return nullcontext()
        self.tap = VisionAttentionTap(self.ad, self.layer, vision_kwargs, kept_sizes)
        return self.tap

    def _inputs(self, contexts: list[ImageContext], spans, input_ids, attention_mask) -> float:
        """Fill ``ctx.vision`` / ``ctx.text`` where the method asks; returns the ms this took per image."""
        m, t0 = self.method, time.perf_counter()
        if self.tap is not None:
            for ctx, va in zip(contexts, self.tap.per_image()):
                ctx.vision = va
        if m.needs_text:
            skip = (self.ad.image_token_id, self.ad.video_token_id)
            for ctx, span in zip(contexts, spans):
                valid = attention_mask[span.row] if attention_mask is not None else None
                cols = instruction_columns(input_ids[span.row], valid, span.end, skip)
                if cols.numel() == 0:
                    raise ValueError(f"method {m.name!r}: image {ctx.image} has no text after it to condition on "
                                     f"(the instruction follows the image in Qwen-VL prompts)")
                with torch.no_grad():
                    ctx.text = self.ad.embed_tokens(input_ids[span.row, cols])
        tap_ms = self.tap.ms if self.tap is not None else 0.0
        return (tap_ms + (time.perf_counter() - t0) * 1e3) / max(1, len(contexts))

    def run(self, contexts: list[ImageContext], spans, enc, input_ids, attention_mask) -> list[float]:
        """Select (or merge) each image's tokens in ``enc`` (in place: ``pooler_output``, DeepStack features)
        and its ``ctx.kept``. Returns per image the selection ms (its share of the attention rows and
        instruction embeddings included)."""
        m = self.method
        shared_ms = self._inputs(contexts, spans, input_ids, attention_mask)
        pooled = list(enc.pooler_output)
        deep = [list(f) for f in getattr(enc, "deepstack_features", None) or []] if self.ad.deepstack else []
        times = []
        for i, ctx in enumerate(contexts):
            t0 = time.perf_counter()
            out = m.select(pooled[i], ctx)
            merge = out if isinstance(out, TokenMerge) else None
            local = check_local_indices(merge.kept if merge else out, pooled[i].shape[0], m.name, ctx.image)
            if merge is None:
                idx = local.to(pooled[i].device)
                pooled[i] = pooled[i][idx]
                for f in deep:
                    f[i] = f[i][idx.to(f[i].device)]
            else:
                pooled[i] = merge.apply(pooled[i])
                for f in deep:
                    f[i] = merge.apply(f[i])
            ctx.kept = ctx.kept[local.numpy()]
            ctx.vision = ctx.text = None
            times.append(shared_ms + (time.perf_counter() - t0) * 1e3)
        enc.pooler_output = tuple(pooled)
        if deep:
            enc.deepstack_features = [tuple(f) for f in deep]
        return times

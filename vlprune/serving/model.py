"""The plug-in's model side (vLLM worker): the vision tower on kept patches, unpruned M-RoPE positions.

A mixin over each stock Qwen-VL ``*ForConditionalGeneration`` class (built in
:mod:`vlprune.serving.vllm_models`) overriding the few methods that depend on an image's token count:

* ``embed_multimodal`` / ``_process_image_input``: the tower runs on the kept patch rows with encoder
  metadata rebuilt for the kept blocks (:mod:`vlprune.serving.encoder`); its output is split by kept
  counts and checked against them (fail closed). An image that keeps every block takes the stock path,
  so keep-all is the stock model exactly;
* ``get_mrope_input_positions``: the stock positions of the unpruned prompt, gathered at the kept
  columns (:mod:`vlprune.serving.positions`); each image's placeholder length is checked against its
  kept count;
* ``get_encoder_cudagraph_config``: encoder CUDA graphs (built for full grids) serve videos only.

The engine refuses to start on settings the plug-in cannot honour: no or an invalid plan, a data-parallel
vision encoder (``mm_encoder_tp_mode="data"`` shards images by full grid), vLLM's own video pruning (EVS).
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from typing import ClassVar

import torch

from vlprune.serving.encoder import BUILDERS
from vlprune.serving.plan import ServingError, ServingPlan
from vlprune.serving.positions import expand
from vlprune.serving.processor import KEEP, resolve_plan
from vlprune.serving.select import keep_masks

_KEEP: ContextVar["torch.Tensor | None"] = ContextVar("vlprune_keep", default=None)


def check_engine(vllm_config) -> ServingPlan:
    """Refuse engine settings the plug-in cannot serve; returns the deployment's plan."""
    mm = vllm_config.model_config.get_multimodal_config()
    plan = resolve_plan(mm, {})
    if getattr(mm, "mm_encoder_tp_mode", "weights") == "data":
        raise ServingError("mm_encoder_tp_mode='data' shards the vision encoder's images by their full grids, "
                           "which pruned images do not have; use the default 'weights' mode with vlprune")
    if mm.is_multimodal_pruning_enabled():
        raise ServingError("vLLM's own video pruning (EVS, video_pruning_rate) rewrites M-RoPE positions from "
                           "the encoder output and cannot be combined with vlprune's image pruning; unset it")
    return plan


class PruningModel:
    """Mixin over a stock Qwen-VL model class (see the module docstring)."""

    #: the tower kind (:attr:`vlprune.serving.families.ServedArchitecture.encoder`), set per class
    vlprune_encoder: ClassVar[str] = ""

    def __init__(self, *, vllm_config, prefix: str = ""):
        plan = check_engine(vllm_config)
        super().__init__(vllm_config=vllm_config, prefix=prefix)  # vLLM always passes prefix
        self.vlprune_plan = plan

    # ------------------------------------------------------------------ vision tower
    def embed_multimodal(self, **kwargs):
        keep = kwargs.pop(KEEP, None)
        if keep is None and kwargs.get("pixel_values") is not None:
            raise ServingError("images reached the vlprune model without keep masks; refusing to serve them unpruned")
        token = _KEEP.set(keep)
        try:
            return super().embed_multimodal(**kwargs)
        finally:
            _KEEP.reset(token)

    def _process_image_input(self, image_input):
        if image_input["type"] != "pixel_values":
            raise ServingError("vlprune prunes images before the vision encoder; image embeddings cannot be pruned")
        grid = image_input["image_grid_thw"]
        m = self.visual.spatial_merge_size
        masks = keep_masks(_KEEP.get(), grid, m)
        if all(k.all() for k in masks):
            return super()._process_image_input(image_input)  # nothing pruned: the stock path
        grids = grid.tolist()
        meta = BUILDERS[self.vlprune_encoder](self.visual, grids, masks)
        embeds = self.visual(image_input["pixel_values"], grid_thw=grids, encoder_metadata=meta)
        kept = [int(k.sum()) for k in masks]
        if embeds.shape[0] != sum(kept):
            raise ServingError(f"the vision tower returned {embeds.shape[0]} tokens for {sum(kept)} kept blocks")
        return embeds.split(kept)

    def get_encoder_cudagraph_config(self):
        config = super().get_encoder_cudagraph_config()
        return dataclasses.replace(config, modalities=[m for m in config.modalities if m != "image"])

    # ------------------------------------------------------------------ positions
    def get_mrope_input_positions(self, input_tokens, mm_features):
        m = self.config.vision_config.spatial_merge_size
        items = []
        for f in mm_features:
            keep = None
            if f.modality == "image":
                if f.data is None or KEEP not in f.data:
                    raise ServingError("an image reached the vlprune model without its keep mask")
                (keep,) = keep_masks(f.data[KEEP].data, f.data["image_grid_thw"].data.view(1, 3), m)
                if int(keep.sum()) != f.mm_position.length:
                    raise ServingError(f"an image placeholder holds {f.mm_position.length} tokens but its keep mask "
                                       f"keeps {int(keep.sum())}: placeholder and vision-tower output disagree")
                if keep.all():
                    keep = None
            items.append((f.mm_position.offset, f.mm_position.length, keep))
        if all(k is None for _, _, k in items):
            return super().get_mrope_input_positions(input_tokens, mm_features)
        exp = expand(list(input_tokens), items, int(self.config.image_token_id))
        virtual = [dataclasses.replace(f, mm_position=dataclasses.replace(
                       f.mm_position, offset=exp.offsets[i], length=f.mm_position.length if keep is None else keep.size))
                   for i, (f, (_, _, keep)) in enumerate(zip(mm_features, items))]
        positions, delta = super().get_mrope_input_positions(exp.tokens, virtual)
        cols = torch.from_numpy(exp.columns)
        return positions[:, cols], int(delta) + exp.dropped


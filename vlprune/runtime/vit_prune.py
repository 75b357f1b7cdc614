"""A pre-ViT keep set applied inside the vision encoder, after block ``k`` (PixelPrune §4.6.3, Table 7).

The vision tower runs on every block of each image up to block ``k``; from there on only the kept
blocks' patch rows remain. Hooks only, on the family's own tower, removed on exit:

* block ``k``'s output keeps the kept rows (in the tower's sequence order: raster, or Qwen2.5-VL's
  window order);
* each later block gets the attention segments of the kept rows (``cu_seqlens`` per image, Qwen2.5-VL's
  windows rebuilt from the kept blocks as for pre-ViT pruning), their ``max_seqlen`` and their rows of the
  rotary tables;
* the merger's output, and that of Qwen3-VL DeepStack mergers at or after block ``k``, is scattered back
  to the full token count (zeros at dropped tokens), so the tower returns its usual shapes; the caller
  then keeps each image's kept tokens (:meth:`VitPrune.gather`).

With every block kept the hooks gather and scatter identity indices: outputs are bit-identical to the
unmodified tower.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from vlprune.models.base import patch_rows


@dataclass
class VitPrune:
    """Apply ``kept`` (per image, sorted local block indices) after ViT block ``block`` (0-based)."""

    block: int
    kept: list[np.ndarray]
    n_blocks: list[int]

    @property
    def kept_global(self) -> np.ndarray:
        """(sum_k,) kept blocks as indices into all images' blocks, image by image."""
        offsets = np.cumsum([0, *self.n_blocks[:-1]])
        return np.concatenate([np.asarray(k, np.int64) + o for k, o in zip(self.kept, offsets)])

    def gather(self, per_image: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each image's (n_i, D) tower output -> its kept rows (k_i, D)."""
        return [t[torch.as_tensor(k, dtype=torch.long, device=t.device)] for t, k in zip(per_image, self.kept)]


def resolve_block(block: int, depth: int, method: str) -> int:
    """``block`` (-1 = last) as a 0-based index into a tower of ``depth`` blocks; ValueError outside it."""
    k = depth - 1 if block == -1 else block
    if not 0 <= k < depth:
        raise ValueError(f"method {method!r}: after_block={block} is outside the vision encoder's {depth} blocks "
                         f"(0 .. {depth - 1}, or -1 for the last)")
    return k


def _scatter(out: torch.Tensor, positions: torch.Tensor, total: int) -> torch.Tensor:
    full = out.new_zeros((total, *out.shape[1:]))
    full[positions.to(out.device)] = out
    return full


@contextmanager
def vit_prune_hooks(adapter, prune: VitPrune, grid_thw: torch.Tensor, vision_kwargs: dict):
    """Install the hooks for one tower call on all blocks (see module docstring); always removed."""
    visual = adapter.visual
    blocks = visual.blocks
    total = int(sum(prune.n_blocks))
    order = adapter.vit_sequence_order(vision_kwargs, total)  # (total,) block at each sequence position
    keep = np.zeros(total, bool)
    keep[prune.kept_global] = True
    positions = np.flatnonzero(keep[order])  # sequence positions of the kept blocks
    rows = patch_rows(positions, 0, adapter.merge)
    pos_t = torch.from_numpy(positions)
    pruned = adapter.vit_kept_segments(grid_thw, prune.kept)
    k = prune.block

    def keep_rows(module, args, out):
        if not torch.is_tensor(out):
            raise TypeError(f"vision block {k} returned {type(out).__name__}; in-ViT pruning needs a tensor")
        return out[rows.to(out.device)]

    def narrow(j):
        def pre(module, args, kwargs):
            cu = pruned["window" if adapter.vit_block_windowed(j) else "full"]
            kwargs["cu_seqlens"] = cu.to(kwargs["cu_seqlens"].device)
            if kwargs.get("max_seqlen") is not None:
                kwargs["max_seqlen"] = int((cu[1:] - cu[:-1]).max())
            pe = kwargs.get("position_embeddings")
            if pe is not None:
                kwargs["position_embeddings"] = tuple(t[rows.to(t.device)] for t in pe)
            return args, kwargs

        return pre

    def restore(module, args, out):
        return _scatter(out, pos_t, total)

    handles = [blocks[k].register_forward_hook(keep_rows)]
    try:
        handles += [blocks[j].register_forward_pre_hook(narrow(j), with_kwargs=True) for j in range(k + 1, len(blocks))]
        handles.append(visual.merger.register_forward_hook(restore))
        for layer, merger in zip(getattr(visual, "deepstack_visual_indexes", None) or (),
                                 getattr(visual, "deepstack_merger_list", None) or ()):
            if layer >= k:  # taken after the prune: scatter back like the main merger
                handles.append(merger.register_forward_hook(restore))
        yield
    finally:
        for h in handles:
            h.remove()

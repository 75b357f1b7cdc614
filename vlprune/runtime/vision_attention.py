"""Attention inside the vision tower for post-ViT methods that rank tokens by it (VisionZip, VisPruner),
recomputed from one block's own projections while the tower runs -- its sdpa / flash kernel keeps running
(they return no weights); nothing is switched to eager attention, nothing is patched.

Two hooks on block ``l``'s attention module, installed only around the tower call: a pre-hook reads the
call's ``cu_seqlens`` and rotary ``position_embeddings``; a forward hook on its ``qkv`` projection takes
the projected rows, applies the module's own rotary function and computes, per attention segment (one
image, or one window of Qwen2.5-VL's windowed blocks), ``softmax(q k^T * scaling)`` in query chunks. Per
patch: the attention it receives, mean over heads, summed over the segment's queries; and its keys, mean
over heads. Rows are put back in kept-block order (the adapter's ``vit_sequence_order``: Qwen2.5-VL runs
its blocks in window order) and pooled per LLM token over its merge x merge patches (mean), as the merger
pools features. Equal to eager attention's weights at that block (tested on all four families).
Cost: ``2 * heads * L^2 * head_dim`` multiply-adds per segment of L patches plus one softmax over them.
"""

from __future__ import annotations

import sys
import time

import torch

from vlprune.methods.views import VisionAttention
from vlprune.models.base import FamilyAdapter

#: query rows per chunk (bounds the (heads, chunk, L) float32 probability block; 64 measured fastest on CPU)
CHUNK = 64


def resolve_vision_layer(layer: int, depth: int, method: str) -> int:
    """0-based block index of ``layer`` (negative counts from the last block); ValueError naming the option."""
    if not -depth <= layer < depth:
        raise ValueError(f"option vision_layer={layer} of method {method!r} must be in [{-depth}, {depth - 1}]: "
                         f"the vision tower has {depth} blocks")
    return layer % depth


def received_attention(q: torch.Tensor, k: torch.Tensor, scaling: float, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """q, k: (N, H, hd) rotated rows; returns (N,) float32: per key row, the attention it receives from the
    query rows of its segment (``cu_seqlens`` (S+1,) boundaries), mean over heads. Scores and softmax in
    float32 (eager attention rounds the scores to the model's dtype first; float32 is the exact value, and
    on CPUs a bf16 matmul is slower than a float32 one)."""
    out = torch.zeros(q.shape[0], dtype=torch.float32, device=q.device)
    bounds = cu_seqlens.tolist()
    for s, e in zip(bounds[:-1], bounds[1:]):
        kt = k[s:e].float().permute(1, 2, 0).contiguous()  # (H, hd, L)
        acc = torch.zeros(e - s, dtype=torch.float32, device=q.device)
        for c in range(s, e, CHUNK):
            qc = q[c : min(c + CHUNK, e)].float().transpose(0, 1)  # (H, C, hd)
            # softmax in place on one (H, C, L) block; column sums weighted by each row's 1 / normaliser
            p = torch.matmul(qc, kt).mul_(scaling)
            p.sub_(p.amax(dim=-1, keepdim=True)).exp_()
            w = p.sum(dim=-1).reciprocal_().unsqueeze(1)  # (H, 1, C)
            acc += torch.bmm(w, p).sum(dim=(0, 1)) / p.shape[0]
        out[s:e] = acc
    return out


class VisionAttentionTap:
    """Context manager around one vision-tower call; afterwards :meth:`per_image` gives each image's
    :class:`~vlprune.methods.views.VisionAttention` (n_i tokens each, in kept-block order)."""

    def __init__(self, adapter: FamilyAdapter, layer: int, vision_kwargs: dict, kept_sizes: list[int]):
        self.ad = adapter
        self.layer = layer
        self.attn = adapter.vision_attention_module(layer)
        order = adapter.vit_sequence_order(vision_kwargs, sum(kept_sizes))  # block at each sequence position
        self.inverse = torch.argsort(torch.as_tensor(order, dtype=torch.int64))
        self.kept_sizes = kept_sizes
        self._call: dict = {}
        self._handles: list = []
        self.received: torch.Tensor | None = None
        self.keys: torch.Tensor | None = None
        self.ms = 0.0

    def __enter__(self):
        self._handles = [self.attn.register_forward_pre_hook(self._pre, with_kwargs=True),
                         self.attn.qkv.register_forward_hook(self._qkv)]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False

    def _pre(self, module, args, kwargs):
        self._call = {"cu_seqlens": kwargs["cu_seqlens"], "position_embeddings": kwargs["position_embeddings"]}

    def _qkv(self, module, args, output):
        t0 = time.perf_counter()
        attn = self.attn
        with torch.no_grad():
            n = output.shape[0]
            q, k, _ = output.reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
            cos, sin = self._call["position_embeddings"]
            rot = getattr(sys.modules[type(attn).__module__], "apply_rotary_pos_emb_vision", None)
            if rot is None:
                raise RuntimeError(f"{type(attn).__module__} has no apply_rotary_pos_emb_vision; transformers "
                                   f"layout changed")
            q, k = rot(q, k, cos, sin)
            received = received_attention(q, k, attn.scaling, self._call["cu_seqlens"])
            keys = k.float().mean(dim=1)  # (N, hd)
            u = self.ad.merge**2
            inv = self.inverse.to(received.device)  # tower sequence order -> kept-block order
            self.received = received.view(-1, u).mean(dim=1)[inv]
            self.keys = keys.view(-1, u, keys.shape[-1]).mean(dim=1)[inv]
        self.ms += (time.perf_counter() - t0) * 1e3

    def per_image(self) -> list[VisionAttention]:
        """Per image, its tokens' attention and keys; RuntimeError if block ``layer`` did not run."""
        if self.received is None:
            raise RuntimeError(f"vision block {self.layer} did not run; no attention rows were recomputed")
        rec = torch.split(self.received, self.kept_sizes)
        keys = torch.split(self.keys, self.kept_sizes)
        return [VisionAttention(r, k_, self.layer) for r, k_ in zip(rec, keys)]

"""Attention rows of a few query tokens at one decoder layer, recomputed from that layer's own
projections -- the model keeps running its sdpa / flash kernel (which return no weights); nothing is
switched to eager attention.

For queries ``Q`` and all ``L`` keys: ``softmax(q k^T * scaling + causal/padding mask)``, queries projected
for the asked rows only, keys for every row, both through the module's own q/k norms and rotary
function (found in the module's own modeling file), grouped-query heads repeated as the model does.
Equal to eager attention's weights at that layer (tested). :func:`key_norms` gives the L1 norm of every
key row the same way (DART's pivot score).
"""

from __future__ import annotations

import sys

import torch


def _rotary(attn):
    fn = getattr(sys.modules[type(attn).__module__], "apply_rotary_pos_emb", None)
    if fn is None:
        raise RuntimeError(f"{type(attn).__module__} has no apply_rotary_pos_emb; transformers layout changed")
    return fn


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(B, T, H*hd) -> (B, T, H, hd)"""
    return x.view(*x.shape[:2], -1, head_dim)


def _keys(attn, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, L, D) layer input -> (B, Hkv, L, hd) keys through the module's k_proj, k_norm and rotary."""
    k = _heads(attn.k_proj(hidden), attn.head_dim)
    if hasattr(attn, "k_norm"):
        k = attn.k_norm(k)
    k = k.transpose(1, 2)
    _, k = _rotary(attn)(k, k, cos, sin)
    return k


def key_norms(attn, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, L) float32 L1 norm of each column's keys, all key heads concatenated, as the KV cache holds
    them (after k_norm and the rotary embedding). hidden: (B, L, D) the layer's attention input."""
    return _keys(attn, hidden, cos, sin).float().abs().sum(dim=(1, 3))


def attention_rows(attn, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, q_cols: torch.Tensor,
                   q_valid: torch.Tensor, key_valid: torch.Tensor, query_gate: bool = False) -> torch.Tensor:
    """Mean attention (over heads and valid queries) that every key column receives.

    attn: the layer's attention module (``q_proj``, ``k_proj``, optional ``q_norm``/``k_norm``,
    ``head_dim``, ``scaling``); hidden: (B, L, D) its input (after the layer's input norm);
    cos, sin: (B, L, rd) rotary tables of the sequence; q_cols: (B, Q) query columns (padded);
    q_valid: (B, Q) bool; key_valid: (B, L) bool (non-padding). query_gate: ``q_proj`` emits
    [query, gate] per head (Qwen3.5). Returns (B, L) float32; per row it sums to 1 over visible keys.
    """
    hd = attn.head_dim
    idx = q_cols.unsqueeze(-1)
    hq = hidden.gather(1, idx.expand(-1, -1, hidden.shape[-1]))
    q = _heads(attn.q_proj(hq), 2 * hd if query_gate else hd)
    if query_gate:
        q = q[..., :hd]
    if hasattr(attn, "q_norm"):
        q = attn.q_norm(q)
    q = q.transpose(1, 2)  # (B, H, Q, hd)
    cq = cos.gather(1, idx.expand(-1, -1, cos.shape[-1]))
    sq = sin.gather(1, idx.expand(-1, -1, sin.shape[-1]))
    q, _ = _rotary(attn)(q, q, cq, sq)
    k = _keys(attn, hidden, cos, sin)  # (B, Hkv, L, hd)
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    scores = torch.matmul(q.float(), k.float().transpose(2, 3)) * attn.scaling  # (B, H, Q, L)
    cols = torch.arange(hidden.shape[1], device=hidden.device)
    allowed = (cols.view(1, 1, -1) <= q_cols.unsqueeze(-1)) & key_valid.unsqueeze(1)  # (B, Q, L)
    scores = scores.masked_fill(~allowed.unsqueeze(1), float("-inf"))
    probs = torch.softmax(scores, dim=-1).mean(dim=1)  # (B, Q, L)
    w = q_valid.float().unsqueeze(-1)
    return (probs * w).sum(1) / w.sum(1).clamp_min(1.0)

"""LLM-side index bookkeeping shared by all families (PixelPrune paper §3.2.3).

Given the processor's ``input_ids`` (B, L) and, per image, the kept token indices of its run of image
tokens, build the pruned batch (B, L'): only kept image tokens remain, every kept token carries the
M-RoPE (t, h, w) position it has in the unpruned sequence, text after an image keeps its unpruned
position, and ``rope_deltas`` make decoding continue from the unpruned next position.

Positions are never re-derived here: the family's own ``get_rope_index`` runs on the unpruned
(virtual) sequence and its columns are gathered, so "nothing pruned" is the identity by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class ImageSpan:
    """Run of image placeholder tokens of one image: ``input_ids[row, start:end]``."""

    image: int
    row: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def image_token_spans(input_ids: torch.Tensor, image_token_id: int, counts: list[int],
                      attention_mask: torch.Tensor | None = None) -> list[ImageSpan]:
    """Assign image tokens to images in processor order (row-major) and check they agree.

    input_ids: (B, L); counts: tokens per image from ``image_grid_thw`` (t*h*w / merge**2).
    Raises ValueError when the number of image tokens, their contiguity or their padding status
    disagrees with the grids.
    """
    ids = input_ids.detach().cpu().numpy()
    is_img = ids == image_token_id
    n_tok, n_exp = int(is_img.sum()), int(sum(counts))
    if n_tok != n_exp:
        raise ValueError(
            f"image grids disagree with input_ids: image_grid_thw describes {len(counts)} image(s) with "
            f"{n_exp} tokens ({counts}), but input_ids hold {n_tok} image tokens (id {image_token_id})"
        )
    if attention_mask is not None:
        am = attention_mask.detach().cpu().numpy().astype(bool)
        if (is_img & ~am).any():
            raise ValueError("input_ids hold image tokens at padded positions (attention_mask == 0)")
    rows, cols = np.nonzero(is_img)  # row-major = the order the model scatters image features
    spans, pos = [], 0
    for i, n in enumerate(counts):
        r, c = rows[pos : pos + n], cols[pos : pos + n]
        if n == 0 or (r != r[0]).any() or (c[-1] - c[0] + 1) != n:
            raise ValueError(
                f"image grids disagree with input_ids: image {i} needs {n} consecutive image tokens in one "
                f"sample, but its tokens are not one contiguous run (check image_grid_thw against the prompt)"
            )
        spans.append(ImageSpan(i, int(r[0]), int(c[0]), int(c[-1]) + 1))
        pos += n
    return spans


def padding_side(attention_mask: torch.Tensor | None, default: str = "left") -> str:
    """``"left"``/``"right"`` as used by ``attention_mask`` (B, L); ``default`` when unpadded."""
    if attention_mask is None:
        return default
    am = attention_mask
    if bool((am[:, 0] == 0).any()):
        return "left"
    if bool((am[:, -1] == 0).any()):
        return "right"
    return default


@dataclass
class SequencePlan:
    """The pruned LLM batch. Shapes: B rows, L' = longest kept row.

    input_ids / mm_token_type_ids / text_position_ids: (B, L'); attention_mask: (B, L') or None;
    position_ids: (3, B, L') unpruned M-RoPE positions; rope_deltas: (B, 1);
    keep: per row, the kept column indices of the (virtual) unpruned row, in order;
    full_position_ids: (3, B, Lv) positions of the unpruned (virtual) sequence.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    mm_token_type_ids: torch.Tensor
    position_ids: torch.Tensor
    text_position_ids: torch.Tensor
    rope_deltas: torch.Tensor
    keep: list[torch.Tensor]
    full_position_ids: torch.Tensor
    side: str
    offsets: list[int] = field(default_factory=list)  # per row: first column of the row's tokens in L'

    def generate_position_ids(self) -> torch.Tensor:
        """(4, B, L'): text row + M-RoPE rows, the layout ``generate`` passes to Qwen-VL models."""
        return torch.cat([self.text_position_ids[None], self.position_ids], dim=0)

    def gather(self, x: torch.Tensor, fill) -> torch.Tensor:
        """Apply the same pruning/re-padding to a per-token tensor ``x`` (B, Lv, ...), e.g. labels."""
        b, lp = self.input_ids.shape
        out = x.new_full((b, lp, *x.shape[2:]), fill)
        for r, idx in enumerate(self.keep):
            o = self.offsets[r]
            out[r, o : o + idx.numel()] = x[r, idx.to(x.device)]
        return out


def _splice_rows(input_ids, attention_mask, mm_token_type_ids, spans, new_counts, image_token_id, pad_id, side):
    """Rebuild rows where an image's token count changed (input-stage resize). Returns tensors
    (B, Lv) and the spans in the new coordinates."""
    device = input_ids.device
    ids = input_ids.cpu().numpy()
    am = attention_mask.cpu().numpy() if attention_mask is not None else np.ones_like(ids)
    mm = mm_token_type_ids.cpu().numpy()
    rows, new_spans = [], []
    by_row: dict[int, list[tuple[ImageSpan, int]]] = {}
    for s, n in zip(spans, new_counts):
        by_row.setdefault(s.row, []).append((s, n))
    for r in range(ids.shape[0]):
        valid = np.nonzero(am[r])[0]
        lo, hi = (int(valid[0]), int(valid[-1]) + 1) if valid.size else (0, 0)
        pieces_ids, pieces_mm, cur, out_len = [], [], lo, 0
        for s, n in by_row.get(r, []):
            pieces_ids += [ids[r, cur : s.start], np.full(n, image_token_id, ids.dtype)]
            pieces_mm += [mm[r, cur : s.start], np.full(n, 1, mm.dtype)]
            out_len += s.start - cur
            new_spans.append((s.image, r, out_len, out_len + n))
            out_len += n
            cur = s.end
        pieces_ids.append(ids[r, cur:hi])
        pieces_mm.append(mm[r, cur:hi])
        rows.append((np.concatenate(pieces_ids), np.concatenate(pieces_mm)))
    lv = max(len(a) for a, _ in rows)
    b = len(rows)
    out_ids = np.full((b, lv), pad_id, ids.dtype)
    out_mm = np.zeros((b, lv), mm.dtype)
    out_am = np.zeros((b, lv), np.int64)
    shift = []
    for r, (a, m) in enumerate(rows):
        o = lv - len(a) if side == "left" else 0
        out_ids[r, o : o + len(a)] = a
        out_mm[r, o : o + len(a)] = m
        out_am[r, o : o + len(a)] = 1
        shift.append(o)
    spans2 = sorted(
        (ImageSpan(i, r, s + shift[r], e + shift[r]) for i, r, s, e in new_spans), key=lambda s: s.image
    )
    t = lambda a: torch.from_numpy(a).to(device)
    am_t = t(out_am).to(attention_mask.dtype) if attention_mask is not None or (out_am == 0).any() else None
    return t(out_ids), am_t, t(out_mm).to(mm_token_type_ids.dtype), spans2


def build_sequence_plan(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    mm_token_type_ids: torch.Tensor,
    spans: list[ImageSpan],
    kept: list[np.ndarray],
    rope_index: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]],
    image_token_id: int,
    pad_id: int,
    new_counts: list[int] | None = None,
) -> SequencePlan:
    """Prune the batch to the kept image tokens, keeping unpruned positions.

    input_ids, attention_mask, mm_token_type_ids: (B, L) processor outputs.
    spans: per image its token run (:func:`image_token_spans`); kept[i]: sorted int64 token indices
    (0 .. n_i-1, raster order of the merged grid) kept of image i.
    rope_index(ids, mm_types, mask) -> (positions (3, B, L), deltas (B, 1)): the family's own
    ``get_rope_index`` bound to the (possibly updated) grids.
    new_counts: per image token count after an input-stage resize (None: unchanged).
    """
    side = padding_side(attention_mask)
    if new_counts is not None and any(n != s.length for n, s in zip(new_counts, spans)):
        input_ids, attention_mask, mm_token_type_ids, spans = _splice_rows(
            input_ids, attention_mask, mm_token_type_ids, spans, new_counts, image_token_id, pad_id, side
        )
    full_pos, full_deltas = rope_index(input_ids, mm_token_type_ids, attention_mask)
    b, lv = input_ids.shape
    device = input_ids.device
    valid = attention_mask.bool() if attention_mask is not None else torch.ones_like(input_ids, dtype=torch.bool)
    keep_mask = valid.clone()
    for s, k in zip(spans, kept):
        keep_mask[s.row, s.start : s.end] = False
        keep_mask[s.row, s.start + torch.from_numpy(np.asarray(k, dtype=np.int64)).to(device)] = True
    n_keep = keep_mask.sum(1)
    n_valid = valid.sum(1)
    deltas = full_deltas.to(device) + (n_valid - n_keep).view(-1, 1).to(full_deltas.dtype)
    keep = [torch.nonzero(keep_mask[r], as_tuple=False).view(-1) for r in range(b)]
    if bool(torch.equal(keep_mask, valid)):
        # Nothing pruned: the unpruned tensors themselves (bit-identical inputs).
        text_pos = _text_positions(attention_mask, input_ids)
        return SequencePlan(input_ids, attention_mask, mm_token_type_ids, full_pos, text_pos, deltas, keep,
                            full_pos, side, [int(k[0]) if k.numel() else 0 for k in keep])
    lp = int(n_keep.max())
    out_ids = input_ids.new_full((b, lp), pad_id)
    out_mm = mm_token_type_ids.new_zeros((b, lp))
    out_am = torch.zeros((b, lp), dtype=attention_mask.dtype if attention_mask is not None else torch.long,
                         device=device)
    out_pos = full_pos.new_zeros((3, b, lp))
    offsets = []
    for r, idx in enumerate(keep):
        n = idx.numel()
        o = lp - n if side == "left" else 0
        out_ids[r, o : o + n] = input_ids[r, idx]
        out_mm[r, o : o + n] = mm_token_type_ids[r, idx]
        out_am[r, o : o + n] = 1
        out_pos[:, r, o : o + n] = full_pos[:, r, idx.to(full_pos.device)]
        offsets.append(o)
    need_mask = attention_mask is not None or bool((out_am == 0).any())
    am = out_am if need_mask else None
    return SequencePlan(out_ids, am, out_mm, out_pos, _text_positions(am, out_ids), deltas, keep, full_pos, side,
                        offsets)


def _text_positions(attention_mask: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor:
    """(B, L) 1-D positions as ``generate`` builds them (cumsum of the mask; padding -> 0)."""
    if attention_mask is None:
        return torch.arange(input_ids.shape[1], device=input_ids.device).view(1, -1).expand(input_ids.shape[0], -1)
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 0)

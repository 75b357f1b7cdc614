"""M-RoPE positions of a pruned prompt from the family's own code on the unpruned prompt (PixelPrune §3.2.3).

vLLM computes a request's M-RoPE positions once, from its token ids and the placeholder range of each
multimodal item (``get_mrope_input_positions``). A pruned image's placeholder holds only its kept
tokens. :func:`expand` rebuilds the unpruned ("virtual") prompt -- each pruned placeholder back at its
full grid length -- so the stock position code runs on it unchanged; the kept columns are then
gathered. Kept tokens carry their unpruned (t, h, w) positions, text after an image resumes at the
unpruned next position, and decoding continues from the unpruned next position (the delta grows by
the number of dropped tokens). Nothing pruned is the identity by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Expansion:
    """The virtual unpruned prompt of a pruned one.

    tokens: (Lv,) virtual token ids; offsets[i]: virtual offset of item i's placeholder; columns:
    (L,) virtual column of every real token (gather index); dropped: Lv - L.
    """

    tokens: list[int]
    offsets: list[int]
    columns: np.ndarray

    @property
    def dropped(self) -> int:
        return len(self.tokens) - int(self.columns.shape[0])


def expand(tokens: list[int], items: list[tuple[int, int, np.ndarray | None]], placeholder: int) -> Expansion:
    """Expand pruned placeholders back to their full length.

    tokens: (L,) the request's token ids; items: per multimodal item, in any order, (offset, length,
    keep) with ``keep`` the (n_full,) bool mask of a pruned image (``length`` must equal its count of
    True) or None for an item left as it is; placeholder: the image token id used for restored slots.
    """
    order = sorted(range(len(items)), key=lambda i: items[i][0])
    out: list[int] = []
    cols: list[np.ndarray] = []
    offsets = [0] * len(items)
    cur = 0
    for i in order:
        off, length, keep = items[i]
        if off < cur or off + length > len(tokens):
            raise ValueError(f"placeholder {i} at {off} (length {length}) overlaps another or runs past the "
                             f"prompt's {len(tokens)} tokens")
        base = len(out)
        cols.append(np.arange(base, base + off - cur))
        out.extend(tokens[cur:off])
        offsets[i] = len(out)
        if keep is None:
            cols.append(np.arange(len(out), len(out) + length))
            out.extend(tokens[off : off + length])
        else:
            keep = np.asarray(keep, dtype=bool)
            if int(keep.sum()) != length:
                raise ValueError(f"image placeholder {i} holds {length} tokens but its keep mask keeps "
                                 f"{int(keep.sum())} of {keep.size}: placeholder and vision-tower output disagree")
            cols.append(len(out) + np.flatnonzero(keep))
            out.extend([placeholder] * keep.size)
        cur = off + length
    cols.append(np.arange(len(out), len(out) + len(tokens) - cur))
    out.extend(tokens[cur:])
    return Expansion(out, offsets, np.concatenate(cols).astype(np.int64))

"""Batches for training from per-sample processor outputs (one sample = one processor call, batch 1).

:class:`ProcessedCollator` pads ``input_ids`` / ``attention_mask`` / ``mm_token_type_ids`` / ``labels``
(labels with -100) to the longest sample on the chosen side and concatenates ``pixel_values`` and
``image_grid_thw`` in sample order, which is the layout a Qwen-VL processor gives a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_PER_TOKEN = {"input_ids": None, "attention_mask": 0, "mm_token_type_ids": 0, "labels": -100}
_CONCAT = ("pixel_values", "image_grid_thw")


def _row(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"a sample's per-token field must be (L,) or (1, L), got {tuple(x.shape)}")
    return x


@dataclass(frozen=True)
class ProcessedCollator:
    """pad_token_id: the tokenizer's pad id; padding_side: "left" or "right"."""

    pad_token_id: int
    padding_side: str = "right"

    def __post_init__(self):
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")

    def __call__(self, samples: list[dict]) -> dict:
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        out: dict = {}
        ids = [_row(s["input_ids"]) for s in samples]
        length = max(r.numel() for r in ids)
        for key, fill in _PER_TOKEN.items():
            if key in samples[0]:
                out[key] = self._pad([_row(s[key]) for s in samples], self.pad_token_id if fill is None else fill,
                                     length)
        if "attention_mask" not in out:
            ones = [torch.ones(r.numel(), dtype=torch.long) for r in ids]
            out["attention_mask"] = self._pad(ones, 0, length)
        for key in _CONCAT:
            parts = [torch.as_tensor(s[key]) for s in samples if s.get(key) is not None]
            if parts:
                out[key] = torch.cat(parts, 0)
        return out

    def _pad(self, rows: list[torch.Tensor], value, length: int) -> torch.Tensor:
        """(B, length) of ``rows`` padded with ``value`` on ``padding_side``."""
        t = torch.full((len(rows), length), value, dtype=rows[0].dtype)
        for i, r in enumerate(rows):
            o = length - r.numel() if self.padding_side == "left" else 0
            t[i, o : o + r.numel()] = r
        return t


class SampleList(torch.utils.data.Dataset):
    """A list of per-sample dicts as a map-style dataset (what a Trainer takes)."""

    def __init__(self, samples: list[dict]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]

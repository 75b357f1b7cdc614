"""Helpers of the training tests: padded batches with answer labels, and a reference that feeds the kept
patches to the unmodified model by hand.

The reference never goes through ``vlprune.apply``: it cuts the kept patch rows out of ``pixel_values``
(block ``k`` = rows ``4k .. 4k+3``), computes the vision tower's kwargs itself (2-D patch coordinates,
one attention segment per image, Qwen2.5-VL windows restricted to the kept blocks, Qwen3-VL / Qwen3.5
position-embedding taps of the original patches), runs ``model.model.visual`` on them, rebuilds the pruned
token rows, takes the M-RoPE positions the unmodified model gives the unpruned batch at the kept columns,
and calls the model with ``mm_encoder_outputs`` and the labels rebuilt for those rows.
"""

from __future__ import annotations

import numpy as np
import torch

from model_fixtures import IMG, build_batch, synthetic_image
from vlprune.models.configs import TINY_PAD

M = 2  # merge size of every tiny family


def answer_labels(batch, n_answer: int = 3) -> torch.Tensor:
    """-100 everywhere but the last ``n_answer`` real tokens of each row (the answer)."""
    ids, am = batch["input_ids"], batch["attention_mask"]
    labels = torch.full_like(ids, -100)
    for r in range(ids.shape[0]):
        cols = torch.nonzero(am[r]).view(-1)[-n_answer:]
        labels[r, cols] = ids[r, cols]
    return labels


def batch_images(family: str, seed: int = 0) -> list[list[np.ndarray]]:
    """The images of :func:`padded_batch`: one in sample 0, two (a history image first) in sample 1."""
    return [[synthetic_image(family, 4, 6, seed)],
            [synthetic_image(family, 2, 4, seed + 1), synthetic_image(family, 6, 4, seed + 2)]]


def padded_batch(family: str, padding: str = "left", seed: int = 0, images=None):
    """Two samples, different lengths and answer lengths (3 and 2 tokens); sample 1 has two images."""
    imgs = images or batch_images(family, seed)
    b = build_batch(family, [{"text": [1, 2], "images": imgs[0], "after": [4, 5, 6, 7]},
                             {"text": [3, 4, 5, 6], "images": imgs[1], "after": [8, 9]}], padding_side=padding)
    labels = answer_labels(b, 3)
    labels[1, :-2] = -100  # row 1 answers with 2 tokens
    return b, labels


def _patch_coords(kept: np.ndarray, gw: int) -> torch.Tensor:
    out = [((k // gw) * M + i, (k % gw) * M + j) for k in kept.tolist() for i in range(M) for j in range(M)]
    return torch.tensor(out, dtype=torch.long)


def _windows(model, thw, kept):
    """window_index over the packed kept blocks and cu_window_seqlens (patch rows), by hand."""
    from transformers.vision_utils import get_vision_window_index

    vc = model.config.vision_config
    order, bounds, base = [], [0], 0
    for (t, h, w), k in zip(thw.tolist(), kept):
        wi, cu = get_vision_window_index(torch.tensor([[t, h, w]]), M, vc.window_size, vc.patch_size)
        pos = {int(b): i for i, b in enumerate(k)}
        sizes = (torch.diff(cu) // (M * M)).tolist()
        start = 0
        for size in sizes:
            members = [int(b) for b in wi[start : start + size] if int(b) in pos]
            start += size
            if members:
                order += [base + pos[b] for b in members]
                bounds.append(bounds[-1] + len(members) * M * M)
        base += len(k)
    return torch.tensor(order, dtype=torch.long), torch.tensor(bounds, dtype=torch.int32)


def hand_vision(model, family: str, pixel_values, thw, kept: list[np.ndarray]):
    """The unmodified vision tower on the kept patches of every image; its output object."""
    rows, coords, glob, off = [], [], [], 0
    for (t, h, w), k in zip(thw.tolist(), kept):
        r = (torch.from_numpy(k)[:, None] * (M * M) + torch.arange(M * M)).reshape(-1) + off
        rows.append(r)
        coords.append(_patch_coords(k, w // M))
        off += t * h * w
    idx = torch.cat(rows)
    sizes = [len(k) * M * M for k in kept]
    kw = {"position_ids": torch.cat(coords), "cu_seqlens": torch.tensor([0, *np.cumsum(sizes)], dtype=torch.int32)}
    vis = model.model.visual
    if family in ("qwen3-vl", "qwen3.5"):
        from transformers.vision_utils import get_vision_interpolation_indices_and_weights

        ii, ww = get_vision_interpolation_indices_and_weights(
            thw, num_grid_per_side=vis.num_grid_per_side, mode=vis.interpolation_mode,
            align_corners=vis.interpolation_align_corners, spatial_merge_size=M)
        kw.update(interp_indices=ii[idx], interp_weights=ww[idx])
    if family == "qwen2.5-vl":
        kw["window_index"], kw["cu_window_seqlens"] = _windows(model, thw, kept)
    out = vis(pixel_values[idx], grid_thw=thw, return_dict=True, **kw)
    n = [len(k) for k in kept]
    out.pooler_output = torch.split(out.pooler_output, n)
    if getattr(out, "deepstack_features", None):
        out.deepstack_features = [torch.split(f, n) for f in out.deepstack_features]
    return out


def pruned_columns(batch, kept: list[np.ndarray]) -> list[list[int]]:
    """Per row, the columns of the unpruned batch that stay: text and the kept image tokens (images in order)."""
    it = iter(kept)
    cols_all = []
    for r in range(batch["input_ids"].shape[0]):
        ids = batch["input_ids"][r].tolist()
        valid = batch["attention_mask"][r].tolist()
        cols, c = [], 0
        while c < len(ids):
            if not valid[c]:
                c += 1
                continue
            if ids[c] != IMG:
                cols.append(c)
                c += 1
                continue
            n = next(j for j in range(c, len(ids) + 1) if j == len(ids) or ids[j] != IMG) - c
            cols += [c + int(k) for k in next(it)]
            c += n
        cols_all.append(cols)
    return cols_all


def full_positions(model, batch) -> torch.Tensor:
    """(3, B, L) M-RoPE positions the unmodified model gives the unpruned batch (captured at the LLM)."""
    seen = {}
    h = model.model.language_model.register_forward_pre_hook(
        lambda m, a, k: seen.__setitem__("pos", k["position_ids"].detach().clone()), with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        h.remove()
    return seen["pos"][-3:]


def hand_fed_inputs(model, family: str, batch, labels, kept: list[np.ndarray], padding: str = "left") -> dict:
    """Model kwargs of the pruned batch built by hand (see the module docstring)."""
    cols = pruned_columns(batch, kept)
    pos = full_positions(model, batch)
    width = max(len(c) for c in cols)
    b = len(cols)
    ids = torch.full((b, width), TINY_PAD, dtype=torch.long)
    am = torch.zeros((b, width), dtype=torch.long)
    lab = torch.full((b, width), -100, dtype=torch.long)
    p = torch.zeros((3, b, width), dtype=pos.dtype)
    for r, c in enumerate(cols):
        o = width - len(c) if padding == "left" else 0
        c = torch.tensor(c)
        ids[r, o : o + len(c)] = batch["input_ids"][r, c]
        am[r, o : o + len(c)] = 1
        lab[r, o : o + len(c)] = labels[r, c]
        p[:, r, o : o + len(c)] = pos[:, r, c]
    enc = hand_vision(model, family, batch["pixel_values"], batch["image_grid_thw"], kept)
    return {"input_ids": ids, "attention_mask": am, "mm_token_type_ids": (ids == IMG).int(), "position_ids": p,
            "mm_encoder_outputs": {"image": enc}, "labels": lab}


def grads(model) -> dict[str, torch.Tensor]:
    """Every parameter's gradient (zeros where None), then cleared."""
    out = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out


def trainer_samples(family: str, n: int = 8) -> list[dict]:
    """``n`` one-sample processor batches (a screenshot-like image, answers of 2-4 tokens) for a trainer."""
    out = []
    for i in range(n):
        s = build_batch(family, [{"text": [1, 2 + i % 3], "images": [synthetic_image(family, 4, 6, i)],
                                  "after": [4, 5, 6, 7][: 2 + i % 3]}])
        out.append({**s, "labels": answer_labels(s, 2 + i % 3)})
    return out

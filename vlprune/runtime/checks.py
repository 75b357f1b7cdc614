"""Checks on what the runtime is handed: a processor batch against the model (before any compute) and the
kept local indices a post-ViT or in-LLM method returns."""

from __future__ import annotations

import numpy as np
import torch

from vlprune.models.base import FamilyAdapter


def check_local_indices(local, n: int, method: str, image: int) -> torch.Tensor:
    """A method's kept local indices as a CPU int64 tensor; ValueError unless sorted, unique, in [0, n), non-empty."""
    local = torch.as_tensor(np.asarray(local.cpu() if torch.is_tensor(local) else local), dtype=torch.int64)
    if local.ndim != 1 or local.numel() == 0 or int(local.min()) < 0 or int(local.max()) >= n or (
            local.numel() > 1 and not bool((local[1:] > local[:-1]).all())):
        raise ValueError(f"method {method!r} must return sorted, unique indices in [0, {n}) (at least one) for "
                         f"image {image}, got {local.tolist()[:8]}")
    return local


def check_inputs(ad: FamilyAdapter, input_ids, pixel_values, image_grid_thw) -> torch.Tensor:
    """Validate a processor batch against the model; returns ``image_grid_thw`` on the CPU as int64."""
    if input_ids is None:
        raise ValueError("pruning needs input_ids (inputs_embeds alone cannot be pruned)")
    if image_grid_thw is None:
        raise ValueError("pixel_values were given without image_grid_thw")
    if pixel_values.ndim != 2 or pixel_values.shape[-1] != ad.row_dim:
        raise ValueError(
            f"pixel_values rows have {tuple(pixel_values.shape)[1:]} values; the model's vision tower expects "
            f"{ad.row_dim} (3 x temporal {ad.spec.temporal_patch_size} x patch {ad.spec.patch_size}^2): "
            f"processor and model disagree on the patch size"
        )
    thw = image_grid_thw.detach().cpu().long()
    m = ad.merge
    if (thw[:, 0] != 1).any():
        raise ValueError(f"image grids must have t=1, got {thw.tolist()}")
    if (thw[:, 1] % m).any() or (thw[:, 2] % m).any():
        raise ValueError(f"image grids {thw.tolist()} are not divisible by the model's merge size {m}: "
                         f"processor and model disagree on the merge size")
    n_rows = int(thw.prod(-1).sum())
    if n_rows != pixel_values.shape[0]:
        raise ValueError(f"pixel_values has {pixel_values.shape[0]} rows, image_grid_thw {thw.tolist()} "
                         f"describes {n_rows}")
    return thw

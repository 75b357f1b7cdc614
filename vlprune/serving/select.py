"""Pre-ViT selection on a processor's output, as the multimodal processor of a vLLM deployment runs it.

The same selector on the same ``pixel_values`` as :func:`vlprune.select` and the transformers runtime:
block grids are viewed on the processor's rows (no copy), the method picks blocks per image, and the
output keeps only the kept patch rows plus a keep mask per image. Resize re-patchifies the image at its
smaller grid from the processor's pixels, as the transformers runtime does.

Shapes: ``pixel_values`` (sum_i t*h_i*w_i, D) processor rows; ``image_grid_thw`` (n, 3); the keep mask
of image i is (h_i/m * w_i/m,) bool over its merged-token grid in raster order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from vlprune.families import FamilySpec
from vlprune.grid import BlockGrid
from vlprune.methods.base import ImageContext, PreViTMethod
from vlprune.models.base import patch_rows
from vlprune.runtime.prepare import resample_rows


@dataclass
class Selected:
    """The pruned processor output: ``pixel_values`` (N_kept, D) kept rows of every image in order,
    ``image_grid_thw`` (n, 3) grids they refer to (a resized image's new grid), ``keep`` (sum_i n_i,)
    bool masks concatenated, per image kept / total tokens and the selector's ms."""

    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor
    keep: torch.Tensor
    kept: list[int]
    total: list[int]
    selector_ms: float


def select_rows(pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, method: PreViTMethod | None,
                spec: FamilySpec, mean=None, std=None) -> Selected:
    """Run ``method`` (None keeps everything) on each image of one processor call."""
    t0 = time.perf_counter()
    thw = image_grid_thw.detach().cpu().long()
    m = spec.merge_size
    grids = BlockGrid.from_pixel_values(pixel_values, thw, spec, mean, std)
    rows, grids_out, masks, kept, total = [], [], [], [], []
    off = 0
    for i, grid in enumerate(grids):
        n_rows = int(thw[i].prod())
        src, src_off, g = pixel_values, off, tuple(int(x) for x in thw[i])
        if method is None:
            keep = np.arange(grid.n_blocks, dtype=np.int64)
        else:
            ctx = ImageContext(i, 0, i, len(grids), grid, np.arange(grid.n_blocks, dtype=np.int64), tuple(grid.size),
                               spec, (spec.min_pixels, spec.max_pixels))
            sel = method(grid, ctx)
            keep = np.asarray(sel.kept, dtype=np.int64)
            if sel.resized is not None:
                src, g = resample_rows(grid, sel.resized, spec, mean, std)
                if not pixel_values.dtype.is_floating_point:  # raw levels (vLLM normalises on the device)
                    src = src.round()
                src, src_off = src.to(pixel_values.dtype), 0
        n_blocks = g[1] * g[2] // (m * m)
        mask = np.zeros(n_blocks, dtype=bool)
        mask[keep] = True
        rows.append(src[patch_rows(keep, src_off, m).to(src.device)])
        grids_out.append(g)
        masks.append(mask)
        kept.append(int(keep.size))
        total.append(grid.n_blocks)
        off += n_rows
    return Selected(torch.cat(rows), torch.tensor(grids_out, dtype=image_grid_thw.dtype),
                    torch.from_numpy(np.concatenate(masks)), kept, total, (time.perf_counter() - t0) * 1e3)


def keep_masks(keep: torch.Tensor, image_grid_thw: torch.Tensor, merge: int) -> list[np.ndarray]:
    """Split concatenated keep masks (sum_i n_i,) per image (n_i = t*h*w / m^2 of ``image_grid_thw``)."""
    sizes = (image_grid_thw.long().prod(-1) // (merge * merge)).tolist()
    flat = keep.detach().cpu().numpy().astype(bool)
    if flat.shape != (sum(sizes),):
        raise ValueError(f"keep masks hold {flat.shape} entries, image grids {image_grid_thw.tolist()} need "
                         f"{sum(sizes)}: the plug-in's processor and model disagree")
    return np.split(flat, np.cumsum(sizes)[:-1]) if sizes else []

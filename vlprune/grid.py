"""Block grids: the pixels of one image cut into blocks of one LLM token each.

Two routes give the same grid for the same image:

* :meth:`BlockGrid.from_image` -- load (file / PIL / array) and convert to RGB as transformers does
  for that input (:mod:`vlprune.images`), resize exactly as the Qwen image processor's PIL backend
  does (``smart_resize`` with factor = block, bicubic), keep uint8.
* :meth:`BlockGrid.from_pixel_values` -- view a processor's ``pixel_values`` rows (no copy) as blocks
  of ``merge**2`` patches; distances undo the mean/std normalisation per channel.

Selectors compare blocks in 8-bit levels: a float difference is scaled by ``std * 255`` and rounded,
so both routes see identical integer differences (see ``docs/design.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from vlprune.families import FamilySpec, get_family
from vlprune.images import (  # noqa: F401  (re-exported: the grid module's public names)
    MAX_ASPECT_RATIO,
    MAX_IMAGE_PIXELS,
    ImageError,
    ImageLike,
    ImageOptions,
    check_image,
    load_image,
    name_of,
    resize_to,
    smart_resize,
)

@dataclass
class BlockGrid:
    """One image as a (gh, gw) grid of blocks.

    base:     C-contiguous (gh*R, gw*L) array; block (i, j) is ``base[i*R:(i+1)*R, j*L:(j+1)*L]``
              (no copy: the uint8 image as (H, W*3) for the image route, the processor's rows
              regrouped for ``pixel_values``).
    geometry: (gh, gw, R, L).
    scale:    float64 (L,) -- multiply an absolute value difference by it to get 8-bit levels.
    size:     (height, width) in pixels after resizing.
    """

    base: np.ndarray
    geometry: tuple[int, int, int, int]
    scale: np.ndarray
    family: FamilySpec
    size: tuple[int, int]
    source: str | None = None
    _pixel_norm: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.geometry[0], self.geometry[1]

    @property
    def data(self) -> np.ndarray:
        """(gh, gw, R, L) view: block (i, j) is ``data[i, j]``."""
        gh, gw, r, l = self.geometry
        return self.base.reshape(gh, r, gw, l).transpose(0, 2, 1, 3)

    def blocks(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Copy of blocks ``idx`` (raster indices; all if None) as (n, R, L)."""
        gh, gw, r, l = self.geometry
        flat = self.data.reshape(gh * gw, r, l)
        return flat.copy() if idx is None else flat[np.asarray(idx)]

    @property
    def n_blocks(self) -> int:
        return self.shape[0] * self.shape[1]

    # ------------------------------------------------------------------ image route
    @classmethod
    def from_image(
        cls, src: ImageLike, family: str | FamilySpec = "qwen3-vl", options: ImageOptions | None = None, **fields
    ) -> "BlockGrid":
        """Load and convert ``src`` as the family's processor does (:func:`vlprune.images.check_image`)
        and resize it like the processor (``smart_resize``, PIL bicubic); no normalisation.

        ``options`` (or its fields as keywords: ``min_pixels``, ``max_pixels``, ``max_image_pixels``,
        ``exif``, ``alpha``, ``high_bit_depth``): see :class:`vlprune.images.ImageOptions`.
        """
        spec = get_family(family)
        img, size = check_image(src, spec, options, **fields)
        return cls.from_rgb(resize_to(img, size), spec, source=name_of(src))

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, family: str | FamilySpec, source: str | None = None) -> "BlockGrid":
        """Wrap an already-resized uint8 (H, W, 3) array whose sides are multiples of the block."""
        spec = get_family(family)
        b = spec.block
        h, w, c = rgb.shape
        if h % b or w % b or c != 3 or rgb.dtype != np.uint8:
            raise ImageError(f"{source or 'image'}: expected uint8 (H, W, 3) with H, W multiples of {b}")
        base = np.ascontiguousarray(rgb).reshape(h, w * 3)
        return cls(base, (h // b, w // b, b, 3 * b), np.ones(b * 3), spec, (h, w), source)

    # ------------------------------------------------------------------ processor route
    @classmethod
    def from_pixel_values(
        cls,
        pixel_values,
        image_grid_thw,
        family: str | FamilySpec = "qwen3-vl",
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
    ) -> list["BlockGrid"]:
        """Split a processor batch into one grid per image.

        pixel_values:   (sum_i t_i*h_i*w_i, 3 * T * P * P) float, rows in the processor's order
                        (h/m, w/m, m, m) per image; P is inferred from the row length and
                        must be the family's patch size unless image_mean / image_std are given.
        image_grid_thw: (n_images, 3) int, patches per image in (t, h, w).
        """
        spec = get_family(family)
        pv = _as_numpy(pixel_values, "pixel_values")
        thw = _as_numpy(image_grid_thw, "image_grid_thw")
        if thw.ndim != 2 or thw.shape[1] != 3 or not np.issubdtype(thw.dtype, np.integer):
            raise ValueError(f"image_grid_thw must be an integer array of shape (n_images, 3), got {thw.dtype} {thw.shape}")
        if pv.ndim != 2:
            raise ValueError(f"pixel_values must be 2-D (patches, values), got shape {pv.shape}")
        if (thw <= 0).any():
            raise ValueError(f"image_grid_thw has non-positive entries: {thw.tolist()}")
        m, T = spec.merge_size, spec.temporal_patch_size
        d = pv.shape[1]
        p = int(round(math.sqrt(d / (3 * T))))
        if 3 * T * p * p != d:
            raise ValueError(
                f"pixel_values rows have {d} values, which is not 3 * {T} * P * P for any patch size P"
            )
        if p != spec.patch_size and image_mean is None and image_std is None:
            raise ValueError(
                f"pixel_values rows hold {p}x{p} patches but family {spec.name} uses {spec.patch_size}x"
                f"{spec.patch_size} (and its own mean/std); pass the family the processor was built for, or "
                f"image_mean and image_std for a custom processor"
            )
        n_rows = int(thw.prod(axis=1).sum())
        if n_rows != pv.shape[0]:
            raise ValueError(
                f"pixel_values has {pv.shape[0]} rows but image_grid_thw {thw.tolist()} describes {n_rows} patches"
            )
        mean = np.asarray(image_mean if image_mean is not None else spec.image_mean, dtype=np.float64)
        std = np.asarray(image_std if image_std is not None else spec.image_std, dtype=np.float64)
        chan = (np.arange(m * m * d) // (T * p * p)) % 3
        scale = std[chan] * 255.0
        grids, start = [], 0
        for i, (t, h, w) in enumerate(thw.tolist()):
            if t != 1:
                raise ValueError(f"image {i}: grid t={t} is a video grid; block selection takes still images (t=1)")
            if h % m or w % m:
                raise ValueError(f"image {i}: grid {h}x{w} patches is not divisible by merge size {m}")
            base = np.ascontiguousarray(pv[start : start + h * w]).reshape(h // m, (w // m) * m * m * d)
            start += h * w
            geometry = (h // m, w // m, 1, m * m * d)
            grids.append(cls(base, geometry, scale, spec, (h * p, w * p), f"pixel_values[image {i}]", (mean, std)))
        return grids

    # ------------------------------------------------------------------ pixels back
    def image(self) -> np.ndarray:
        """The grid as a uint8 (H, W, 3) image (undoes the processor's normalisation if needed)."""
        gh, gw = self.shape
        if self._pixel_norm is None:
            return self.base.reshape(self.size[0], self.size[1], 3)
        mean, std = self._pixel_norm
        m, T = self.family.merge_size, self.family.temporal_patch_size
        d = self.data.shape[-1] // (m * m)
        p = int(round(math.sqrt(d / (3 * T))))
        x = self.data.reshape(gh, gw, m, m, 3, T, p, p)[:, :, :, :, :, 0].astype(np.float64)
        x = x * std[None, None, None, None, :, None, None] + mean[None, None, None, None, :, None, None]
        x = x.transpose(0, 2, 5, 1, 3, 6, 4).reshape(gh * m * p, gw * m * p, 3)
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _as_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return x.numpy()
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    return x

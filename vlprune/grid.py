"""Block grids: the pixels of one image cut into blocks of one LLM token each (SPEC.md §1).

Two routes give the same grid for the same image:

* :meth:`BlockGrid.from_image` -- load (file / PIL / array), convert to RGB, resize exactly as the
  Qwen image processor's PIL backend does (``smart_resize`` with factor = block, bicubic), keep uint8.
* :meth:`BlockGrid.from_pixel_values` -- view a processor's ``pixel_values`` rows (no copy) as blocks
  of ``merge**2`` patches; distances undo the mean/std normalisation per channel.

Selectors compare blocks in 8-bit levels: a float difference is scaled by ``std * 255`` and rounded,
so both routes see identical integer differences (see ``docs/design.md``).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from vlprune.families import FamilySpec, get_family

#: Default refusal limit for decoded images (pixels). A 4K screenshot is 8.3 MP, an A4 page at
#: 300 dpi 8.7 MP, a 1170x30000 scrolling capture 35 MP. Override per call with ``max_image_pixels``.
MAX_IMAGE_PIXELS = 100_000_000
#: The processor's limit on ``max(h, w) / min(h, w)``.
MAX_ASPECT_RATIO = 200

ImageLike = Any  # str | os.PathLike | bytes | PIL.Image.Image | np.ndarray


class ImageError(ValueError):
    """An input image cannot be used; the message names the input and the reason."""


def _name(src) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, Image.Image):
        return f"<PIL image {src.mode} {src.size[0]}x{src.size[1]}>"
    if isinstance(src, np.ndarray):
        return f"<array {src.dtype} {tuple(src.shape)}>"
    return f"<{type(src).__name__}>"


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: alpha or a transparency key composited on white (as the
    processor's ``convert_to_rgb`` does),
    16/32-bit integer modes scaled to 8 bits, palette / gray / CMYK via PIL's conversions."""
    mode = img.mode
    if "A" in img.getbands() or img.info.get("transparency") is not None:
        # transformers' convert_to_rgb: any alpha band or transparency key -> composite on white
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "I" and arr.size and arr.max() <= 255 and arr.min() >= 0:
            arr8 = arr.astype(np.uint8)  # 8-bit data stored in 32-bit mode
        else:
            arr8 = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L").convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"{name}: cannot convert image mode {mode!r} to RGB ({exc})") from exc


def load_image(src: ImageLike, max_image_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open ``src`` as an 8-bit RGB PIL image, or raise :class:`ImageError` naming it.

    Refuses empty, unreadable or truncated files and images over ``max_image_pixels`` pixels
    (decompression bombs) before decoding their pixel data.
    """
    name = _name(src)
    if isinstance(src, np.ndarray):
        return _to_rgb(_array_to_pil(src, name), name)
    if isinstance(src, Image.Image):
        img = src
    else:
        if isinstance(src, (bytes, bytearray)):
            data = io.BytesIO(src)
        else:
            path = Path(src)
            if not path.exists():
                raise ImageError(f"{name}: no such file")
            if path.is_dir():
                raise ImageError(f"{name}: is a directory, not an image")
            if path.stat().st_size == 0:
                raise ImageError(f"{name}: file is empty (0 bytes)")
            data = path
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit below, before decoding
            try:
                img = Image.open(data)
            except Exception as exc:  # PIL raises several types for unreadable data
                raise ImageError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc
            finally:
                Image.MAX_IMAGE_PIXELS = old
    w, h = img.size
    if w * h > max_image_pixels:
        raise ImageError(
            f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of {max_image_pixels} "
            "(possible decompression bomb; raise max_image_pixels, CLI --max-image-pixels, to allow it)"
        )
    if w == 0 or h == 0:
        raise ImageError(f"{name}: image has zero size {w}x{h}")
    try:
        img.load()
    except Exception as exc:
        raise ImageError(f"{name}: image data is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    return _to_rgb(img, name)


def _array_to_pil(arr: np.ndarray, name: str) -> Image.Image:
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # CHW -> HWC
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ImageError(f"{name}: expected an HxW, HxWx3 or HxWx4 array")
    if arr.dtype == np.uint16:
        arr = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(
            f"{name}: image arrays must be uint8 or uint16; for processor outputs use "
            "BlockGrid.from_pixel_values"
        )
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[-1] + 0]
    return Image.fromarray(np.ascontiguousarray(arr), mode)


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Target (height, width) of the Qwen image processor: multiples of ``factor``, area within
    [min_pixels, max_pixels], aspect ratio kept as closely as possible."""
    if height <= 0 or width <= 0:
        raise ImageError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ImageError(
            f"aspect ratio {max(height, width) / min(height, width):.1f} of a {width}x{height} image "
            f"exceeds the processor's limit of {MAX_ASPECT_RATIO}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


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
        cls,
        src: ImageLike,
        family: str | FamilySpec = "qwen3-vl",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
    ) -> "BlockGrid":
        """Load, convert to RGB and resize ``src`` like the family's processor; no normalisation."""
        spec = get_family(family)
        img = load_image(src, max_image_pixels=max_image_pixels)
        rgb = resize_like_processor(img, spec, min_pixels, max_pixels, name=_name(src))
        return cls.from_rgb(rgb, spec, source=_name(src))

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


def resize_like_processor(
    img: Image.Image,
    family: str | FamilySpec,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    name: str = "image",
) -> np.ndarray:
    """uint8 (H', W', 3): ``img`` resized by ``smart_resize`` (factor = block) with PIL bicubic."""
    spec = get_family(family)
    lo = spec.min_pixels if min_pixels is None else min_pixels
    hi = spec.max_pixels if max_pixels is None else max_pixels
    if lo <= 0 or hi < lo:
        raise ValueError(f"min_pixels={lo} / max_pixels={hi}: need 0 < min_pixels <= max_pixels")
    w, h = img.size
    try:
        th, tw = smart_resize(h, w, spec.block, lo, hi)
    except ImageError as exc:
        raise ImageError(f"{name}: {exc}") from None
    if (th, tw) != (h, w):
        img = img.resize((tw, th), resample=Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)

"""Input images as the model's processor sees them: load, convert to 8-bit RGB, check, size.

The default reproduces the installed transformers (5.19 - 5.24, PIL backend) for each kind of input,
so that a selection describes the pixels the model gets when the user hands it the same input the
usual way; where releases differ (:mod:`vlprune.compat`) it follows the installed one:

* a file (path or bytes): ``transformers.image_utils.load_image`` (what the processor also does with a
  path) -- the EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), then PIL's
  ``convert("RGB")``: an alpha band is dropped, 16/32-bit values are clipped at 255, a colour-key
  transparency (PNG tRNS, a transparent palette index) stays a key -- and then the processor's
  ``convert_to_rgb``: from 5.21 it composites that key on white, 5.19 - 5.20 ignore it (the keyed
  pixels keep their colour);
* a PIL image: the image processor's ``convert_to_rgb``, no EXIF orientation (the processor does not
  apply it to an image already opened) -- from 5.21 an alpha band or colour key composited on white;
  5.19 - 5.20 PIL's ``convert("RGB")`` (alpha band dropped, keyed pixels keep their colour);
* a uint8 array: the image processor's array route -- from 5.21 (H, W, 1|3|4) or channels-first, 4
  channels composited on white, channels first when both ends could be channels; 5.19 - 5.20 look for
  the channel axis among 1 and 3 and take only 3 channels, so 1- and 4-channel arrays are refused as
  that processor refuses them. (H, W) is taken as gray on every release (every processor refuses it).

:class:`ImageOptions` makes every difference explicit (``exif``, ``alpha``, ``high_bit_depth``); an
explicit option means the same on every release. Refused inputs raise :class:`ImageError` naming the
input (see ``docs/design.md``).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from vlprune import compat
from vlprune import options as opt
from vlprune.families import FamilySpec, get_family

#: Default refusal limit for decoded images (pixels). A 4K screenshot is 8.3 MP, an A4 page at
#: 300 dpi 8.7 MP, a 1170x30000 scrolling capture 35 MP. Override with ``max_image_pixels``.
MAX_IMAGE_PIXELS = 100_000_000
#: The processor's limit on ``max(h, w) / min(h, w)``.
MAX_ASPECT_RATIO = 200
#: ``alpha``: "drop" every kind of transparency, or composite the image on "white".
ALPHA_MODES = ("drop", "white")
#: ``high_bit_depth``: "clip" 16/32-bit and float values at 255 (PIL), or "scale" them to 8 bits.
HIGH_BIT_DEPTH_MODES = ("clip", "scale")
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")

ImageLike = Any  # str | os.PathLike | bytes | PIL.Image.Image | np.ndarray


class ImageError(ValueError):
    """An input image cannot be used; the message names the input and the reason."""


@dataclass(frozen=True)
class ImageOptions:
    """How an input becomes the resized 8-bit RGB image whose blocks are selected.

    min_pixels / max_pixels: the processor's resize bounds (None: the family's); a model served with
        other bounds needs the same ones here.
    max_image_pixels: refuse larger decoded images (decompression bombs), checked before decoding.
    exif: apply the EXIF orientation; None: as transformers does for this input (files yes, PIL
        images and arrays no).
    alpha: "drop" (ignore alpha bands and colour keys) or "white" (composite both on white); arrays
        given either take the 5.21 route on every release (1, 3 or 4 channels; "drop": the first 3).
        None: as the installed transformers (files: alpha band dropped, colour key composited from
        5.21, kept on 5.19 - 5.20; PIL images and arrays: both composited from 5.21; 5.19 - 5.20: PIL
        images as "drop", 1- and 4-channel arrays refused).
    high_bit_depth: None / "clip" as PIL and transformers (values above 255 become 255; 16-bit
        arrays are refused, the processor mangles them); "scale" maps 16-bit integers by 1/257 and
        float images from [0, 1] to [0, 255].
    """

    min_pixels: int | None = None
    max_pixels: int | None = None
    max_image_pixels: int = MAX_IMAGE_PIXELS
    exif: bool | None = None
    alpha: str | None = None
    high_bit_depth: str | None = None

    def __post_init__(self):
        for name in ("min_pixels", "max_pixels"):
            if getattr(self, name) is not None:
                opt.integer(name, getattr(self, name), minimum=1)
        opt.integer("max_image_pixels", self.max_image_pixels, minimum=1)
        if self.exif is not None:
            opt.boolean("exif", self.exif)
        if self.alpha is not None:
            opt.choice("alpha", self.alpha, ALPHA_MODES)
        if self.high_bit_depth is not None:
            opt.choice("high_bit_depth", self.high_bit_depth, HIGH_BIT_DEPTH_MODES)
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise opt.OptionError("min_pixels", f"min_pixels={self.min_pixels} exceeds max_pixels={self.max_pixels}")

    def bounds(self, family: str | FamilySpec) -> tuple[int, int]:
        """(min_pixels, max_pixels) for ``family``, the family's defaults where not set."""
        spec = get_family(family)
        lo = spec.min_pixels if self.min_pixels is None else self.min_pixels
        hi = spec.max_pixels if self.max_pixels is None else self.max_pixels
        if lo > hi:
            name = "min_pixels" if self.min_pixels is not None else "max_pixels"
            raise opt.OptionError(name, f"min_pixels={lo} exceeds max_pixels={hi} "
                                    f"(family {spec.name} defaults: {spec.min_pixels} / {spec.max_pixels})")
        return lo, hi

    def conversion(self) -> dict:
        """The keyword arguments of :func:`load_image`."""
        return {"max_image_pixels": self.max_image_pixels, "exif": self.exif, "alpha": self.alpha,
                "high_bit_depth": self.high_bit_depth}


def image_options(options: ImageOptions | None = None, **fields) -> ImageOptions:
    """``options`` or an :class:`ImageOptions` built from ``fields`` (not both)."""
    if options is not None and fields:
        raise TypeError(f"pass either options= or the image options {', '.join(sorted(fields))}, not both")
    return options if options is not None else ImageOptions(**fields)


def name_of(src) -> str:
    """How an input is named in messages."""
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, Image.Image):
        return f"<PIL image {src.mode} {src.size[0]}x{src.size[1]}>"
    if isinstance(src, np.ndarray):
        return f"<array {src.dtype} {tuple(src.shape)}>"
    return f"<{type(src).__name__}>"


# ---------------------------------------------------------------------------------------- loading
def load_image(src: ImageLike, max_image_pixels: int = MAX_IMAGE_PIXELS, *, exif: bool | None = None,
               alpha: str | None = None, high_bit_depth: str | None = None) -> Image.Image:
    """``src`` as the 8-bit RGB PIL image the model's processor gets for it (module docstring), or
    :class:`ImageError` naming it. ``exif`` / ``alpha`` / ``high_bit_depth``: see :class:`ImageOptions`.

    Refuses missing, empty, unreadable or truncated files and images over ``max_image_pixels`` pixels
    (decompression bombs) before decoding their pixel data.
    """
    name = name_of(src)
    if isinstance(src, np.ndarray):
        return _array_to_rgb(src, name, alpha, high_bit_depth)
    from_file = not isinstance(src, Image.Image)
    img = _open(src, name) if from_file else src
    w, h = img.size
    if w * h > max_image_pixels:
        raise ImageError(
            f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of {max_image_pixels} "
            "(possible decompression bomb; to allow it raise max_image_pixels in Python, or --max-image-pixels "
            "of vlprune analyze / bench)"
        )
    if w == 0 or h == 0:
        raise ImageError(f"{name}: image has zero size {w}x{h}")
    try:
        img.load()
    except Exception as exc:
        raise ImageError(f"{name}: image data is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if from_file if exif is None else exif:
        try:
            img = ImageOps.exif_transpose(img)
        except Exception as exc:
            raise ImageError(f"{name}: cannot apply the EXIF orientation ({type(exc).__name__}: {exc})") from exc
    return _to_rgb(img, name, alpha, high_bit_depth, from_file)


def _open(src, name: str) -> Image.Image:
    if isinstance(src, (bytes, bytearray)):
        data = io.BytesIO(src)
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: file is empty (0 bytes)")
        data = path
    else:
        raise ImageError(f"{name}: expected a path, bytes, a PIL image or a uint8 array")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # load_image enforces its own limit, before decoding
        try:
            return Image.open(data)
        except Exception as exc:  # PIL raises several types for unreadable data
            raise ImageError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _scaled_to_l(img: Image.Image) -> Image.Image:
    """``high_bit_depth="scale"``: 16/32-bit integers / 257, floats from [0, 1] x 255, to mode L."""
    arr = np.asarray(img, dtype=np.float64)
    arr = arr * 255.0 if img.mode == "F" else arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def _has_transparency(img: Image.Image) -> bool:
    """What transformers' ``convert_to_rgb`` (5.21+) composites: an "A" band (LAB's too) or a colour key."""
    return "A" in img.getbands() or img.info.get("transparency") is not None


def _to_rgb(img: Image.Image, name: str, alpha: str | None, high_bit_depth: str | None,
            from_file: bool) -> Image.Image:
    """Any PIL mode -> RGB. ``alpha=None``: a file as transformers' ``load_image`` converts it (PIL's
    ``convert("RGB")``: alpha band dropped, a colour key kept as a key), then -- like a PIL image --
    as the installed processor's ``convert_to_rgb`` does (5.21+: as ``"white"``; 5.19 - 5.20: PIL's
    ``convert("RGB")``, i.e. as ``"drop"``); ``"white"`` composites every kind of transparency,
    ``"drop"`` ignores every kind. 16/32-bit and float modes are clipped by PIL unless
    ``high_bit_depth="scale"``."""
    if high_bit_depth == "scale" and img.mode in _HIGH_BIT_MODES:
        img = _scaled_to_l(img)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # PIL: "palette images with transparency ..."
            if alpha is None and from_file:
                img = img.convert("RGB")  # transformers.image_utils.load_image
            if alpha is None and _has_transparency(img):
                alpha = "white" if compat.composites_transparency() else "drop"
            if alpha == "white" and _has_transparency(img):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, rgba).convert("RGB")
            return img if img.mode == "RGB" else img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"{name}: cannot convert image mode {img.mode!r} to RGB ({exc})") from exc


def _channels_last(arr: np.ndarray, counts: tuple[int, ...]) -> np.ndarray | None:
    """(H, W, C): the channel axis found as the image processors find it among ``counts`` (the first
    end when both fit); (H, W) as one channel; None when neither end fits."""
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim != 3 or 0 in arr.shape:
        return None
    if arr.shape[0] in counts:
        return np.moveaxis(arr, 0, -1)
    return arr if arr.shape[-1] in counts else None


def _layout_before_5_21(arr: np.ndarray, name: str) -> np.ndarray:
    """A 3-d array as the 5.19 - 5.20 processor lays it out: the channel axis found among 1 and 3,
    then only 3 channels taken; anything else refused as that processor refuses it."""
    hwc = _channels_last(arr, compat.array_channel_counts())
    channels = 4 if hwc is None else hwc.shape[-1]  # neither end is 1 or 3: the 4 at one end
    if channels == 3:
        return hwc
    why, then, way = {
        1: ('"mean must have 1 elements"', "takes them as gray", "an (H, W, 3) array, or alpha='white' "
            "to take it as gray on every release"),
        4: ('"Unable to infer channel dimension format"', "composites them on white", "alpha='white' for that on "
            "every release (alpha='drop': the first 3 channels), or an (H, W, 3) array"),
    }[channels]
    raise ImageError(f"{name}: the image processor of transformers {compat.version_string()} refuses "
                     f"{channels}-channel arrays ({why}); transformers >= 5.21 {then}. Pass {way}")


def _array_to_rgb(arr: np.ndarray, name: str, alpha: str | None, high_bit_depth: str | None) -> Image.Image:
    """(H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4 -> RGB as the 5.21+ image processor converts
    arrays: channels first when both ends could be channels, 4 channels composited on white with
    ``round(a/255 * c + (1 - a/255) * 255)`` (``alpha="drop"``: the first three). ``alpha=None`` on
    5.19 - 5.20: that release's layout, 3 channels only (:func:`_layout_before_5_21`)."""
    hwc = _channels_last(arr, (1, 3, 4))
    if hwc is None or hwc.shape[-1] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an (H, W) array or (H, W, C) / (C, H, W) with C in 1, 3, 4")
    follow_release = alpha is None and arr.ndim == 3 and not compat.composites_transparency()
    arr = _layout_before_5_21(arr, name) if follow_release else hwc
    if arr.dtype == np.uint16 and high_bit_depth is not None:
        arr = np.clip(arr, 0, 255) if high_bit_depth == "clip" else np.clip(np.rint(arr / 257.0), 0, 255)
        arr = arr.astype(np.uint8)
    elif arr.dtype != np.uint8:
        hint = " (16-bit: pass high_bit_depth='scale' or 'clip')" if arr.dtype == np.uint16 else ""
        raise ImageError(f"{name}: image arrays must be uint8{hint}; for processor outputs use "
                         "BlockGrid.from_pixel_values")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        if alpha == "drop":
            arr = arr[..., :3]
        else:
            a = arr[..., 3:4] / 255
            arr = np.round(a * arr[..., :3] + (1 - a) * 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


# ---------------------------------------------------------------------------------------- sizing
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


def check_image(src: ImageLike, family: str | FamilySpec = "qwen3-vl", options: ImageOptions | None = None,
                **fields) -> tuple[Image.Image, tuple[int, int]]:
    """The one check every command runs before any expensive step: load ``src`` as the processor
    sees it and compute its resized (height, width) under the processor's limits (aspect ratio,
    min/max pixels). Returns ``(rgb_image, (height, width))``; raises :class:`ImageError` naming ``src``
    (or an ``OptionError`` for bad options)."""
    opts = image_options(options, **fields)
    lo, hi = opts.bounds(family)
    name = name_of(src)
    img = load_image(src, **opts.conversion())
    w, h = img.size
    try:
        return img, smart_resize(h, w, get_family(family).block, lo, hi)
    except ImageError as exc:
        raise ImageError(f"{name}: {exc}") from None


def resize_to(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H', W', 3): the RGB ``img`` at ``size`` = (H', W') with PIL bicubic, as the PIL backend resizes."""
    th, tw = size
    if (th, tw) != (img.height, img.width):
        img = img.resize((tw, th), resample=Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)

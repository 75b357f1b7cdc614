"""Pictures of a selection: kept-vs-dropped overlays and the retain-ratio distribution plot.

Overlay guarantee (tested): the overlay has the resized image's size; every pixel of a kept block
equals the resized image; every dropped block differs from it (dimmed towards :attr:`OverlayStyle.dim`
and outlined with a 1-pixel grid line whose colour always differs from the pixel under it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vlprune.selection import Selection


@dataclass(frozen=True)
class OverlayStyle:
    """How dropped blocks are drawn; kept blocks are always left untouched."""

    dim: tuple[int, int, int] = (24, 28, 44)  # colour dropped blocks are blended towards
    strength: float = 0.6  # 0 = no dimming, 1 = solid ``dim``
    line: tuple[int, int, int] = (96, 104, 140)  # grid line on the top/left edge of dropped blocks
    line_alt: tuple[int, int, int] = (200, 60, 60)  # used where ``line`` equals the pixel under it

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")
        if self.line == self.line_alt:
            raise ValueError("line and line_alt must differ")


def overlay_array(image: np.ndarray, mask: np.ndarray, style: OverlayStyle = OverlayStyle()) -> np.ndarray:
    """uint8 (H, W, 3) copy of ``image`` with the blocks where ``mask`` (gh, gw) is False dimmed
    and outlined. H and W must be multiples of gh and gw."""
    h, w, _ = image.shape
    gh, gw = mask.shape
    if h % gh or w % gw or h // gh != w // gw:
        raise ValueError(f"image {w}x{h} is not a grid of {gw}x{gh} square blocks")
    b = h // gh
    img5 = image.reshape(gh, b, gw, b, 3)
    a = round(style.strength * 256)  # blend in 8.8 fixed point: no float (H, W, 3) temporaries
    dim = np.asarray(style.dim, dtype=np.uint16) * a + 128
    dimmed = ((img5.astype(np.uint16) * (256 - a) + dim) >> 8).astype(np.uint8)
    out5 = np.where(mask[:, None, :, None, None], img5, dimmed)
    # 1-px line on the first row and column of each dropped block: a grid drawn on dropped blocks only
    line = np.asarray(style.line, dtype=np.uint8)
    alt = np.asarray(style.line_alt, dtype=np.uint8)
    ii, jj = np.nonzero(~mask)
    for index in ((ii, 0, jj), (ii, slice(None), jj, 0)):  # top rows, left columns: (n, b, 3) each
        under = img5[index]
        out5[index] = np.where(np.all(under == line, axis=-1, keepdims=True), alt, line)
    out = out5.reshape(h, w, 3)
    return out


def render_overlay(image: np.ndarray, selection: Selection, style: OverlayStyle = OverlayStyle()) -> Image.Image:
    """The overlay of ``selection`` on the resized ``image`` (uint8 (H, W, 3), the grid's pixels).

    For a selection that changes the resolution (``selection.resized``, the Resize baseline) the
    picture is the image downscaled (bicubic) to that size: what the vision encoder sees.
    """
    if selection.resized is not None:
        rh, rw = selection.resized
        return Image.fromarray(image).resize((rw, rh), resample=Image.Resampling.BICUBIC)
    return Image.fromarray(overlay_array(image, selection.mask(), style))


def save_overlay(path: str | Path, image: np.ndarray, selection: Selection, style: OverlayStyle = OverlayStyle()) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    render_overlay(image, selection, style).save(path, format="PNG", compress_level=3)
    return path


def save_retain_plot(
    path: str | Path,
    retains: Sequence[float],
    dataset_retain: float,
    title: str = "",
) -> Path:
    """Histogram + ECDF of per-image retain ratios, the dataset ratio (Σ kept / Σ total) marked.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch). The format follows
    the file's extension (png if it has none matplotlib knows).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = np.sort(np.asarray(retains, dtype=np.float64)) * 100.0
    if r.size == 0:
        raise ValueError("no retain ratios to plot")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ds = dataset_retain * 100.0
    ax1.hist(r, bins=np.linspace(0, 100, 21), color="#4c72b0", edgecolor="white")
    ax1.set_xlabel("retain ratio per image (%)")
    ax1.set_ylabel("images")
    xs = np.concatenate([[0.0], r, [100.0]])
    ys = np.concatenate([[0.0], np.arange(1, r.size + 1) / r.size, [1.0]])
    ax2.step(xs, ys, where="post", color="#4c72b0")
    ax2.set_xlabel("retain ratio per image (%)")
    ax2.set_ylabel("fraction of images ≤ x")
    ax2.set_ylim(0, 1.02)
    for ax in (ax1, ax2):
        ax.set_xlim(0, 100)
        ax.axvline(ds, color="#c44e52", linestyle="--", label=f"dataset Σkept/Σtotal = {ds:.1f}%")
        ax.grid(alpha=0.3)
    ax2.legend(loc="upper left")
    fig.suptitle(title or f"retain ratio over {r.size} images")
    fig.tight_layout()
    fmt = path.suffix[1:].lower() if path.suffix[1:].lower() in fig.canvas.get_supported_filetypes() else "png"
    fig.savefig(path, format=fmt)
    return path

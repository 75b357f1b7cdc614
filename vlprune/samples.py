"""Small sample images made at run time with PIL drawing (nothing is shipped as a file).

* ``gui``      -- a 1280x800 desktop-application screenshot: title bar, toolbar buttons, sidebar
  list, a text editor panel, a status bar (large flat areas: PixelPrune drops most of it).
* ``document`` -- an 816x1056 page (US Letter at 96 dpi): heading, justified paragraphs, a table,
  a line chart (white margins and line spacing are redundant, text is not).
* ``texture``  -- a 512x384 smooth gradient with seeded noise: almost nothing repeats, so almost
  every block is kept (the other end of the scale).

Every image is deterministic for a given Pillow version (text uses Pillow's built-in font).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SAMPLE_NAMES = ("gui", "document", "texture")

_WORDS = (
    "predictive coding drops blocks that repeat their neighbour so the vision encoder sees only "
    "pixels that carry new information while every kept token keeps its original position in the "
    "grid the decoder rebuilds the rest exactly from the rule and the kept blocks"
).split()


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font only
        return ImageFont.load_default()


def _words(rng: np.random.Generator, n: int) -> str:
    return " ".join(_WORDS[i] for i in rng.integers(0, len(_WORDS), n))


def gui_screenshot(width: int = 1280, height: int = 800, seed: int = 0) -> Image.Image:
    """A synthetic desktop application window."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (246, 246, 248))
    d = ImageDraw.Draw(img)
    small, mid = _font(13), _font(15)
    # title bar with window buttons
    d.rectangle([0, 0, width, 34], fill=(52, 58, 70))
    d.text((16, 9), "notes.txt - Sample Editor", fill=(235, 235, 240), font=mid)
    for k, col in enumerate([(236, 95, 90), (245, 190, 80), (98, 197, 84)]):
        x = width - 30 - 26 * k
        d.ellipse([x, 10, x + 14, 24], fill=col)
    # toolbar
    d.rectangle([0, 35, width, 80], fill=(230, 232, 236))
    d.line([0, 80, width, 80], fill=(200, 202, 208))
    for k, label in enumerate(["New", "Open", "Save", "Undo", "Redo", "Find", "Run"]):
        x = 12 + 84 * k
        d.rounded_rectangle([x, 45, x + 74, 71], radius=5, fill=(255, 255, 255), outline=(180, 184, 192))
        d.text((x + 12, 51), label, fill=(40, 44, 52), font=small)
    d.rounded_rectangle([width - 300, 45, width - 16, 71], radius=12, fill=(255, 255, 255), outline=(180, 184, 192))
    d.text((width - 286, 51), "Search", fill=(150, 150, 160), font=small)
    # sidebar with a file list, one selected row
    side = 240
    d.rectangle([0, 81, side, height - 28], fill=(238, 240, 244))
    d.line([side, 81, side, height - 28], fill=(205, 208, 214))
    d.text((16, 94), "PROJECT", fill=(110, 115, 125), font=small)
    for k in range(14):
        y = 122 + 30 * k
        if k == 3:
            d.rectangle([0, y - 6, side - 1, y + 20], fill=(200, 220, 250))
        d.rectangle([20, y, 34, y + 14], fill=(120, 160, 220) if k % 4 else (220, 180, 90))
        d.text((44, y), f"{_WORDS[(5 * k) % len(_WORDS)]}_{k}.py", fill=(40, 44, 52), font=small)
    # editor: line numbers + text lines of varying length
    d.rectangle([side + 1, 81, width, height - 28], fill=(255, 255, 255))
    d.rectangle([side + 1, 81, side + 48, height - 28], fill=(248, 248, 250))
    for k in range(22):
        y = 96 + 26 * k
        d.text((side + 12, y), f"{k + 1:>3}", fill=(160, 160, 170), font=small)
        if k % 6 == 5:
            continue  # blank line
        indent = 24 * int(rng.integers(0, 3))
        d.text((side + 64 + indent, y), _words(rng, int(rng.integers(3, 11))), fill=(30, 34, 42), font=small)
    # a dialog-like panel on the right
    px = width - 360
    d.rounded_rectangle([px, 420, width - 40, 680], radius=8, fill=(250, 250, 252), outline=(170, 175, 185), width=2)
    d.text((px + 20, 436), "Settings", fill=(30, 34, 42), font=mid)
    for k, label in enumerate(["Wrap lines", "Show whitespace", "Auto save"]):
        y = 476 + 34 * k
        d.rectangle([px + 20, y, px + 36, y + 16], outline=(120, 125, 135), fill=(255, 255, 255))
        if k != 1:
            d.line([px + 23, y + 8, px + 28, y + 13, px + 34, y + 3], fill=(40, 120, 220), width=2)
        d.text((px + 48, y), label, fill=(40, 44, 52), font=small)
    d.rounded_rectangle([width - 200, 630, width - 60, 664], radius=6, fill=(40, 120, 220))
    d.text((width - 158, 639), "Apply", fill=(255, 255, 255), font=mid)
    # status bar
    d.rectangle([0, height - 27, width, height], fill=(52, 58, 70))
    d.text((12, height - 21), "Ln 12, Col 4    UTF-8    Python", fill=(220, 220, 228), font=small)
    return img


def document_page(width: int = 816, height: int = 1056, seed: int = 1) -> Image.Image:
    """A synthetic text page with a table and a chart."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    body, head = _font(13), _font(24)
    margin = 72
    d.text((margin, 70), "3. Redundancy in Visual Tokens", fill=(0, 0, 0), font=head)
    y = 120
    for para in range(3):
        for line in range(6 if para < 2 else 4):
            n = int(rng.integers(9, 14)) if line < 5 else int(rng.integers(3, 7))
            d.text((margin, y), _words(rng, n), fill=(20, 20, 20), font=body)
            y += 19
        y += 14
    # table: header row, grid lines, numbers
    top, cols, rows, cw, rh = y + 10, 4, 6, (width - 2 * margin) // 4, 26
    d.rectangle([margin, top, margin + cols * cw, top + rh], fill=(230, 234, 242))
    for r in range(rows + 1):
        d.line([margin, top + r * rh, margin + cols * cw, top + r * rh], fill=(120, 120, 120))
    for c in range(cols + 1):
        d.line([margin + c * cw, top, margin + c * cw, top + rows * rh], fill=(120, 120, 120))
    for c, label in enumerate(["Dataset", "Tokens", "Kept", "Retain"]):
        d.text((margin + c * cw + 8, top + 6), label, fill=(0, 0, 0), font=body)
    for r in range(1, rows):
        tokens = int(rng.integers(800, 4000))
        kept = int(tokens * rng.uniform(0.3, 0.8))
        for c, val in enumerate([f"set-{r}", f"{tokens}", f"{kept}", f"{kept / tokens:.1%}"]):
            d.text((margin + c * cw + 8, top + r * rh + 6), val, fill=(20, 20, 20), font=body)
    # chart: axes, ticks and a curve
    cx0, cy0, cx1, cy1 = margin + 40, top + rows * rh + 50, width - margin - 20, top + rows * rh + 290
    d.line([cx0, cy1, cx1, cy1], fill=(0, 0, 0), width=2)
    d.line([cx0, cy0, cx0, cy1], fill=(0, 0, 0), width=2)
    for k in range(6):
        x = cx0 + (cx1 - cx0) * k // 5
        d.line([x, cy1, x, cy1 + 6], fill=(0, 0, 0))
        d.text((x - 6, cy1 + 10), f"{k * 20}", fill=(0, 0, 0), font=body)
    xs = np.linspace(0, 1, 120)
    ys = 0.5 + 0.35 * np.sin(6 * xs) * np.exp(-1.5 * xs)
    pts = [(cx0 + x * (cx1 - cx0), cy1 - v * (cy1 - cy0)) for x, v in zip(xs, ys)]
    d.line(pts, fill=(30, 90, 200), width=2)
    d.text(((width - 120) // 2, height - 50), "Page 7 of 12", fill=(90, 90, 90), font=body)
    return img


def texture(width: int = 512, height: int = 384, seed: int = 2) -> Image.Image:
    """A smooth colour gradient plus seeded noise: (almost) no block repeats."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack([xx / width, yy / height, 0.5 + 0.5 * np.sin((xx + yy) / 60.0)], axis=-1) * 200 + 20
    noise = rng.normal(0.0, 12.0, size=base.shape)
    return Image.fromarray(np.clip(np.rint(base + noise), 0, 255).astype(np.uint8), "RGB")


def make_samples() -> dict[str, Image.Image]:
    """All sample images by name (see :data:`SAMPLE_NAMES`), made fresh on each call."""
    return {"gui": gui_screenshot(), "document": document_page(), "texture": texture()}

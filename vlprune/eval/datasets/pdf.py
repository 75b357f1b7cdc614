"""PDF pages as sample images, rendered when a sample runs (MMLongBench-Doc, olmOCR-bench).

Rendering uses PyMuPDF (``pip install "vlprune[eval-docs]"``), the renderer VLMEvalKit uses for
MMLongBench-Doc (``page.get_pixmap(dpi=144)``). olmOCR-bench's own runners render with poppler's
``pdftoppm`` so that the longest side is 2048 px; :class:`PdfPage` with ``longest=2048`` gives that size
with PyMuPDF (pixels can differ slightly from poppler's). Pre-rendered page images can be used instead
(see each dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vlprune.eval.base import DatasetError, ImageRef


def _fitz():
    try:
        import pymupdf
    except ImportError:
        raise DatasetError("PDF pages need PyMuPDF: pip install \"vlprune[eval-docs]\" (or pymupdf), or give "
                           "pre-rendered page images") from None
    return pymupdf


def page_count(pdf: Path) -> int:
    """Pages of ``pdf``; DatasetError naming the file when it cannot be opened."""
    fitz = _fitz()
    try:
        with fitz.open(str(pdf)) as doc:
            return doc.page_count
    except Exception as exc:  # noqa: BLE001 -- PyMuPDF raises its own error types
        raise DatasetError(f"{pdf}: cannot open as PDF ({exc})") from None


@dataclass(frozen=True)
class PdfPage(ImageRef):
    """Page ``page`` (1-based) of the PDF at ``path``, rendered at ``dpi`` or so that its longest side is
    ``longest`` px (exactly one of them)."""

    page: int = 1
    dpi: float | None = None
    longest: int | None = None

    def _zoom(self, rect) -> float:
        if self.longest is not None:
            return self.longest / max(rect.width, rect.height)
        return float(self.dpi) / 72.0

    def _on_page(self, fn):
        """``fn(page, matrix)`` on the page, with the render matrix; DatasetError for a missing file or page."""
        fitz = _fitz()
        if not Path(self.path).is_file():
            raise DatasetError(f"{self.origin}: PDF not found: {self.path}")
        with fitz.open(self.path) as doc:
            if not 1 <= self.page <= doc.page_count:
                raise DatasetError(f"{self.origin}: page {self.page} of {self.path} does not exist "
                                   f"({doc.page_count} pages)")
            page = doc[self.page - 1]
            zoom = self._zoom(page.rect)
            return fn(page, fitz.Matrix(zoom, zoom))

    def _render(self):
        return self._on_page(lambda page, m: page.get_pixmap(matrix=m, alpha=False).tobytes("png"))

    def open(self) -> Image.Image:
        from vlprune.grid import load_image

        return load_image(self._render())

    def size(self) -> tuple[int, int]:
        """The rendered size, from the page box (the pixmap's own rounding), without rendering."""
        box = self._on_page(lambda page, m: (page.rect * m).irect)
        return box.width, box.height

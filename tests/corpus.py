"""The real image corpus (``../shared/corpus`` beside the repository, read in place) for the tests.

Tests that need it skip when it is absent (a clone outside the workspace); a name that is not in
``manifest.csv`` fails the test instead of silently testing nothing.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
MANIFEST = CORPUS / "manifest.csv"

needs_corpus = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"image corpus not found at {CORPUS}")


def _rows() -> list[dict]:
    if not MANIFEST.is_file():
        pytest.skip(f"image corpus not found at {CORPUS}")
    with open(MANIFEST, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def files(*names: str) -> list[Path]:
    """Corpus images by manifest ``file`` entry (``web/flask_index.png``)."""
    listed = {r["file"] for r in _rows()}
    missing = [n for n in names if n not in listed]
    assert not missing, f"{missing} not in {MANIFEST}"
    return [CORPUS / n for n in names]


def first_of(*categories: str) -> list[Path]:
    """The first manifest image of each category (``web``, ``doc``, ``mobile``, ``desktop``)."""
    rows = _rows()
    out = []
    for c in categories:
        hit = next((r["file"] for r in rows if r["category"] == c), None)
        assert hit is not None, f"no {c!r} image in {MANIFEST}"
        out.append(CORPUS / hit)
    return out

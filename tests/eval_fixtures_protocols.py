"""Fixture writers for AI2D, MMLongBench-Doc and olmOCR-bench: a handful of records in each published
layout (VLMEvalKit TSVs, the Hub parquet, the benchmarks' own release folders with PDFs).

Each writer takes a folder (and a ``layout``) and returns the ``--data`` path; ``PROTOCOL_FIXTURES`` maps
the dataset name to its writer. Page images are small corpus crops (``eval_fixtures_docs.image_bytes``);
PDFs are written by PIL (one image per page at 72 dpi, so a W x H image is a W x H pt page).
"""

from __future__ import annotations

import base64
import csv
import importlib.util
import io
import json
from pathlib import Path

from eval_fixtures_docs import _parquet, image_bytes
from PIL import Image

PAGE = (96, 128)  # px of the fixture pages (and pt of the PDF pages)


def _tsv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pdf(path: Path, pages: int, category: str = "doc") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = [Image.open(io.BytesIO(image_bytes(category, PAGE))).convert("RGB") for _ in range(pages)]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], resolution=72.0)
    return path


# ---------------------------------------------------------------------------------------------- AI2D
AI2D_ROWS = [  # index, question, options, answer letter, category
    ("101", "Which stage comes after the egg?", ["larva", "pupa", "adult", "egg"], "A", "lifeCycles"),
    ("102", "What does the arrow point to?", ["sun", "moon", "earth"], "C", "eclipses"),
    ("103", "How many legs does the insect have?", ["4", "6", "8", "10"], "B", "lifeCycles"),
]


def write_ai2d(folder: Path, layout: str = "tsv") -> Path:
    """``tsv``: VLMEvalKit AI2D_TEST.tsv (D empty on row 102); ``parquet``: lmms-lab/ai2d with 0-based
    answer indices ("0", "2", "1")."""
    folder = Path(folder)
    img = image_bytes("doc", (64, 48))
    if layout == "tsv":
        rows = [{"index": i, "question": q, **{k: (opts[j] if j < len(opts) else "") for j, k in enumerate("ABCD")},
                 "answer": a, "category": c, "image": _b64(img)} for i, q, opts, a, c in AI2D_ROWS]
        _tsv(folder / "AI2D_TEST.tsv", rows)
    else:
        rows = [{"question": q, "options": opts, "answer": str("ABCD".index(a)), "image": {"bytes": img, "path": f"{i}.png"}}
                for i, q, opts, a, _ in AI2D_ROWS]
        _parquet(folder / "data" / "test-00000-of-00001.parquet", rows)
    return folder


# ---------------------------------------------------------------------------------------------- MMLongBench-Doc
MMLB_SAMPLES = [
    {"doc_id": "report.pdf", "doc_type": "Research report", "question": "How many charts?", "answer": "6",
     "evidence_pages": "[4, 7]", "evidence_sources": "['Chart']", "answer_format": "Int"},
    {"doc_id": "report.pdf", "doc_type": "Research report", "question": "Which group?",
     "answer": "Some college or more", "evidence_pages": "[2]", "evidence_sources": "['Chart', 'Table']",
     "answer_format": "Str"},
    {"doc_id": "guide.pdf", "doc_type": "Tutorial", "question": "What share in 2024?", "answer": "Not answerable",
     "evidence_pages": "[]", "evidence_sources": "[]", "answer_format": "None"},
    {"doc_id": "guide.pdf", "doc_type": "Tutorial", "question": "Which shapes?", "answer": "['Circle', 'Rectangle']",
     "evidence_pages": "[1]", "evidence_sources": "['Figure']", "answer_format": "List"},
]


def write_mmlongbench(folder: Path, layout: str = "pdf") -> Path:
    """The release layout: data/samples.json + data/documents/{report.pdf (3 pages), guide.pdf (2 pages)};
    ``rendered``: the same with pre-rendered pages/<stem>/page_<n>.png and no PDFs."""
    data = Path(folder) / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "samples.json").write_text(json.dumps(MMLB_SAMPLES), encoding="utf-8")
    for name, n in (("report", 3), ("guide", 2)):
        if layout == "pdf":
            _pdf(data / "documents" / f"{name}.pdf", n)
        else:
            for k in range(1, n + 1):
                (data / "pages" / name).mkdir(parents=True, exist_ok=True)
                (data / "pages" / name / f"page_{k}.png").write_bytes(image_bytes("doc", PAGE))
    return Path(folder)


# ---------------------------------------------------------------------------------------------- olmOCR-bench
OLMOCR_TESTS = {
    "arxiv_math": [
        {"pdf": "arxiv_math/paper_pg1.pdf", "page": 1, "id": "m1", "type": "math", "math": "a^2 + b^2 = c^2"},
        {"pdf": "arxiv_math/paper_pg1.pdf", "page": 1, "id": "m2", "type": "present", "text": "Pythagoras theorem"},
    ],
    "table_tests": [
        {"pdf": "tables/sheet.pdf", "page": 1, "id": "t1", "type": "table", "cell": "42", "up": "Count",
         "left": "apples", "top_heading": "Count"},
        {"pdf": "tables/sheet.pdf", "page": 1, "id": "t2", "type": "order", "before": "Fruit report",
         "after": "Totals follow"},
        {"pdf": "tables/sheet.pdf", "page": 1, "id": "t3", "type": "absent", "text": "Page 7 of 9"},
    ],
}


def write_olmocr(folder: Path, layout: str = "release") -> Path:
    """``release``: bench_data/{arxiv_math,table_tests}.jsonl + bench_data/pdfs/...; ``tsv``: VLMEvalKit's
    olmOCRBench.tsv (one row per page, tests JSON in ``answer``)."""
    folder = Path(folder)
    if layout == "release":
        bench = folder / "bench_data"
        bench.mkdir(parents=True, exist_ok=True)
        for name, tests in OLMOCR_TESTS.items():
            (bench / f"{name}.jsonl").write_text("\n".join(json.dumps(t) for t in tests) + "\n", encoding="utf-8")
        _pdf(bench / "pdfs" / "arxiv_math" / "paper_pg1.pdf", 1)
        _pdf(bench / "pdfs" / "tables" / "sheet.pdf", 1)
        return folder
    page = _b64(image_bytes("doc", PAGE))
    rows = [{"index": i, "image": page, "answer": json.dumps(tests)} for i, tests in enumerate(OLMOCR_TESTS.values())]
    _tsv(folder / "olmOCRBench.tsv", rows)
    return folder


PROTOCOL_FIXTURES = {"ai2d": write_ai2d, "mmlongbench-doc": write_mmlongbench, "olmocr-bench": write_olmocr}
#: the optional ``vlprune[eval-docs]`` modules missing here (PDF pages, olmOCR-bench scoring)
EVAL_DOCS_MISSING = [m for m in ("pymupdf", "rapidfuzz", "fuzzysearch", "bs4") if importlib.util.find_spec(m) is None]


def usable_writers() -> dict:
    """The writers whose datasets this environment can load and score (AI2D needs no optional module)."""
    return {"ai2d": write_ai2d} if EVAL_DOCS_MISSING else dict(PROTOCOL_FIXTURES)

"""olmOCR-bench (Poznanski et al., 2025): a page to Markdown, checked by the benchmark's unit tests.

Layouts read (``--data`` = the folder, or one file in it):

* the release (HF ``allenai/olmOCR-bench``, ``bench_data/``): test files ``*.jsonl`` (one JSON test per line;
  the file's stem is the test's category, e.g. ``arxiv_math``, ``table_tests``) and the PDFs under
  ``pdfs/`` (a test's ``pdf`` is relative to it). A page is rendered so that its longest side is 2048 px
  (olmOCR's ``render_pdf_to_base64png`` default; PyMuPDF here), or read from a pre-rendered
  ``<pdf without .pdf>_pg<page>.png`` beside the PDF.
* VLMEvalKit ``olmOCRBench.tsv``: ``index``, ``image`` (base64 page), ``answer`` (JSON list of the page's
  tests); the category is the first folder of a test's ``pdf`` (VLMEvalKit's mapping).

One sample per (pdf, page), id ``<pdf>:<page>``, holding all that page's tests; every PDF without a
``baseline`` test gets one on page 1 (category ``baseline``), as both evaluators do. Prompt: VLMEvalKit's
olmOCR-bench instruction after the page image (the PixelPrune authors' protocol); 16,384 new tokens (the
paper's setting for olmOCR-bench).

Metrics (:mod:`vlprune.eval.metrics.olmocr`): ``overall`` = mean over categories of the share of tests
passed, ``<category>`` shares, ``type_<type>`` shares per test type, ``tests`` / ``tests_passed``.
Math tests run the published exact-equation check only (no KaTeX rendering): a lower bound.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlprune.eval.base import DatasetError, ImageRef, LoadResult, Parsed, PromptContext, Sample, register_dataset
from vlprune.eval.datasets._common import (
    Collector,
    TextVQA,
    base64_image,
    counts,
    is_load_problem,
    tsv_records,
    user_turn,
)
from vlprune.eval.datasets.pdf import PdfPage
from vlprune.eval.metrics import olmocr as M

PROMPT = ("Please provide a natural, plain text representation of the document, formatted in Markdown. "
          "Skip any headers and footers. For ALL mathematical expressions, use LaTeX notation with \\( and \\) "
          "for inline equations and \\[ and \\] for display equations. Convert any tables into Markdown format.")
BASELINE = "baseline"


def _check(test, where: str) -> dict:
    try:
        return M.check_test(test)
    except ValueError as exc:
        raise DatasetError(f"olmocr-bench: {where}: invalid test ({exc})") from None


@register_dataset("olmocr-bench")
class OlmOCRBench(TextVQA):
    kind = "vqa"
    max_new_tokens = 16384
    primary_metric = "overall"
    hub_id = "allenai/olmOCR-bench"
    layout = "bench_data/ (*.jsonl tests + pdfs/), or VLMEvalKit olmOCRBench.tsv"

    def __init__(self, longest: int = 2048):
        from vlprune import options as opt

        self.longest = opt.integer("longest", longest, minimum=28)

    # ------------------------------------------------------------------------------------------ loading
    def read(self, path: Path) -> LoadResult:
        root = path / "bench_data" if (path / "bench_data").is_dir() else path
        if path.suffix == ".tsv" or (path.is_dir() and (root / "olmOCRBench.tsv").is_file()):
            return self._read_tsv(path if path.suffix == ".tsv" else root / "olmOCRBench.tsv")
        files = [path] if path.suffix == ".jsonl" else sorted(root.glob("*.jsonl"))
        if not files:
            raise self.no_layout(path)
        pdfs = (path.parent if path.is_file() else root) / "pdfs"
        pages: dict[tuple[str, int], list[tuple[dict, str]]] = {}
        for file in files:
            for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    test = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"olmocr-bench: {file}:{n}: not JSON ({exc.msg})") from None
                t = _check(test, f"{file}:{n}")
                pages.setdefault((t["pdf"], t["page"]), []).append((t, file.stem))
        return self._samples(pages, lambda pdf, page, origin: self._page(pdfs, pdf, page, origin), path)

    def _read_tsv(self, file: Path) -> LoadResult:
        pages: dict[tuple[str, int], list[tuple[dict, str]]] = {}
        images: dict[tuple[str, int], str] = {}
        for i, rec in enumerate(tsv_records(file)):
            try:
                tests = json.loads(rec.get("answer") or "")
            except json.JSONDecodeError as exc:
                raise DatasetError(f"olmocr-bench: {file} [record {i}]: column 'answer' is not JSON ({exc.msg})") from None
            for t in (_check(x, f"{file} [record {i}]") for x in (tests if isinstance(tests, list) else [tests])):
                key = (t["pdf"], t["page"])
                pages.setdefault(key, []).append((t, t["pdf"].split("/")[0]))
                images[key] = rec.get("image") or ""

        def image(pdf, page, origin):  # a page without an image fails when it runs: its tests count as failed
            cell = images.get((pdf, page), "")
            return base64_image(cell, "image", origin) if cell else ImageRef(data=b"", origin=f"{origin} (no image)")

        return self._samples(pages, image, file)

    def _page(self, pdfs: Path, pdf: str, page: int, origin: str) -> ImageRef:
        file = pdfs / pdf
        rendered = file.with_name(f"{file.stem}_pg{page}.png")
        if rendered.is_file():
            return ImageRef(path=str(rendered), origin=origin)
        # a missing PDF fails when the sample runs (its tests count as failed, as in the published evaluator)
        return PdfPage(path=str(file), origin=f"{origin} (nor a pre-rendered {rendered.name})", page=page,
                       longest=self.longest)

    def _samples(self, pages: dict, image, source: Path) -> LoadResult:
        tested = {p for (p, _), ts in pages.items() if any(t["type"] == BASELINE for t, _ in ts)}
        for pdf in {p for p, _ in pages} - tested:  # every PDF gets its baseline test on page 1
            pages.setdefault((pdf, 1), []).append(
                ({"pdf": pdf, "page": 1, "id": f"{pdf}_baseline", "type": BASELINE, "max_diffs": 0}, BASELINE))
        col = Collector(self.name)
        for i, ((pdf, page), tests) in enumerate(sorted(pages.items())):
            with col.record(source, i) as slot:
                slot.id = f"{pdf}:{page}"
                ref = image(pdf, page, f"{source} {pdf} page {page}")
                target = {"tests": [t for t, _ in tests], "categories": [c for _, c in tests]}
                col.add(Sample(slot.id, [ref], PROMPT, target, {"pdf": pdf, "page": page}), source, i)
        return col.result(source)

    # ------------------------------------------------------------------------------------------ scoring
    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        return user_turn(len(sample.images), PROMPT)

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        """Counts of tests and tests passed: all of them, per category (``cat:<c>:...``) and per type
        (``type:<t>:...``); an unparsed or failed sample fails every test of its page."""
        t = sample.target or {"tests": [], "categories": []}
        out: dict[str, float] = {"tests": 0.0, "tests_passed": 0.0}
        for test, cat in zip(t["tests"], t["categories"]):
            ok = 0.0 if parsed.format_error else float(M.run_test(test, parsed.answer or ""))
            for group in ("", f"cat:{cat}:", f"type:{test['type']}:"):
                total, passed = (group + "total", group + "passed") if group else ("tests", "tests_passed")
                out[total] = out.get(total, 0.0) + 1.0
                out[passed] = out.get(passed, 0.0) + ok
        return out

    def summarize(self, records: list[dict]) -> dict:
        sums: dict[str, float] = {}
        for r in records:
            if is_load_problem(r):
                continue
            for k, v in (r.get("scores") or {}).items():
                sums[k] = sums.get(k, 0.0) + v
        cats = sorted({k.split(":")[1] for k in sums if k.startswith("cat:")})
        shares = {c: sums[f"cat:{c}:passed"] / sums[f"cat:{c}:total"] for c in cats}
        types = sorted({k.split(":")[1] for k in sums if k.startswith("type:")})
        out = {"overall": sum(shares.values()) / len(shares) if shares else None, **shares,
               **{f"type_{t}": sums[f"type:{t}:passed"] / sums[f"type:{t}:total"] for t in types},
               "tests": int(sums.get("tests", 0)), "tests_passed": int(sums.get("tests_passed", 0))}
        return {**out, **counts(records),
                "variants": {"overall": "mean over test categories of the share passed (olmOCR-bench / VLMEvalKit)",
                             "math": "exact equation match only (no KaTeX render comparison): a lower bound"}}

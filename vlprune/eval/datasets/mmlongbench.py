"""MMLongBench-Doc (Ma et al., NeurIPS 2024): questions over whole PDF documents, every page an image.

Layout read (``--data`` = the folder, or ``samples.json`` in it): the benchmark release
(mayubo2333/MMLongBench-Doc, HF ``yubo2333/MMLongBench-Doc``): ``samples.json`` (in the folder or its
``data/``), a list of ``{"doc_id", "doc_type", "question", "answer", "evidence_pages", "evidence_sources",
"answer_format"}``, and the PDFs in ``documents/`` beside it. Each question's images are the document's
pages in order, at most ``max_pages`` (120, VLMEvalKit's limit), rendered at ``dpi`` 144 (VLMEvalKit's
``get_pixmap(dpi=144)``; needs PyMuPDF). Pre-rendered pages are used when ``pages/<pdf stem>/`` beside
``documents/`` holds ``page_<n>.png`` (or ``.jpg``) files, n = 1, 2, ... Ids: ``samples:<index>``.

Prompt: the PixelPrune authors' Qwen3-VL prompt for VQA-type datasets (their bundled VLMEvalKit): the
pages, then ``"{question}\\nPlease answer concisely with short words or phrases when possible."``.

Score (:mod:`vlprune.eval.metrics.longdoc`): the published evaluators first ask GPT-4o to extract the
answer from the response; vlprune runs no external model, so the extracted answer is the response itself
(stripped; variant ``extraction="response"``) -- scores are comparable with the published ones only when
the predictions hold extracted answers (``eval score`` accepts such a file). Metrics: ``accuracy``,
``f1`` (variant ``vlmevalkit`` or ``mmlongbench-doc``), ``single_page``, ``multi_page``,
``unanswerable`` and per evidence source ``text``, ``layout``, ``table``, ``chart``, ``image``
(VLMEvalKit's breakdown), fractions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from vlprune.eval.base import ImageRef, LoadResult, Parsed, PromptContext, Sample, register_dataset
from vlprune.eval.datasets._common import (
    Collector,
    RecordError,
    TextVQA,
    choose,
    counts,
    json_records,
    need,
    user_turn,
    value,
)
from vlprune.eval.datasets.pdf import PdfPage, page_count
from vlprune.eval.metrics import longdoc
from vlprune.eval.metrics.aggregate import micro

SUFFIX = "\nPlease answer concisely with short words or phrases when possible."
#: VLMEvalKit's evidence-source breakdown: metric name -> source label in ``evidence_sources``
SOURCES = {"text": "Pure-text (Plain-text)", "layout": "Generalized-text (Layout)", "table": "Table",
           "chart": "Chart", "image": "Figure"}


def _literal_list(rec: dict, key: str) -> list:
    raw = need(rec, key, (str, list))
    try:
        value_ = ast.literal_eval(raw) if isinstance(raw, str) else raw
    except (ValueError, SyntaxError):
        raise RecordError(f"field {key!r} is not a list literal: {raw!r:.60}") from None
    if not isinstance(value_, list):
        raise RecordError(f"field {key!r} must hold a list, got {raw!r:.60}")
    return value_


@register_dataset("mmlongbench-doc")
class MMLongBenchDoc(TextVQA):
    kind = "vqa"
    max_new_tokens = 512
    primary_metric = "accuracy"
    layout = "samples.json (in the folder or data/) + documents/*.pdf (or pages/<pdf stem>/page_<n>.png)"

    def __init__(self, max_pages: int = 120, dpi: float = 144.0, f1_variant: str = "vlmevalkit",
                 extraction: str = "response"):
        from vlprune import options as opt

        self.max_pages = opt.integer("max_pages", max_pages, minimum=1)
        self.dpi = opt.positive("dpi", dpi)
        self.f1_variant = choose(f1_variant, longdoc.VARIANTS, "F1 variant")
        self.extraction = choose(extraction, ("response",), "answer extraction")

    # ------------------------------------------------------------------------------------------ loading
    def _pages(self, root: Path, doc_id: str, origin: str) -> list[ImageRef]:
        stem = Path(doc_id).stem
        rendered = root / "pages" / stem
        if rendered.is_dir():
            files = {int(m.group(1)): f for f in rendered.iterdir()
                     if (m := re.fullmatch(r"page_(\d+)\.(?:png|jpe?g)", f.name))}
            if not files or sorted(files) != list(range(1, len(files) + 1)):
                raise RecordError(f"{rendered}: expected page_1 .. page_N images, found pages {sorted(files)[:10]}")
            return [ImageRef(path=str(files[k]), origin=f"{origin} page {k}")
                    for k in range(1, min(len(files), self.max_pages) + 1)]
        pdf = root / "documents" / doc_id
        if not pdf.is_file():
            raise RecordError(f"document not found: {pdf} (nor pre-rendered pages in {rendered})")
        n = min(page_count(pdf), self.max_pages)
        return [PdfPage(path=str(pdf), origin=f"{origin} page {k}", page=k, dpi=self.dpi) for k in range(1, n + 1)]

    def read(self, path: Path) -> LoadResult:
        file = self.find_files(path, lambda f: f.name == "samples.json",
                               ([path / "samples.json"], [path / "data" / "samples.json"]))[0]
        root = file.parent
        col = Collector(self.name)
        pages: dict[str, list[ImageRef]] = {}
        for i, rec in enumerate(json_records(file)):
            with col.record(file, i) as slot:
                slot.id = f"{file.stem}:{i}"
                doc = need(rec, "doc_id", str)
                fmt = need(rec, "answer_format", str)
                if fmt not in longdoc.ANSWER_FORMATS:
                    raise RecordError(f"field 'answer_format' must be one of {', '.join(longdoc.ANSWER_FORMATS)}, "
                                      f"got {fmt!r}")
                evidence = _literal_list(rec, "evidence_pages")
                sources = _literal_list(rec, "evidence_sources")
                answer = need(rec, "answer", (str, int, float))
                if doc not in pages:
                    pages[doc] = self._pages(root, doc, f"{file} [record {i}] {doc}")
                meta = {"doc_id": doc, "doc_type": rec.get("doc_type"), "evidence_pages": evidence,
                        "evidence_sources": sources, "answer_format": fmt,
                        "answerable": str(answer) != longdoc.NOT_ANSWERABLE}
                col.add(Sample(slot.id, pages[doc], need(rec, "question", str),
                               {"answer": str(answer), "answer_format": fmt}, meta), file, i)
        return col.result(path)

    # ------------------------------------------------------------------------------------------ scoring
    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        return user_turn(len(sample.images), sample.question + SUFFIX)

    def parse(self, text: str, sample: Sample, ctx: PromptContext) -> Parsed:
        return Parsed(answer=text.strip())

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if parsed.format_error:
            return {"score": 0.0}
        t = sample.target
        return {"score": longdoc.score(t["answer"], parsed.answer, t["answer_format"], self.f1_variant)}

    def summarize(self, records: list[dict]) -> dict:
        meta = [(r.get("meta") or {}) for r in records]
        items = [(bool(m.get("answerable", True)), str(r.get("answer") or ""), value(r, "score"))
                 for r, m in zip(records, meta)]
        acc, f1 = longdoc.accuracy_f1(items, self.f1_variant)

        def share(pred):
            return micro(value(r, "score") for r, m in zip(records, meta) if pred(m))

        out = {"accuracy": acc, "f1": f1,
               "single_page": share(lambda m: len(m.get("evidence_pages", [])) == 1),
               "multi_page": share(lambda m: len(m.get("evidence_pages", [])) > 1),
               "unanswerable": share(lambda m: "evidence_pages" in m and len(m["evidence_pages"]) == 0)}
        out.update({k: share(lambda m, s=s: s in m.get("evidence_sources", [])) for k, s in SOURCES.items()})
        return {**out, **counts(records),
                "variants": {"extraction": "the response itself (the published evaluators extract with GPT-4o)",
                             "f1": self.f1_variant}}

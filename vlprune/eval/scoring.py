"""Turning model text into a scored record, and ``eval score``: score predictions made elsewhere.

A predictions file is JSON Lines, one ``{"id": ..., "prediction": "<raw model text>"}`` per sample
(an ``eval run`` predictions.jsonl is one too). An empty file, unknown and duplicate ids are errors
naming the file (and line); dataset samples with no line are reported, recorded as failed and scored 0.
A line from an ``eval run`` keeps its measurements (:data:`MEASURED`) and is scored on the canvas the
model saw (its ``canvas``); any other line's canvas is the family processor's resize of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vlprune.eval.base import EvalDataset, LoadProblem, Parsed, PromptContext, Sample
from vlprune.eval.coords import ParseError
from vlprune.eval.records import RECORD_KEYS, RecordError, check_known_ids, index_by_id, new_record, read_jsonl


def parse_and_score(ds: EvalDataset, sample: Sample, text: str, ctx: PromptContext) -> dict:
    """``answer``, ``format_error`` and ``scores`` of one model output (a parser's ParseError is a format error)."""
    try:
        parsed = ds.parse(text, sample, ctx)
    except ParseError as exc:
        parsed = Parsed(None, str(exc))
    return {"answer": parsed.answer, "format_error": parsed.format_error, "scores": ds.score(parsed, sample)}


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failed_record(ds: EvalDataset, sample: Sample, index: int, error: str, **fields) -> dict:
    """A sample that could not run: its error text, scored as the dataset scores an unparsable output."""
    reason = f"sample failed: {error}"
    scores = ds.score(Parsed(None, reason), sample)
    rec = dict(id=sample.id, index=index, prediction=None, format_error=reason, scores=scores, meta=sample.meta,
               failed=True, error=error)
    rec.update(fields)
    return new_record(**rec)


def problem_sample(problem: LoadProblem) -> Sample:
    """A stand-in sample for a record the loader could not read but the evaluator counts (scored 0)."""
    rid = problem.id or (f"{Path(problem.file).stem}:{problem.index}" if problem.index is not None
                         else Path(problem.file).name)
    return Sample(rid, [], "", None, {"load_problem": str(problem)})


#: record fields an ``eval run`` measured; ``eval score`` keeps them when it re-scores such a record
MEASURED = ("method", "tokens", "retain", "prompt_tokens", "new_tokens", "time_ms", "batch_size", "cold", "flops")


@dataclass
class Universe:
    """Every sample of a dataset, in order: loaded samples with each counted load problem (failed, scored 0)
    at its record's place (``LoadProblem.position``; after the loaded samples where the loader gives none).

    ``skipped``: records the published evaluator itself leaves out (not scored, reported).
    """

    samples: list[Sample]
    problems: dict[str, LoadProblem] = field(default_factory=dict)
    skipped: list[LoadProblem] = field(default_factory=list)

    def __post_init__(self):
        self.order: dict[str, int] = {}
        for i, s in enumerate(self.samples):
            if s.id in self.order:
                raise RecordError(f"the dataset has two samples with id {s.id!r} "
                                  f"(positions {self.order[s.id]} and {i}); ids must be unique")
            self.order[s.id] = i

    @classmethod
    def from_load(cls, loaded) -> "Universe":
        n = len(loaded.samples)
        slots: list[list] = [[] for _ in range(n + 1)]  # slots[k]: problems read after k loaded samples
        problems = {}
        for p in loaded.problems:
            if p.counted:
                stub = problem_sample(p)
                at = p.position if isinstance(p.position, int) and 0 <= p.position <= n else n
                slots[at].append(stub)
                problems[stub.id] = p
        samples = [*slots[0]]
        for s, after in zip(loaded.samples, slots[1:]):
            samples += [s, *after]
        return cls(samples, problems, [p for p in loaded.problems if not p.counted])

    def head(self, limit: int | None) -> list[Sample]:
        """The samples a run with ``--limit`` covers: the first ``limit`` loaded samples, or all."""
        if limit is None:
            return list(self.samples)
        return [s for s in self.samples if s.id not in self.problems][:limit]


@dataclass
class ScoreReport:
    records: list[dict]
    missing: list[str]
    n_predictions: int


def is_run_record(record: dict) -> bool:
    """A line written by ``eval run``: every record key, its measurements in their types."""
    return (set(RECORD_KEYS) <= set(record)
            and all(record[k] is None or isinstance(record[k], dict) for k in ("tokens", "time_ms", "flops")))


def _recorded_canvas(record: dict, n_images: int) -> tuple[tuple[int, int], ...] | None:
    """The ``canvas`` an ``eval run`` record carries ((W_r, H_r) per image), when it is well formed."""
    if not is_run_record(record):
        return None
    canvas = record.get("canvas")
    if not isinstance(canvas, list) or len(canvas) != n_images:
        return None
    if not all(isinstance(c, list) and len(c) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                           for v in c) for c in canvas):
        return None
    return tuple((c[0], c[1]) for c in canvas)


def _context(ds: EvalDataset, sample: Sample, record: dict, family: str, limits) -> PromptContext:
    """The prompt context a prediction is scored in. A VQA sample whose image cannot be read is still
    scored (its metric reads no image): with no sizes or canvases."""
    from vlprune.eval.measure import prompt_context

    try:
        sizes = [ref.size() for ref in sample.images]
    except Exception:  # noqa: BLE001 -- the caller records it as failed where the metric needs the image
        if ds.kind == "vqa":
            return PromptContext(family, (), ())
        raise
    ctx = prompt_context(family, sizes, limits)
    recorded = _recorded_canvas(record, len(sizes))
    return ctx if recorded is None else PromptContext(family, ctx.sizes, recorded)


def score_predictions(ds: EvalDataset, universe: Universe, predictions: str | Path, family: str,
                      limits: tuple[int, int, int]) -> ScoreReport:
    """Score a predictions file against ``universe`` (see module docstring); records in dataset order.

    The canvas of each image is the one an ``eval run`` record carries, else the family processor's
    resize of its original size (``limits``).
    """
    lines = read_jsonl(predictions, require=("id", "prediction"))
    if not lines:
        raise RecordError(f"{predictions}: holds no predictions (expected one JSON object per line: "
                          f'{{"id": ..., "prediction": "<raw model text>"}})')
    by_id = index_by_id(lines)
    check_known_ids(lines, universe.order, f"dataset {ds.name!r}")
    for ln in lines:
        if not isinstance(ln.record["prediction"], str) and ln.record["prediction"] is not None:
            raise RecordError(f"{ln.where}: 'prediction' must be a string (the raw model text), "
                              f"got {type(ln.record['prediction']).__name__}")
    records, missing = [], []
    for i, sample in enumerate(universe.samples):
        ln = by_id.get(sample.id)
        if sample.id in universe.problems:
            records.append(failed_record(ds, sample, i, str(universe.problems[sample.id])))
            continue
        if ln is None or ln.record["prediction"] is None:
            missing.append(sample.id)
            where = f"no line in {predictions}" if ln is None else f"{ln.where}: prediction is null"
            records.append(failed_record(ds, sample, i, where))
            continue
        measured = {k: ln.record[k] for k in MEASURED} if is_run_record(ln.record) else {}
        try:
            ctx = _context(ds, sample, ln.record, family, limits)
            scored = parse_and_score(ds, sample, ln.record["prediction"], ctx)
        except Exception as exc:  # noqa: BLE001 -- a sample that cannot be scored is recorded as failed
            records.append(failed_record(ds, sample, i, error_text(exc), prediction=ln.record["prediction"]))
            continue
        records.append(new_record(**measured, id=sample.id, index=i, prediction=ln.record["prediction"],
                                  meta=sample.meta, sizes=[list(s) for s in ctx.sizes] or None,
                                  canvas=[list(c) for c in ctx.canvas] or None, **scored))
    return ScoreReport(records, missing, len(lines))

"""Turning model text into a scored record, and ``eval score``: score predictions made elsewhere.

A predictions file is JSON Lines, one ``{"id": ..., "prediction": "<raw model text>"}`` per sample
(an ``eval run`` predictions.jsonl is one too). Unknown and duplicate ids are errors naming the file
and line; dataset samples with no line are reported, recorded as failed and scored 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vlprune.eval.base import EvalDataset, LoadProblem, Parsed, PromptContext, Sample
from vlprune.eval.coords import ParseError
from vlprune.eval.records import RecordError, check_known_ids, index_by_id, new_record, read_jsonl


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


@dataclass
class Universe:
    """Every sample of a dataset, in order: loaded samples, then counted load problems (failed, scored 0).

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
        samples, problems = list(loaded.samples), {}
        for p in loaded.problems:
            if p.counted:
                stub = problem_sample(p)
                samples.append(stub)
                problems[stub.id] = p
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


def score_predictions(ds: EvalDataset, universe: Universe, predictions: str | Path, family: str,
                      limits: tuple[int, int, int]) -> ScoreReport:
    """Score a predictions file against ``universe`` (see module docstring); records in dataset order.

    The canvas of each image is the family processor's resize of its original size (``limits``).
    """
    from vlprune.eval.measure import prompt_context

    lines = read_jsonl(predictions, require=("id", "prediction"))
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
        try:
            ctx = prompt_context(family, [ref.size() for ref in sample.images], limits)
            scored = parse_and_score(ds, sample, ln.record["prediction"], ctx)
        except Exception as exc:  # noqa: BLE001 -- a sample that cannot be scored is recorded as failed
            records.append(failed_record(ds, sample, i, error_text(exc)))
            continue
        records.append(new_record(id=sample.id, index=i, prediction=ln.record["prediction"], meta=sample.meta,
                                  sizes=[list(s) for s in ctx.sizes], canvas=[list(c) for c in ctx.canvas],
                                  **scored))
    return ScoreReport(records, missing, len(lines))

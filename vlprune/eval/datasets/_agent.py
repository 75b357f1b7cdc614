"""Shared base of the multi-step GUI-agent benchmarks (AITW, Mind2Web, GUI-Odyssey, AndroidControl).

A subclass reads its published files into :class:`Episode` records (:meth:`read_episodes`), scores one
parsed action against a sample (:meth:`step_scores`) and aggregates (:meth:`metrics`); loading into
per-step samples, prompting, parsing and the shared summary fields live here.

Dataset options: ``history_actions`` (K) and ``history_images`` (N) for every agent dataset (defaults:
the published evaluation's, per dataset), plus the subclass's own :attr:`Options` dataclass.

Records handed to :meth:`summarize` are ``{"id", "meta", "scores", "format_error"}``; the runner's
stand-ins for counted load problems (``meta["load_problem"]``, no target) and failed samples score 0.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

from vlprune.eval.agent.convention import parse_action
from vlprune.eval.agent.prompt import PromptConfig, TaskSpec, build_messages, step_views
from vlprune.eval.agent.records import Action, Episode, Step
from vlprune.eval.base import (
    DatasetError,
    EvalDataset,
    LoadProblem,
    LoadResult,
    Parsed,
    PromptContext,
    Sample,
)
from vlprune.eval.coords import ParseError
from vlprune.eval.datasets._common import counts, is_load_problem


@dataclasses.dataclass(frozen=True)
class NoOptions:
    pass


class AgentDataset(EvalDataset):
    kind: ClassVar[str] = "agent"
    #: tool-call answers with coordinates and typed text; the published command formats fit in 30-64
    max_new_tokens: ClassVar[int] = 128
    spec: ClassVar[TaskSpec]
    #: the headline number of :meth:`summarize` (comparison tables)
    primary_metric: ClassVar[str]
    default_prompt: ClassVar[PromptConfig] = PromptConfig()
    Options: ClassVar[type] = NoOptions
    #: episode meta keys copied into each sample's meta
    episode_meta: ClassVar[tuple[str, ...]] = ()
    #: scores of a record that has none (a counted load problem)
    missing_scores: ClassVar[dict[str, float]] = {}

    def __init__(self, history_actions: int | None = None, history_images: int | None = None, **options):
        d = self.default_prompt
        self.prompt = PromptConfig(d.history_actions if history_actions is None else history_actions,
                                   d.history_images if history_images is None else history_images)
        known = [f.name for f in dataclasses.fields(self.Options)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            allowed = ", ".join(["history_actions", "history_images", *known])
            raise ValueError(f"{self.name}: unknown option(s) {', '.join(unknown)}; expected: {allowed}")
        self.options = self.Options(**options)

    # ------------------------------------------------------------------------------------------ loading
    def read_episodes(self, path: Path) -> tuple[list[Episode], list[LoadProblem]]:
        """The episodes of ``path`` in the dataset's order, and the entries that could not be read.

        A problem's ``position`` counts the steps of the returned episodes that come before it in that
        order (:meth:`load` turns it into the number of samples before it, so its record stands at the
        entry's place); None puts it after every sample.
        """
        raise NotImplementedError

    def target(self, episode: Episode, step: Step) -> dict:
        """What the metric needs: the ground-truth action and the step's extra ground truth."""
        return {"action": step.action.to_json(), **step.meta}

    def question(self, episode: Episode, step: Step) -> str:
        """The task text of a step's prompt (the episode goal unless the benchmark says otherwise)."""
        return episode.goal

    def sample_meta(self, episode: Episode, step: Step) -> dict:
        meta = {"episode": episode.id, "step": step.id}
        meta.update({k: episode.meta[k] for k in self.episode_meta if k in episode.meta})
        return meta

    def load(self, path) -> LoadResult:
        path = Path(path)
        if not path.exists():
            raise DatasetError(f"{self.name}: {path} does not exist")
        episodes, problems = self.read_episodes(path)
        samples, seen = [], set()
        before: list[int] = []  # step k of the episodes, in order -> samples made before it
        for ep in episodes:
            views = dict(step_views(ep, self.prompt))
            for i, step in enumerate(ep.steps):
                before.append(len(samples))
                if i not in views:  # an unscored step: history only
                    continue
                sid = f"{ep.id}:{step.id}"
                if sid in seen:
                    raise DatasetError(f"{self.name}: {path}: sample id {sid!r} occurs twice")
                seen.add(sid)
                meta = self.sample_meta(ep, step)
                meta["history"] = [a.to_json() for a in views[i].history]
                samples.append(Sample(sid, views[i].images, self.question(ep, step), self.target(ep, step), meta))
        before.append(len(samples))
        problems = [p if p.position is None else
                    dataclasses.replace(p, position=before[p.position] if 0 <= p.position < len(before) else None)
                    for p in problems]
        if not samples and not any(p.counted for p in problems):
            detail = f" ({len(problems)} records skipped, e.g. {problems[0]})" if problems else ""
            raise DatasetError(f"{self.name}: no steps to evaluate under {path}{detail}")
        return LoadResult(samples, problems)

    # ------------------------------------------------------------------------------------------ prompting
    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        history: Any = sample.meta.get("history_text")
        if history is None:
            history = [Action.from_json(a) for a in sample.meta.get("history", [])]
        return build_messages(sample.question, history, len(sample.images), ctx, self.spec, self.prompt,
                              sample.meta.get("instruction"))

    def parse(self, text: str, sample: Sample, ctx: PromptContext) -> Parsed:
        try:
            return Parsed(answer=parse_action(text, ctx.family, ctx.current_canvas).to_json())
        except ParseError as exc:
            return Parsed(format_error=str(exc))

    # ------------------------------------------------------------------------------------------ scoring
    def step_scores(self, pred: dict, sample: Sample) -> dict[str, float]:
        raise NotImplementedError

    def zero_scores(self, sample: Sample) -> dict[str, float]:
        raise NotImplementedError

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if sample.target is None:  # the runner's stand-in for a counted load problem
            return dict(self.missing_scores)
        if parsed.format_error is not None or parsed.answer is None:
            return self.zero_scores(sample)
        return self.step_scores(parsed.answer, sample)

    def metrics(self, rows: list[tuple[dict, dict]]) -> dict:
        """Dataset metrics from (record, scores) pairs."""
        raise NotImplementedError

    def variants(self) -> dict[str, str]:
        raise NotImplementedError

    def summarize(self, records: list[dict]) -> dict:
        rows = []
        for r in records:
            zero = is_load_problem(r) or not r.get("scores")
            rows.append((r, dict(self.missing_scores) if zero else r["scores"]))
        out = self.metrics(rows)
        out.update(counts(records))
        out["variants"] = self.variants()
        out["prompt"] = dataclasses.asdict(self.prompt)
        return out


def episode_of(record: dict) -> str:
    """A record's episode: its meta's, else its id up to the last ``:``."""
    meta = record.get("meta") or {}
    return str(meta["episode"]) if "episode" in meta else str(record["id"]).rsplit(":", 1)[0]


def read_json(file: Path, dataset: str, kind: type, layout: str):
    """The JSON value of ``file`` (a ``kind``), else DatasetError naming the file and the ``layout`` expected."""
    if not file.is_file():
        raise DatasetError(f"{dataset}: {file} not found (expected {layout})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{dataset}: {file}: not JSON ({exc})") from None
    if not isinstance(data, kind):
        raise DatasetError(f"{dataset}: {file}: expected {layout}, got a JSON {type(data).__name__}")
    return data


def find_images(root: Path, probe: str, candidates: tuple[str, ...]) -> Path | None:
    """The first of ``root/<candidate>`` folders holding ``probe`` (a relative image path), else None."""
    for c in candidates:
        folder = root / c if c else root
        if (folder / probe).is_file():
            return folder
    return None

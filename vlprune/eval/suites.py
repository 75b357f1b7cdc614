"""``eval suite``: a paper's main table as data -- benchmarks, method rows, columns, settings -- run with
``eval run``'s machinery and printed in the paper's layout (rows = methods, columns = benchmarks).

Cells come from ``OUT/<benchmark>/<row>/summary.json``; a cell with no measurement prints "—" (never a
number from the paper). A suite is validated when it runs: every row's methods and options must exist
(``vlprune.create_method``), every benchmark's dataset and data folder; ``--row`` / ``--benchmark`` run a
subset, the table always shows every row and column.

Settings follow the papers:

* PixelPrune (§4.1 "Implementation Details"): Qwen3-VL default resolution
  (min_pixels 256², max_pixels 4096²), greedy, batch size 1, ``max_new_tokens`` 512, VLMEvalKit
  prompts; same-budget baselines keep PixelPrune's per-image token count (Table 1: documents,
  Table 2: GUI grounding, training-free rows).
* GUIPruner (arXiv 2602.23235, §4): settings I / II / III keep 40 % / 20 % / 10 % of the history
  tokens and 75 % of the current screenshot's; baselines run at the same budgets. The paper's base
  models (Qwen2-VL-2B, Qwen2.5-VL-7B) are fine-tuned per benchmark first: say which checkpoint ran.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vlprune.eval.config import EvalConfig, EvalUsageError, MethodSpec, RunOptions


@dataclass(frozen=True)
class Benchmark:
    """One benchmark run: ``key`` names its output folder; ``folder`` is under ``--data-root``."""

    key: str
    dataset: str
    folder: str
    options: dict = field(default_factory=dict)
    max_new_tokens: int | None = None


@dataclass(frozen=True)
class Row:
    """A table row: ``key`` names its output folder; ``options`` per method name; ``group`` e.g. a setting."""

    key: str
    label: str
    method: str
    options: dict = field(default_factory=dict)
    group: str = ""

    def spec(self) -> MethodSpec:
        return MethodSpec(self.method, self.options, self.key)


@dataclass(frozen=True)
class Column:
    """A table column: ``metric`` of benchmark ``bench``'s summary (× ``scale``), or the mean of the
    columns in ``mean_of``. ``where``: meta filter of the retention cell (e.g. ``{"split": "web"}``)."""

    label: str
    bench: str = ""
    metric: str = ""
    scale: float = 100.0
    where: dict = field(default_factory=dict)
    mean_of: tuple[str, ...] = ()
    group: str = ""

    @property
    def header(self) -> str:
        return f"{self.group} {self.label}".strip()


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    families: tuple[str, ...]
    models: str
    benchmarks: tuple[Benchmark, ...]
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    min_pixels: int | None = None
    max_pixels: int | None = None
    retention_row: str | None = None  # row whose retained-token share is printed under the header
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        for what, keys in (("benchmark", [b.key for b in self.benchmarks]), ("row", [r.key for r in self.rows]),
                           ("column", [c.header for c in self.columns])):
            dup = {k for k in keys if keys.count(k) > 1}
            if dup:
                raise ValueError(f"suite {self.name}: {what} {sorted(dup)[0]!r} appears twice")
        benches, headers = {b.key for b in self.benchmarks}, {c.header for c in self.columns}
        for c in self.columns:
            if c.mean_of and not set(c.mean_of) <= headers:
                raise ValueError(f"suite {self.name}: column {c.header!r} averages unknown columns")
            if (c.bench or not c.mean_of) and c.bench not in benches:
                raise ValueError(f"suite {self.name}: column {c.header!r} reads unknown benchmark {c.bench!r}")
        if self.retention_row and self.retention_row not in {r.key for r in self.rows}:
            raise ValueError(f"suite {self.name}: retention_row {self.retention_row!r} is not a row")

    def row(self, name: str) -> Row:
        """A row by key, or by label when only one row has it."""
        hits = [r for r in self.rows if r.key == name] or [r for r in self.rows if r.label == name]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise EvalUsageError(f"--row {name!r}: {len(hits)} rows have this label; give a key "
                                 f"({', '.join(r.key for r in hits)})")
        raise EvalUsageError(f"--row {name!r}: suite {self.name} has rows {', '.join(r.key for r in self.rows)}")

    def benchmark(self, name: str) -> Benchmark:
        for b in self.benchmarks:
            if name in (b.key, b.dataset):
                return b
        raise EvalUsageError(f"--benchmark {name!r}: suite {self.name} has {', '.join(b.key for b in self.benchmarks)}")


_SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    if suite.name in _SUITES and _SUITES[suite.name] != suite:
        raise ValueError(f"suite {suite.name!r} is already registered")
    _SUITES[suite.name] = suite
    return suite


def list_suites() -> list[str]:
    import vlprune.eval.paper_suites  # noqa: F401  (registers the papers' suites)

    return sorted(_SUITES)


def get_suite(name: str) -> Suite:
    if name not in list_suites():
        raise EvalUsageError(f"unknown suite {name!r}; expected one of: {', '.join(list_suites())}")
    return _SUITES[name]


# ---------------------------------------------------------------------------------------------- running
@dataclass
class SuiteRun(RunOptions):
    """How to run a suite: where the data is, the model, which rows / benchmarks (default: all), and the
    :class:`RunOptions`; ``min_pixels`` / ``max_pixels`` / ``max_new_tokens`` there override the paper's
    (the table says so)."""

    data_root: str
    model: str
    out: str
    rows: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()


def validate(suite: Suite, run: SuiteRun) -> tuple[list[Row], list[Benchmark]]:
    """The selected rows and benchmarks, checked before any model is loaded (all problems listed)."""
    from vlprune.eval.base import create_dataset

    rows = [suite.row(n) for n in run.rows] or list(suite.rows)
    benches = [suite.benchmark(n) for n in run.benchmarks] or list(suite.benchmarks)
    problems = []
    for r in rows:
        try:
            r.spec().build()
        except EvalUsageError as exc:
            problems.append(f"row {r.key!r} ({r.label}): {exc}")
    for b in benches:
        try:
            create_dataset(b.dataset, **b.options)
        except (TypeError, ValueError) as exc:
            problems.append(f"benchmark {b.key!r}: {exc}")
        if not (Path(run.data_root) / b.folder).exists():
            problems.append(f"benchmark {b.key!r}: no data at {Path(run.data_root) / b.folder}")
    if problems:
        runnable = [r.key for r in rows if not any(p.startswith(f"row {r.key!r}") for p in problems)]
        hint = f" (rows that can run: {' '.join('--row ' + k for k in runnable)})" if runnable else ""
        raise EvalUsageError(f"suite {suite.name} cannot run:\n  " + "\n  ".join(problems) + hint)
    return rows, benches


def run_suite(suite: Suite, run: SuiteRun, *, dist=None, on_record=None) -> tuple[str, int]:
    """Run the selected rows x benchmarks, then render the whole table. Returns (Markdown, failed samples)."""
    from vlprune.eval.distributed import DistContext
    from vlprune.eval.modelspec import load_model, model_family, resolve_device
    from vlprune.eval.runner import Runner

    dist = dist or DistContext()
    rows, benches = validate(suite, run)
    family = model_family(run.model)
    if family not in suite.families and dist.is_main:
        print(f"note: suite {suite.name} reports {', '.join(suite.families)} models; {run.model} is {family}",
              file=sys.stderr)
    min_px, max_px = run.min_pixels or suite.min_pixels, run.max_pixels or suite.max_pixels
    runners = []  # every dataset is loaded (and its layout checked) before the model
    for b in benches:
        options = {**run.run_options(), "max_new_tokens": run.max_new_tokens or b.max_new_tokens,
                   "min_pixels": min_px, "max_pixels": max_px}
        config = EvalConfig(b.dataset, str(Path(run.data_root) / b.folder), run.model, str(Path(run.out) / b.key),
                            dataset_options=dict(b.options), **options)
        runners.append(Runner(config, dist=dist, specs=[r.spec() for r in rows], on_record=on_record))
    device, dtype = resolve_device(run.device, run.dtype, dist.local_rank)
    loaded = load_model(run.model, device=device, dtype=dtype, min_pixels=min_px, max_pixels=max_px, seed=run.seed)
    failed = 0
    for runner in runners:
        runner.loaded = loaded
        failed += runner.run().failed
    table = ""
    if dist.is_main:
        data = collect(suite, Path(run.out))
        overrides = {k: v for k, v in (("min_pixels", run.min_pixels), ("max_pixels", run.max_pixels),
                                       ("max_new_tokens", run.max_new_tokens), ("limit", run.limit)) if v}
        data.update(model=loaded.name, family=family, random_weights=loaded.random_weights, overrides=overrides)
        table = render(suite, data)
        Path(run.out).mkdir(parents=True, exist_ok=True)
        (Path(run.out) / "suite.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        (Path(run.out) / "suite.md").write_text(table, encoding="utf-8")
    dist.barrier()
    return table, failed


# ---------------------------------------------------------------------------------------------- table
def _metric(summary: dict, path: str, where: str):
    node = summary["metrics"]
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            keys = ", ".join(k for k, v in summary["metrics"].items() if not isinstance(v, dict))
            raise EvalUsageError(f"{where}: no metric {path!r} in its summary (top-level metrics: {keys})")
        node = node[part]
    return node


def _retention(folder: Path, where: dict) -> float | None:
    """Σ final / Σ raw visual tokens over the records of ``folder`` matching the meta filter ``where``."""
    file = folder / "predictions.jsonl"
    if not file.exists():
        return None
    raw = final = 0
    for line in file.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("failed") or not r.get("tokens") or any((r.get("meta") or {}).get(k) != v for k, v in where.items()):
            continue
        raw += r["tokens"]["raw"]
        final += list(r["tokens"].values())[-1]
    return final / raw if raw else None


def collect(suite: Suite, out: Path) -> dict:
    """Measured cells (None where nothing is measured) and the retention row, from the output folders."""
    rows = []
    for r in suite.rows:
        cells: dict[str, float | None] = {}
        for c in suite.columns:
            if c.mean_of:
                vals = [cells[h] for h in c.mean_of]
                cells[c.header] = statistics.fmean(vals) if all(v is not None for v in vals) else None
                continue
            f = out / c.bench / r.key / "summary.json"
            if not f.exists():
                cells[c.header] = None
                continue
            v = _metric(json.loads(f.read_text(encoding="utf-8")), c.metric, str(f))
            cells[c.header] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) * c.scale
        rows.append({"key": r.key, "label": r.label, "group": r.group, "method": r.method, "options": r.options,
                     "cells": cells})
    retention = None
    if suite.retention_row:
        retention = {c.header: _retention(out / c.bench / suite.retention_row, c.where) if c.bench else None
                     for c in suite.columns}
    return {"suite": suite.name, "title": suite.title, "columns": [c.header for c in suite.columns], "rows": rows,
            "retention_row": suite.retention_row, "retention": retention}


def render(suite: Suite, data: dict) -> str:
    """The table in the paper's layout: Markdown, '—' for cells not measured."""
    cols = data["columns"]
    grouped = any(r["group"] for r in data["rows"])
    head = (["Setting"] if grouped else []) + ["Method"] + cols
    weights = " (random weights: accuracy is meaningless)" if data.get("random_weights") else ""
    lines = [f"## {suite.title}", "", f"Model: {data.get('model')} ({data.get('family')}){weights}. "
             f"Paper: {suite.models}.", ""]
    if data.get("overrides"):
        lines += ["Settings changed from the paper's: " + ", ".join(f"{k}={v}" for k, v in data["overrides"].items()), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if data.get("retention"):
        label = next(r["label"] for r in data["rows"] if r["key"] == data["retention_row"])
        ret = [f"({v * 100:.1f}%)" if v is not None else "" for v in (data["retention"][c] for c in cols)]
        lines.append("| " + " | ".join(([""] if grouped else []) + [f"retained ({label})"] + ret) + " |")
    last_group = None
    for r in data["rows"]:
        group = r["group"] if r["group"] != last_group else ""
        last_group = r["group"]
        cells = [f"{r['cells'][c]:.1f}" if r["cells"][c] is not None else "—" for c in cols]
        lines.append("| " + " | ".join(([group] if grouped else []) + [r["label"]] + cells) + " |")
    lines += [""] + [f"- {n}" for n in suite.notes]
    return "\n".join(lines).rstrip() + "\n"

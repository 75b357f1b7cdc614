"""``eval suite``: a paper's table as data -- benchmarks (with their protocol), method rows, columns,
settings -- run with ``eval run``'s machinery and printed in the paper's layout.

Cells come from ``OUT/<benchmark>/<row>/summary.json`` (:mod:`vlprune.eval.suite_table`); a cell with no
measurement prints "—" (never a number from the paper). A suite is validated when it runs: every row's
methods and options must exist (``vlprune.create_method``), every benchmark's dataset, options and data
folder, and, once the model is loaded, every row must run on it; ``--row`` / ``--benchmark`` run a
subset, the table always shows every row and column.

Each :class:`Benchmark` spells out its protocol: dataset options (prompt, history screenshots, metric
variants), pixel bounds and generation length. The papers' settings are in
:mod:`vlprune.eval.paper_suites`.
"""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from vlprune.eval.config import EvalConfig, EvalUsageError, MethodSpec, RunOptions
from vlprune.eval.suite_table import _metric, collect, render  # noqa: F401  (re-exported)

LAYOUTS = ("wide", "by_benchmark")
SOURCES = ("metrics", "efficiency", "retain", "unmeasured")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark run: ``key`` names its output folder; ``folder`` is under ``--data-root``; ``options``
    are the dataset's (``create_dataset(dataset, **options)``); ``min_pixels`` / ``max_pixels`` override the
    suite's pixel bounds for this benchmark; ``label`` names it in ``by_benchmark`` tables."""

    key: str
    dataset: str
    folder: str
    options: dict = field(default_factory=dict)
    max_new_tokens: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    label: str = ""

    def pixels(self, suite: "Suite") -> tuple[int | None, int | None]:
        return (self.min_pixels or suite.min_pixels, self.max_pixels or suite.max_pixels)

    def protocol(self, suite: "Suite") -> dict:
        """What the benchmark runs with, as the paper's protocol states it (before any override); pixel
        bounds None = the model's processor's, ``max_new_tokens`` = the dataset's when the suite sets none."""
        from vlprune.eval.base import _DATASETS, _ensure_builtin

        _ensure_builtin()
        lo, hi = self.pixels(suite)
        return {"benchmark": self.key, "dataset": self.dataset, "options": dict(self.options), "min_pixels": lo,
                "max_pixels": hi, "max_new_tokens": self.max_new_tokens or _DATASETS[self.dataset].max_new_tokens}


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
    """A table column (see :mod:`vlprune.eval.suite_table`): ``metric`` (dotted path) of ``source`` in
    benchmark ``bench``'s summary (× ``scale``), or the mean of the columns ``mean_of``, or the ratio
    ``speedup_of = (column, reference row)``. ``where``: meta filter of retention cells."""

    label: str
    bench: str = ""
    metric: str = ""
    scale: float = 100.0
    where: dict = field(default_factory=dict)
    mean_of: tuple[str, ...] = ()
    group: str = ""
    source: str = "metrics"
    speedup_of: tuple[str, str] | None = None
    fmt: str = ".1f"

    @property
    def header(self) -> str:
        return f"{self.group} {self.label}".strip()

    @property
    def derived(self) -> bool:
        return bool(self.mean_of or self.speedup_of or self.source == "unmeasured")


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
    layout: str = "wide"  # or "by_benchmark": a block of rows per benchmark, columns are measures
    group_label: str = "Setting"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"suite {self.name}: layout must be one of {', '.join(LAYOUTS)}")
        for what, keys in (("benchmark", [b.key for b in self.benchmarks]), ("row", [r.key for r in self.rows]),
                           ("column", [c.header for c in self.columns])):
            dup = {k for k in keys if keys.count(k) > 1}
            if dup:
                raise ValueError(f"suite {self.name}: {what} {sorted(dup)[0]!r} appears twice")
        benches, headers = {b.key for b in self.benchmarks}, [c.header for c in self.columns]
        rows = {r.key for r in self.rows}
        for i, c in enumerate(self.columns):
            if c.source not in SOURCES:
                raise ValueError(f"suite {self.name}: column {c.header!r} has unknown source {c.source!r}")
            if c.mean_of and not set(c.mean_of) <= set(headers[:i]):
                raise ValueError(f"suite {self.name}: column {c.header!r} averages unknown (or later) columns")
            if c.speedup_of and (c.speedup_of[0] not in headers[:i] or c.speedup_of[1] not in rows):
                raise ValueError(f"suite {self.name}: column {c.header!r} divides an unknown column or row")
            wants_bench = not c.derived and self.layout == "wide"
            if (wants_bench or c.bench) and c.bench not in benches:
                raise ValueError(f"suite {self.name}: column {c.header!r} reads unknown benchmark {c.bench!r}")
        if self.retention_row and self.retention_row not in rows:
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


# ---------------------------------------------------------------------------------------------- options
def dataset_option_names(dataset: str) -> set[str]:
    """The options ``create_dataset(dataset, ...)`` takes (its ``__init__`` parameters along the class
    hierarchy, and an agent dataset's ``Options`` fields)."""
    from vlprune.eval.base import _DATASETS, _ensure_builtin

    _ensure_builtin()
    cls = _DATASETS[dataset]
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}
    options_cls = getattr(cls, "Options", None)
    if options_cls is not None and hasattr(options_cls, "__dataclass_fields__"):
        names |= {f.name for f in fields(options_cls)}
    return names


def benchmark_options(suite: Suite, benches: list[Benchmark], overrides: dict) -> dict[str, dict]:
    """Per benchmark key its dataset options with ``overrides`` applied: ``{"history_images": 2}`` goes to
    every selected benchmark whose dataset takes it, ``{"ocrbench.prompt": ...}`` to one benchmark; an
    option no selected benchmark takes is an error."""
    out = {b.key: dict(b.options) for b in benches}
    for name, value in overrides.items():
        key, _, opt = name.rpartition(".")
        targets = [b for b in benches if (b.key == key if key else True) and opt in dataset_option_names(b.dataset)]
        if key and key not in out:
            raise EvalUsageError(f"--dataset-opt {name}: {key!r} is not a selected benchmark of suite {suite.name} "
                                 f"({', '.join(out)})")
        if not targets:
            where = f"benchmark {key!r}" if key else "no selected benchmark of suite " + suite.name
            raise EvalUsageError(f"--dataset-opt {name}: {where} takes an option {opt!r}")
        for b in targets:
            out[b.key][opt] = value
    return out


# ---------------------------------------------------------------------------------------------- running
@dataclass
class SuiteRun(RunOptions):
    """How to run a suite: where the data is, the model, which rows / benchmarks (default: all), dataset
    option overrides (:func:`benchmark_options`) and the :class:`RunOptions`; ``min_pixels`` /
    ``max_pixels`` / ``max_new_tokens`` there override the paper's (the table says so)."""

    data_root: str
    model: str
    out: str
    rows: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()
    dataset_options: dict = field(default_factory=dict)


def validate(suite: Suite, run: SuiteRun) -> tuple[list[Row], list[Benchmark]]:
    """The selected rows and benchmarks, checked before any model is loaded (all problems listed)."""
    from vlprune.eval.base import create_dataset

    rows = [suite.row(n) for n in run.rows] or list(suite.rows)
    benches = [suite.benchmark(n) for n in run.benchmarks] or list(suite.benchmarks)
    options = benchmark_options(suite, benches, run.dataset_options)
    problems = []
    for r in rows:
        try:
            r.spec().build()
        except EvalUsageError as exc:
            problems.append(f"row {r.key!r} ({r.label}): {exc}")
    for b in benches:
        try:
            create_dataset(b.dataset, **options[b.key])
        except (TypeError, ValueError) as exc:
            problems.append(f"benchmark {b.key!r}: {exc}")
        if not (Path(run.data_root) / b.folder).exists():
            problems.append(f"benchmark {b.key!r}: no data at {Path(run.data_root) / b.folder}")
    _refuse(suite, rows, problems)
    return rows, benches


def _refuse(suite: Suite, rows: list[Row], problems: list[str]) -> None:
    if problems:
        runnable = [r.key for r in rows if not any(p.startswith(f"row {r.key!r}") for p in problems)]
        hint = f" (rows that can run: {' '.join('--row ' + k for k in runnable)})" if runnable else ""
        raise EvalUsageError(f"suite {suite.name} cannot run:\n  " + "\n  ".join(problems) + hint)


def _check_rows_on_model(suite: Suite, rows: list[Row], loaded) -> None:
    """Every selected row enters ``vlprune.apply`` on the loaded model (e.g. a ViT block or decoder layer
    the model has); the rows that cannot are listed before anything runs."""
    from vlprune.eval.runner import check_methods

    problems = []
    for r in rows:
        try:
            check_methods(loaded, [r.spec()])
        except EvalUsageError as exc:
            problems.append(f"row {r.key!r} ({r.label}): {exc} (on {loaded.name})")
    _refuse(suite, rows, problems)


def set_pixel_limits(processor, min_pixels: int, max_pixels: int) -> None:
    """Set a Qwen-VL processor's resize bounds (its image processor's ``size``) for the next benchmark."""
    ip = getattr(processor, "image_processor", processor)
    ip.size = {"shortest_edge": int(min_pixels), "longest_edge": int(max_pixels)}
    for attr, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if getattr(ip, attr, None) is not None:
            setattr(ip, attr, int(v))


def run_suite(suite: Suite, run: SuiteRun, *, dist=None, on_record=None) -> tuple[str, int]:
    """Run the selected rows x benchmarks, then render the whole table. Returns (Markdown, failed samples)."""
    from vlprune.eval.distributed import DistContext
    from vlprune.eval.measure import resize_limits
    from vlprune.eval.modelspec import load_model, model_family, resolve_device
    from vlprune.eval.runner import Runner

    dist = dist or DistContext()
    rows, benches = validate(suite, run)
    options = benchmark_options(suite, benches, run.dataset_options)
    family = model_family(run.model)
    if family not in suite.families and dist.is_main:
        print(f"note: suite {suite.name} reports {', '.join(suite.families)} models; {run.model} is {family}",
              file=sys.stderr)
    runners = []  # every dataset is loaded (and its layout checked) before the model
    for b in benches:
        lo, hi = b.pixels(suite)
        opts = {**run.run_options(), "max_new_tokens": run.max_new_tokens or b.max_new_tokens,
                "min_pixels": run.min_pixels or lo, "max_pixels": run.max_pixels or hi}
        config = EvalConfig(b.dataset, str(Path(run.data_root) / b.folder), run.model, str(Path(run.out) / b.key),
                            dataset_options=options[b.key], **opts)
        runners.append(Runner(config, dist=dist, specs=[r.spec() for r in rows], on_record=on_record))
    device, dtype = resolve_device(run.device, run.dtype, dist.local_rank)
    lo, hi = suite.min_pixels, suite.max_pixels
    loaded = load_model(run.model, device=device, dtype=dtype, min_pixels=run.min_pixels or lo,
                        max_pixels=run.max_pixels or hi, seed=run.seed)
    _check_rows_on_model(suite, rows, loaded)
    _, default_lo, default_hi = resize_limits(loaded.processor)
    failed = 0
    for runner in runners:
        c = runner.config
        set_pixel_limits(loaded.processor, c.min_pixels or default_lo, c.max_pixels or default_hi)
        runner.loaded = loaded
        failed += runner.run().failed
    set_pixel_limits(loaded.processor, default_lo, default_hi)
    table = ""
    if dist.is_main:
        data = collect(suite, Path(run.out))
        overrides = {k: v for k, v in (("min_pixels", run.min_pixels), ("max_pixels", run.max_pixels),
                                       ("max_new_tokens", run.max_new_tokens), ("limit", run.limit),
                                       ("temperature", run.temperature)) if v}
        overrides.update({f"dataset_opt {k}": v for k, v in run.dataset_options.items()})
        data.update(model=loaded.name, family=family, random_weights=loaded.random_weights, overrides=overrides)
        table = render(suite, data)
        Path(run.out).mkdir(parents=True, exist_ok=True)
        (Path(run.out) / "suite.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        (Path(run.out) / "suite.md").write_text(table, encoding="utf-8")
    dist.barrier()
    return table, failed

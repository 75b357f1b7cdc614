"""A paper's table as data -- :class:`Benchmark` (with its protocol), :class:`Row` (methods and options),
:class:`Column` (what a cell reads), :class:`Suite` -- and the registry suites add themselves to
(:func:`register_suite`). Running a suite and looking one up by name is :mod:`vlprune.eval.suites`;
rendering its table is :mod:`vlprune.eval.suite_table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vlprune.eval.config import EvalUsageError, MethodSpec

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
        from vlprune.eval.catalog import dataset_class

        lo, hi = self.pixels(suite)
        return {"benchmark": self.key, "dataset": self.dataset, "options": dict(self.options), "min_pixels": lo,
                "max_pixels": hi, "max_new_tokens": self.max_new_tokens or dataset_class(self.dataset).max_new_tokens}


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

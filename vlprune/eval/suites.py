"""``eval suite``: a paper's table (:mod:`vlprune.eval.suite_spec`: benchmarks with their protocol,
method rows, columns, settings) looked up by name, run with ``eval run``'s machinery and printed in
the paper's layout.

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

from vlprune.eval.config import EvalConfig, EvalUsageError, RunOptions
from vlprune.eval.suite_spec import _SUITES, Benchmark, Column, Row, Suite, register_suite  # noqa: F401  (re-exported)
from vlprune.eval.suite_table import _metric, collect, render  # noqa: F401  (re-exported)


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
    from vlprune.eval.catalog import dataset_class

    cls = dataset_class(dataset)
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


def validate(suite: Suite, run: SuiteRun) -> tuple[list[Row], list[Benchmark], dict[str, dict]]:
    """The selected rows and benchmarks, checked before any model is loaded (all problems listed)."""
    from vlprune.eval.catalog import create_dataset

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
    return rows, benches, options


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
    rows, benches, options = validate(suite, run)
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

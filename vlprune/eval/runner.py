"""``eval run``: a model over a dataset once per method, with resume, sharding and the comparison.

Output folder::

    OUT/<method>/predictions.jsonl   one record per sample, dataset order (records module)
    OUT/<method>/summary.json        counts, the dataset's metrics, efficiency, run metadata
    OUT/<method>/run.json            what the folder's records were made with (checked on resume)
    OUT/comparison.{md,json,png}     methods side by side

Resume: records are appended and fsync'ed per sample; rerunning the same command reads them back (a
cut last line is dropped and that sample reruns), skips finished samples and runs the rest. A folder
made with another model, dataset, method options or generation settings is refused (``run.json``).

Sharding (:mod:`vlprune.eval.distributed`): with N processes each takes every N-th pending sample and
appends to ``OUT/<method>/shards/rank<r>.jsonl``; rank 0 merges them into ``predictions.jsonl``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vlprune.eval.base import DatasetError
from vlprune.eval.catalog import create_dataset, dataset_options
from vlprune.eval.config import EvalConfig, EvalUsageError, MethodSpec
from vlprune.eval.distributed import DistContext
from vlprune.eval.engine import BatchEngine, Item, generation_settings
from vlprune.eval.modelspec import LoadedModel, load_model, resolve_device
from vlprune.eval.outputs import PREDICTIONS, RUN, SHARDS, SUMMARY, check_run_out
from vlprune.eval.records import (
    RecordError,
    RecordWriter,
    check_known_ids,
    index_by_id,
    read_jsonl,
    write_json,
    write_records,
)
from vlprune.eval.report import method_summary, run_metadata, write_comparison
from vlprune.eval.scoring import Universe


@dataclass
class MethodResult:
    spec: str
    folder: Path
    summary: dict
    ran: int  # samples this process ran now (0 when everything was already done)


@dataclass
class EvalResult:
    methods: list[MethodResult] = field(default_factory=list)
    comparison: dict | None = None

    @property
    def failed(self) -> int:
        return sum(m.summary["n_failed"] for m in self.methods)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def open_dataset(name: str, options: dict, data: str):
    """(dataset, universe) or EvalUsageError for an unknown name / option; DatasetError for a bad folder."""
    try:
        ds = create_dataset(name, **options)
    except TypeError as exc:  # an option the dataset's constructor does not take
        known = dataset_options(name)
        unknown = sorted(set(options) - set(known))
        if not unknown:
            raise EvalUsageError(f"--dataset-opt: dataset {name!r}: {exc}") from None
        takes = f"its options are: {', '.join(known)}" if known else "it takes no options"
        raise EvalUsageError(f"--dataset-opt {unknown[0]}=...: dataset {name!r} has no option {unknown[0]!r}; "
                             f"{takes}") from None
    except ValueError as exc:
        raise EvalUsageError(f"--dataset {name}: {exc}") from None
    try:
        loaded = ds.load(data)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{name}: {data}: a file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        where = exc.filename or data
        raise DatasetError(f"{name}: {where}: cannot read ({exc.strerror or exc})") from None
    return ds, Universe.from_load(loaded)


# ---------------------------------------------------------------------------------------------- folders
def _identity(config: EvalConfig, spec: MethodSpec, loaded: LoadedModel, max_new_tokens: int, limits) -> dict:
    """What a folder's records depend on; a resumed run must match it exactly."""
    ident = {
        "dataset": config.dataset, "data": str(Path(config.data).resolve()), "dataset_options": config.dataset_options,
        "model": loaded.name, "method": spec.describe(), "max_new_tokens": max_new_tokens,
        "min_pixels": limits[1], "max_pixels": limits[2], "dtype": loaded.dtype,
        "seed": config.seed if loaded.random_weights else None,
        # None when greedy: a greedy run's identity matches one recorded without these keys
        "temperature": config.temperature or None, "sampling_seed": config.seed if config.temperature else None,
    }
    return json.loads(json.dumps(ident, default=str))


def _files(folder: Path) -> list[Path]:
    shards = sorted((folder / SHARDS).glob("rank*.jsonl")) if (folder / SHARDS).is_dir() else []
    return [folder / PREDICTIONS, *shards]


def _prepare_folder(folder: Path, identity: dict, retry_failed: bool) -> None:
    """Rank 0, before anyone writes: check run.json, repair cut last lines, drop failed records on retry."""
    folder.mkdir(parents=True, exist_ok=True)
    run_file = folder / RUN
    if run_file.exists():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        diff = [k for k in identity if old.get(k) != identity[k]]
        if diff:
            k = diff[0]
            raise RecordError(f"{run_file}: this folder holds records made with {k}={old.get(k)!r}, this run has "
                              f"{k}={identity[k]!r}; use another --out (or remove {folder})")
    else:
        write_json(run_file, identity)
    for f in _files(folder):
        lines = read_jsonl(f, repair=True)
        if retry_failed and any(ln.record.get("failed") for ln in lines):
            write_records(f, [ln.record for ln in lines if not ln.record.get("failed")])


def _done(folder: Path, universe: Universe) -> dict:
    lines = [ln for f in _files(folder) for ln in read_jsonl(f)]
    stale = [ln for ln in lines if ln.record["id"] not in universe.order and ln.record.get("failed")]
    if stale:  # e.g. a record the loader could not read, since fixed: it now has another id
        raise RecordError(f"{stale[0].where}: id {stale[0].record['id']!r} is not a sample of this dataset; it is "
                          f"a failed sample (error: {stale[0].record.get('error')}); --retry-failed drops failed "
                          f"records and runs their samples again")
    check_known_ids(lines, universe.order, f"this dataset (is {folder} from another run?)")
    return index_by_id(lines)


def _merge(folder: Path, universe: Universe) -> list[dict]:
    """Rank 0, after everyone wrote: all records in dataset order in predictions.jsonl; shards removed."""
    by_id = _done(folder, universe)
    records = sorted((ln.record for ln in by_id.values()), key=lambda r: universe.order[r["id"]])
    for r in records:
        r["index"] = universe.order[r["id"]]
    write_records(folder / PREDICTIONS, records)
    for f in _files(folder)[1:]:
        f.unlink()
    if (folder / SHARDS).is_dir():
        (folder / SHARDS).rmdir()
    return records


# ---------------------------------------------------------------------------------------------- run
def _warm_up(method, family: str) -> None:
    """Load the selectors' compiled kernels outside timed calls."""
    from vlprune.analyze import warm_up

    for m in method:
        if m.stage == "pre_vit":
            warm_up(m, family)


def check_methods(loaded: LoadedModel, specs: list[MethodSpec]) -> None:
    """Enter ``vlprune.apply`` once per method (nothing runs) so an unsupported one fails before any sample."""
    from vlprune.api import apply

    for spec in specs:
        try:
            with apply(loaded.model, spec.build(), processor=loaded.processor):
                pass
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise EvalUsageError(f"--method {spec.spec}: {exc}") from None


class Runner:
    """Runs one :class:`EvalConfig` (see module docstring). ``specs`` replaces the config's methods
    (suites: labelled rows); ``loaded`` reuses a loaded model; ``on_record(record)`` is called after each
    record is written (progress hooks; tests interrupt runs through it)."""

    def __init__(self, config: EvalConfig, *, dist: DistContext | None = None, loaded: LoadedModel | None = None,
                 specs: list[MethodSpec] | None = None, on_record: Callable[[dict], None] | None = None, log=None):
        self.config = config
        self.dist = dist or DistContext()
        self.specs = specs if specs is not None else config.specs()
        check_run_out(config.out, [s.key for s in self.specs])
        self.ds, self.universe = open_dataset(config.dataset, config.dataset_options, config.data)
        self.max_new_tokens = config.max_new_tokens or self.ds.max_new_tokens
        self.loaded = loaded
        self.on_record = on_record
        self.log = log or ((lambda msg: print(msg, file=sys.stderr)) if self.dist.is_main else (lambda msg: None))

    def _load(self) -> LoadedModel:
        c = self.config
        device, dtype = resolve_device(c.device, c.dtype, self.dist.local_rank)
        return load_model(c.model, device=device, dtype=dtype, min_pixels=c.min_pixels, max_pixels=c.max_pixels,
                          seed=c.seed)

    def run(self) -> EvalResult:
        if self.loaded is None:
            self.loaded = self._load()
        check_methods(self.loaded, self.specs)
        result = EvalResult()
        for spec in self.specs:
            result.methods.append(self.run_method(spec))
        if self.dist.is_main:
            title = f"{self.ds.name}: {self.loaded.name}" + (" (random weights)" if self.loaded.random_weights else "")
            result.comparison = write_comparison(self.config.out, self.ds, [m.summary for m in result.methods], title)
        self.dist.barrier()
        return result

    def run_method(self, spec: MethodSpec) -> MethodResult:
        from tqdm import tqdm

        from vlprune.api import ApplyConfig, apply
        from vlprune.eval.measure import resize_limits

        c, dist, ds, loaded = self.config, self.dist, self.ds, self.loaded
        folder = Path(c.out) / spec.key
        self.limits = resize_limits(loaded.processor)
        identity = _identity(c, spec, loaded, self.max_new_tokens, self.limits)
        dist.on_main(lambda: _prepare_folder(folder, identity, c.retry_failed))
        done = _done(folder, self.universe)
        dist.barrier()  # everyone has read the files before anyone appends
        pending = [Item(self.universe.order[s.id], s, str(self.universe.problems[s.id])
                        if s.id in self.universe.problems else None)
                   for s in self.universe.head(c.limit) if s.id not in done]
        if done:
            failed = sum(1 for ln in done.values() if ln.record.get("failed"))
            kept = (f" ({failed} recorded as failed, kept as they are; --retry-failed runs them again)"
                    if failed else "")
            self.log(f"{ds.name} / {spec.key}: {len(done)} sample(s) already in {folder}{kept}, {len(pending)} to run")
        mine = dist.shard(pending)
        path = folder / PREDICTIONS if not dist.active else folder / SHARDS / f"rank{dist.rank}.jsonl"
        method = spec.build()
        bar = tqdm(total=len(mine), desc=f"{ds.name} {spec.key}", unit="sample", file=sys.stderr,
                   dynamic_ncols=True, disable=True if not (c.progress and dist.is_main) else None)
        with bar, RecordWriter(path) as writer, apply(loaded.model, method, processor=loaded.processor,
                                                      config=ApplyConfig(sync_cuda=loaded.device.startswith("cuda"))) as session:
            _warm_up(method, loaded.family)
            engine = BatchEngine(ds, loaded, session, spec.key, self.max_new_tokens, c.temperature, c.seed)
            for start in range(0, len(mine), c.batch_size):
                for rec in engine.run(mine[start : start + c.batch_size]):
                    writer.write(rec)
                    bar.update(1)
                    if self.on_record is not None:
                        self.on_record(rec)
        dist.barrier()
        summary = dist.on_main(lambda: self._finish(folder, spec))
        return MethodResult(spec.key, folder, summary, len(mine))

    def _finish(self, folder: Path, spec: MethodSpec) -> dict:
        records = _merge(folder, self.universe)
        c, loaded = self.config, self.loaded
        run = run_metadata(
            command="eval run",
            **loaded.describe(), method=spec.describe(), dataset_options=c.dataset_options, data=str(c.data),
            max_new_tokens=self.max_new_tokens, batch_size=c.batch_size, world_size=self.dist.world_size,
            min_pixels=self.limits[1], max_pixels=self.limits[2], seed=c.seed if loaded.random_weights else None,
            generation=generation_settings(c.temperature),
        )
        summary = method_summary(self.ds, spec.key, records, run, len(self.universe.skipped))
        write_json(folder / SUMMARY, summary)
        return summary


def run_eval(config: EvalConfig, **kwargs) -> EvalResult:
    """Run ``config``; see :class:`Runner` for the keyword arguments."""
    return Runner(config, **kwargs).run()

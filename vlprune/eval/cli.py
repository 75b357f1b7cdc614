"""``vlprune eval run | score | suite``: evaluate a model with pruning methods on the papers' benchmarks.

:func:`add_eval_parser` registers the ``eval`` command on the main parser's subparsers; :func:`main`
runs the arguments that follow ``vlprune eval`` (``main(["run", "--dataset", ...])``).

Exit codes: 0 success; 1 some sample failed (each is recorded, the rest ran); 2 usage error (bad flag,
unknown dataset / method / option, a dataset folder in the wrong layout or unreadable, a model folder that
is not a Qwen-VL checkpoint, a missing, empty or unreadable predictions file, an output folder that cannot
be used or that holds an input or another command's results; see :mod:`vlprune.eval.outputs`); 130
interrupted. Outputs and inputs are checked before any model is built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlprune.flags import path_arg

PROG = "vlprune eval"


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _add_common(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``run`` and ``suite``: model, device and run control (``vlprune.eval.config.RunOptions``)."""
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, type=path_arg, metavar="FOLDER|random:SHAPE",
                   help="a local Qwen-VL checkpoint folder, or random:<shape> (e.g. random:qwen2-vl-tiny, "
                        "random:qwen3-vl-2b) for a random-weight dry run with the offline processor")
    g.add_argument("--device", default=None, metavar="cpu|cuda",
                   help="default: cuda if available, else cpu (under torchrun: GPU LOCAL_RANK)")
    g.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="weights / activations (default: bf16 on CUDA, fp32 on CPU)")
    g.add_argument("--seed", type=int, default=0,
                   help="random: weights' seed, and the sampling seed with --temperature (default: 0)")
    r = p.add_argument_group("run")
    r.add_argument("--batch-size", type=_positive, default=1, metavar="N",
                   help="samples per generate call, left padded (default: 1; per-sample times are then the batch's)")
    r.add_argument("--max-new-tokens", type=_positive, default=None, metavar="N",
                   help="generation length (default: the dataset's published setting)")
    r.add_argument("--limit", type=_positive, default=None, metavar="N", help="only the first N samples")
    r.add_argument("--min-pixels", type=_positive, default=None, metavar="N", help="processor min_pixels")
    r.add_argument("--max-pixels", type=_positive, default=None, metavar="N", help="processor max_pixels")
    r.add_argument("--temperature", type=float, default=0.0, metavar="T",
                   help="sampling temperature (default: 0 = greedy); recorded in run.json and summary.json")
    r.add_argument("--retry-failed", action="store_true",
                   help="on resume, run samples recorded as failed again (default: keep them)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``eval`` (with ``run``, ``score``, ``suite``) on a ``add_subparsers()`` object."""
    from vlprune.eval.suites import list_suites

    e = subparsers.add_parser(
        "eval", help="evaluate a model with pruning methods on a benchmark (accuracy, tokens, FLOPs, time)",
        description="Run a Qwen-VL model over a benchmark once per method and compare; score predictions "
                    "made elsewhere; run a paper's main table. See docs/eval.md.",
    )
    esub = e.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    e.set_defaults(func=_no_subcommand, parser=e)

    r = esub.add_parser(
        "run", help="run a model over a dataset for each method (always including full)",
        description="Greedy generation over every sample, once per --method (full always runs first); writes "
                    "OUT/<method>/predictions.jsonl and summary.json, and OUT/comparison.{md,json,png}. "
                    "Rerunning the same command resumes. Under torchrun the samples are sharded over processes.",
    )
    d = r.add_argument_group("data")
    d.add_argument("--dataset", required=True, metavar="NAME", help="a registered dataset (vlprune.eval.list_datasets())")
    d.add_argument("--data", required=True, type=path_arg, metavar="PATH", help="the dataset's local folder or file")
    d.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE", help="dataset option (repeatable)")
    m = r.add_argument_group("methods")
    m.add_argument("--method", action="append", default=[], metavar="M",
                   help="a method or a composition a+b (repeatable; full always runs)")
    m.add_argument("--opt", action="append", default=[], metavar="NAME.OPTION=VALUE",
                   help="method option, value read as a Python literal else as text (e.g. fastv.retain=0.3)")
    r.add_argument("--out", required=True, type=path_arg, metavar="DIR",
                   help="output folder (made if needed; rerunning the same command resumes from it)")
    _add_common(r)
    r.set_defaults(func=_guarded(cmd_run), parser=r)

    s = esub.add_parser(
        "score", help="score predictions made elsewhere",
        description="Score a JSON Lines file of {\"id\": ..., \"prediction\": \"<raw model text>\"} against a "
                    "dataset; writes OUT/predictions.jsonl (scored records) and OUT/summary.json. Canvases "
                    "(Qwen2.5-VL pixel outputs) are the family processor's resize of each image.",
    )
    s.add_argument("--dataset", required=True, metavar="NAME")
    s.add_argument("--data", required=True, type=path_arg, metavar="PATH")
    s.add_argument("--dataset-opt", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--predictions", required=True, type=path_arg, metavar="FILE",
                   help="JSON Lines predictions (an 'eval run' predictions.jsonl keeps its measurements)")
    s.add_argument("--out", required=True, type=path_arg, metavar="DIR",
                   help="output folder: a new one, or an earlier 'eval score' output (never an 'eval run' folder "
                        "or the one holding --predictions)")
    s.add_argument("--family", default=None, metavar="FAMILY",
                   help="model family that made the predictions (output convention); required for grounding "
                        "and agent datasets")
    s.add_argument("--min-pixels", type=_positive, default=None, metavar="N", help="processor min_pixels")
    s.add_argument("--max-pixels", type=_positive, default=None, metavar="N", help="processor max_pixels")
    s.set_defaults(func=_guarded(cmd_score), parser=s)

    u = esub.add_parser(
        "suite", help="run a paper's main table (datasets x methods) and print it in the paper's layout",
        description="Run the benchmarks and methods of a paper's main table with the paper's settings; "
                    "DATA_ROOT/<dataset>/ holds each benchmark. Cells not measured show '—'.",
    )
    u.add_argument("suite", choices=list_suites(), metavar="SUITE", help=" | ".join(list_suites()))
    u.add_argument("--data-root", required=True, type=path_arg, metavar="DIR")
    u.add_argument("--out", required=True, type=path_arg, metavar="DIR")
    u.add_argument("--row", action="append", default=[], metavar="KEY",
                   help="run only these rows, by key (e.g. pixelprune, guipruner-II) or unique label (repeatable; "
                        "default: all); the table still shows every row")
    u.add_argument("--benchmark", action="append", default=[], metavar="DATASET",
                   help="run only these benchmarks (repeatable; default: all)")
    u.add_argument("--dataset-opt", action="append", default=[], metavar="[BENCH.]KEY=VALUE",
                   help="override a dataset option of every benchmark that takes it (e.g. history_images=2), or of "
                        "one benchmark (ocrbench.match_variant=lmms-eval); the table says so (repeatable)")
    _add_common(u)
    u.set_defaults(func=_guarded(cmd_suite), parser=u)
    return e


def _no_subcommand(args) -> int:
    args.parser.print_help()
    return 2


# ---------------------------------------------------------------------------------------------- helpers
def _dataset_options(items: list[str]) -> dict:
    from vlprune.flags import parse_key_values

    return parse_key_values(items, "--dataset-opt")


def _method_options(items: list[str]) -> dict:
    from vlprune.flags import parse_method_options

    return parse_method_options(items, "--opt")


def _run_options(args) -> dict:
    """:class:`~vlprune.eval.config.RunOptions` from the flags ``_add_common`` defines."""
    return dict(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit,
                min_pixels=args.min_pixels, max_pixels=args.max_pixels, device=args.device, dtype=args.dtype,
                seed=args.seed, temperature=args.temperature, retry_failed=args.retry_failed,
                progress=not args.no_progress)


def _dist(device):
    from vlprune.eval.distributed import DistContext, init_from_torchrun, launched_by_torchrun

    return init_from_torchrun(device) if launched_by_torchrun() else DistContext()


def _print_written(out: Path, result) -> None:
    for m in result.methods:
        print(f"wrote {m.folder / 'predictions.jsonl'} and summary.json ({m.summary['n']} samples, "
              f"{m.summary['n_failed']} failed)")
    print(f"wrote {out / 'comparison.md'}, comparison.json, comparison.png")


# ---------------------------------------------------------------------------------------------- commands
def cmd_run(args) -> int:
    from vlprune.eval.config import EvalConfig
    from vlprune.eval.distributed import shutdown
    from vlprune.eval.report import comparison_markdown
    from vlprune.eval.runner import run_eval

    config = EvalConfig(args.dataset, args.data, args.model, args.out, methods=tuple(args.method),
                        method_options=_method_options(args.opt), dataset_options=_dataset_options(args.dataset_opt),
                        **_run_options(args))
    config.specs()  # flags checked before anything is loaded
    dist = _dist(args.device)
    try:
        result = run_eval(config, dist=dist)
        if dist.is_main:
            print(comparison_markdown(result.comparison))
            _print_written(Path(args.out), result)
            if result.failed:
                print(f"{PROG}: {result.failed} sample run(s) failed over all methods (recorded with their error)", file=sys.stderr)
        return result.exit_code
    finally:
        shutdown(dist)


def cmd_score(args) -> int:
    import json

    from vlprune.eval.config import EvalUsageError
    from vlprune.eval.measure import family_limits
    from vlprune.eval.outputs import SCORE_COMMAND, check_predictions_file, check_score_out
    from vlprune.eval.records import write_json, write_records
    from vlprune.eval.report import method_summary, run_metadata
    from vlprune.eval.runner import open_dataset
    from vlprune.eval.scoring import score_predictions
    from vlprune.families import DEFAULT_FAMILY, get_family

    predictions = check_predictions_file(args.predictions)
    out = check_score_out(args.out, predictions)
    ds, universe = open_dataset(args.dataset, _dataset_options(args.dataset_opt), args.data)
    if args.family is None and ds.kind != "vqa":
        raise EvalUsageError(f"--family is required for {ds.kind} dataset {ds.name!r}: the coordinate frame of "
                             f"the outputs depends on the model family")
    try:
        family = get_family(args.family or DEFAULT_FAMILY).name
    except ValueError as exc:
        raise EvalUsageError(f"--family: {exc}") from None
    limits = family_limits(family, args.min_pixels, args.max_pixels)
    rep = score_predictions(ds, universe, predictions, family, limits)
    write_records(out / "predictions.jsonl", rep.records)
    run = run_metadata(command=SCORE_COMMAND, predictions=str(args.predictions), family=family, data=str(args.data),
                       dataset_options=_dataset_options(args.dataset_opt), min_pixels=limits[1], max_pixels=limits[2])
    summary = method_summary(ds, None, rep.records, run, len(universe.skipped))
    write_json(out / "summary.json", summary)
    print(json.dumps(summary["metrics"], indent=2))
    print(f"scored {rep.n_predictions} prediction(s) against {len(rep.records)} sample(s); "
          f"wrote {out / 'predictions.jsonl'} and {out / 'summary.json'}")
    if rep.missing:
        shown = ", ".join(repr(i) for i in rep.missing[:10]) + (" ..." if len(rep.missing) > 10 else "")
        print(f"{PROG}: {len(rep.missing)} sample(s) have no prediction in {args.predictions} (scored 0): {shown}",
              file=sys.stderr)
    failed = sum(1 for r in rep.records if r["failed"])
    return 1 if failed else 0


def cmd_suite(args) -> int:
    from vlprune.eval.outputs import check_run_out
    from vlprune.eval.suites import SuiteRun, get_suite, run_suite

    check_run_out(args.out, [])
    suite = get_suite(args.suite)
    run = SuiteRun(args.data_root, args.model, args.out, rows=tuple(args.row), benchmarks=tuple(args.benchmark),
                   dataset_options=_dataset_options(args.dataset_opt), **_run_options(args))
    dist = _dist(args.device)
    from vlprune.eval.distributed import shutdown

    try:
        table, failed = run_suite(suite, run, dist=dist)
        if dist.is_main:
            print(table)
        return 1 if failed else 0
    finally:
        shutdown(dist)


# ---------------------------------------------------------------------------------------------- main
def _usage_errors() -> tuple[type[BaseException], ...]:
    from vlprune.flags import FlagError
    from vlprune.eval.base import DatasetError
    from vlprune.eval.config import EvalUsageError
    from vlprune.eval.modelspec import ModelError
    from vlprune.eval.records import RecordError

    return (EvalUsageError, FlagError, DatasetError, ModelError, RecordError)


def _guarded(command):
    """``command(args)`` with usage errors printed as ``vlprune eval: error: ...`` and exit status 2."""

    def run(args) -> int:
        try:
            return command(args)
        except _usage_errors() as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # a file that cannot be read or written (disk full, permissions)
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"{PROG}: error: {where}{exc.strerror or exc}", file=sys.stderr)
            return 2

    run.__name__ = command.__name__
    return run


def main(argv: list[str] | None = None) -> int:
    """``vlprune eval`` with ``argv`` = the arguments after ``eval`` (``["run", "--dataset", ...]``)."""
    parser = argparse.ArgumentParser(prog="vlprune")
    add_eval_parser(parser.add_subparsers(dest="command", metavar="COMMAND"))
    try:
        args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
        return args.func(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

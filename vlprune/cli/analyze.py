"""``vlprune analyze``: per-image token counts, retain and duplicate ratios for image files or folders."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vlprune.analyze import AnalyzeConfig, BatchReport, ImageFailure, ImageResult, collect_images, iter_analyze
from vlprune.cli.common import (
    PROG,
    add_image_options,
    add_method_options,
    family_type,
    image_options,
    opt_flags,
    output_path,
    path_arg,
    usage_error,
)
from vlprune.cli.flags import FlagError
from vlprune.families import list_families
from vlprune.methods import list_methods
from vlprune.options import OptionError

CSV_COLUMNS = (
    "path", "family", "method", "height", "width", "grid_h", "grid_w", "tokens", "kept", "retain",
    "unique", "duplicate_ratio", "selector_ms", "kept_grid_h", "kept_grid_w", "overlay", "error",
)


def add_parser(sub) -> None:
    a = sub.add_parser(
        "analyze",
        help="per-image token counts, retain and duplicate ratios for image files or folders",
        description=(
            "Resize each image as the family's processor does, select blocks (one block = one LLM token) "
            "and report tokens, kept, retain ratio, duplicate ratio (Appendix A) and selector time, then a "
            "dataset summary (retain = Σkept/Σtokens). Folders are walked recursively for "
            "png/jpg/jpeg/webp/bmp/gif/tif/tiff files. A failed file is reported and skipped; the exit "
            "status is 1 if any failed. For --method resize, 'kept' is the token count of the downscaled "
            "image and kept_indices are all of its blocks (kept_grid / resized give its grid and size)."
        ),
    )
    a.add_argument("paths", nargs="+", type=path_arg, metavar="PATH", help="image files and/or folders")
    g = a.add_argument_group("selection")
    g.add_argument("--family", type=family_type, default="qwen3-vl", metavar="|".join(list_families()),
                   help="model family: block size and resize limits (default: qwen3-vl)")
    g.add_argument("--method", choices=list_methods("pre_vit"), default="pixelprune",
                   help="pre-ViT method (default: pixelprune); baselines keep PixelPrune's per-image count")
    add_method_options(g, "seed of the random baselines (default: 0)")
    add_image_options(a.add_argument_group("image loading and size"))
    o = a.add_argument_group("output")
    o.add_argument("--json", action="store_true",
                   help="stdout: one JSON object per image (failures: {path, error}), then {\"summary\": ...}")
    o.add_argument("--csv", type=path_arg, metavar="FILE", help="also write one CSV row per image (failures included)")
    o.add_argument("--overlay", type=path_arg, metavar="DIR", help="write a PNG per image: dropped blocks dimmed and outlined")
    o.add_argument("--plot", type=path_arg, metavar="FILE", help="write a histogram + ECDF of per-image retain ratios")
    o.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    a.set_defaults(func=cmd_analyze, parser=a)


@dataclass
class OutputConfig:
    """Where and how ``analyze`` reports."""

    json: bool = False
    csv: str | None = None
    overlay: str | None = None
    plot: str | None = None
    progress: bool = True


@dataclass
class _Config(AnalyzeConfig):
    """:class:`AnalyzeConfig` plus the ``--opt`` options of its method (routed and validated with the
    named flags by :func:`vlprune.analyze.build_methods`)."""

    extra: dict = field(default_factory=dict)

    def method_options(self) -> dict:
        return {**super().method_options(), **self.extra}


def _analyze_config(args: argparse.Namespace) -> AnalyzeConfig:
    opts = opt_flags(args)
    extra = opts.pop(args.method, {})
    try:
        if opts:
            name = next(iter(opts))
            raise FlagError("--opt", f"{name}.*: method {name!r} is not the --method analysed ({args.method})")
        named = {"order": args.order, "metric": args.metric, "tau": args.tau, "seed": args.seed, "retain": args.retain}
        for key in extra:
            if named.get(key) is not None:
                raise FlagError("--opt", f"{args.method}.{key}: also given as --{key}; give it once")
        try:
            return _Config(family=args.family, method=args.method, image=image_options(args), extra=extra, **named)
        except OptionError as exc:
            if exc.option in extra:
                raise FlagError("--opt", f"{args.method}.{exc.option}: {exc}") from None
            raise
    except (ValueError, TypeError) as exc:
        usage_error(args.parser, exc)


class _Table:
    """Human-readable rows, streamed as results arrive (a path longer than the column is printed
    whole and shifts that row; nothing is cut)."""

    def __init__(self, width: int):
        self.w = width
        self.fmt = f"{{:<{width}}}  {{:>11}}  {{:>9}}  {{:>7}}  {{:>7}}  {{:>7}}  {{:>7}}  {{:>9}}"

    def header(self) -> str:
        return self.fmt.format("image", "size (WxH)", "grid", "tokens", "kept", "retain", "dup", "select ms")

    def row(self, r: ImageResult) -> str:
        (h, w), (gh, gw) = r.size, r.grid
        return self.fmt.format(
            r.path, f"{w}x{h}", f"{gw}x{gh}", r.tokens, r.kept,
            f"{r.retain:.1%}", f"{r.duplicate_ratio:.1%}", f"{r.selector_ms:.2f}",
        )


def _summary_line(report: BatchReport) -> str:
    s = report.summary
    if not s.images:
        return f"summary: 0 images ok, {s.failed} failed"
    return (
        f"summary: {s.images} images ok, {s.failed} failed | tokens {s.tokens} -> kept {s.kept} | "
        f"retain {s.retain:.1%} (Σkept/Σtokens) | duplicate ratio {s.duplicate_ratio:.1%} | "
        f"selector ms mean {s.selector_ms_mean:.2f}, median {s.selector_ms_median:.2f}"
    )
def _csv_row(item: ImageResult | ImageFailure, config: AnalyzeConfig) -> list:
    if isinstance(item, ImageFailure):
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(path=item.path, family=config.family, method=config.method, error=item.error)
        return [row[c] for c in CSV_COLUMNS]
    return [
        item.path, item.family, item.method, item.size[0], item.size[1], item.grid[0], item.grid[1],
        item.tokens, item.kept, f"{item.retain:.6f}", item.unique, f"{item.duplicate_ratio:.6f}",
        f"{item.selector_ms:.4f}", item.kept_grid[0], item.kept_grid[1], item.overlay or "", "",
    ]


def cmd_analyze(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    config = _analyze_config(args)
    out = OutputConfig(json=args.json, csv=args.csv, overlay=args.overlay, plot=args.plot,
                       progress=not args.no_progress)
    info = sys.stderr if out.json else sys.stdout  # where "wrote ..." notes go; JSON keeps stdout clean
    inputs, early_failures = collect_images(args.paths)
    sources = [i.path for i in inputs]
    output_path(args.parser, "--csv", out.csv, sources)
    output_path(args.parser, "--plot", out.plot, sources)
    if out.overlay:
        holds = next((p for p in sources if p.parent.resolve() == Path(out.overlay).resolve()), None)
        if holds is not None:
            args.parser.error(f"argument --overlay: {out.overlay!r} holds the input {str(holds)!r}; overlays would "
                              f"replace input images; give another folder")
        try:
            Path(out.overlay).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            args.parser.error(f"argument --overlay: cannot use {out.overlay!r} as a folder: {exc}")
    csv_file = None
    if out.csv:
        try:
            csv_file = open(out.csv, "w", newline="", encoding="utf-8")
        except OSError as exc:
            args.parser.error(f"argument --csv: cannot write {out.csv!r}: {exc}")
    report = BatchReport()
    table = _Table(min(max([len(str(i.path)) for i in inputs] + [5]), 60))
    writer = csv.writer(csv_file) if csv_file else None
    if writer:
        writer.writerow(CSV_COLUMNS)

    def emit_failure(f: ImageFailure) -> None:
        report.failures.append(f)
        tqdm.write(f"{PROG}: error: {f.path}: {f.error}", file=sys.stderr)
        if out.json:
            tqdm.write(json.dumps(f.to_dict()), file=sys.stdout)
        if writer:
            writer.writerow(_csv_row(f, config))

    try:
        for f in early_failures:
            emit_failure(f)
        bar = tqdm(total=len(inputs), file=sys.stderr, unit="img", desc="analyze", dynamic_ncols=True,
                   disable=True if not out.progress else None)
        with bar:
            for item in iter_analyze(inputs, config, out.overlay):
                if isinstance(item, ImageFailure):
                    emit_failure(item)
                else:
                    report.results.append(item)
                    if len(report.results) == 1 and not out.json:
                        tqdm.write(table.header(), file=sys.stdout)
                    line = json.dumps(item.to_dict()) if out.json else table.row(item)
                    tqdm.write(line, file=sys.stdout)
                    if writer:
                        writer.writerow(_csv_row(item, config))
                bar.update(1)
    finally:
        if csv_file:
            csv_file.close()

    summary = report.summary
    if out.json:
        body = {"family": config.family, "method": config.method, "options": config.options(), **summary.to_dict()}
        print(json.dumps({"summary": body}))
    else:
        if config.method == "resize" and report.results:
            print("note: --method resize keeps a downscaled image: 'kept' is its token count (all its blocks).")
        print(_summary_line(report))
    if out.overlay and report.results:
        print(f"wrote {len(report.results)} overlay PNGs to {out.overlay}", file=info)
    if out.csv:
        print(f"wrote {out.csv}", file=info)
    if out.plot:
        if report.results:
            from vlprune.overlay import save_retain_plot

            title = f"{config.method} ({config.family}): retain ratio over {summary.images} images"
            try:
                save_retain_plot(out.plot, [r.retain for r in report.results], summary.retain, title)
                print(f"wrote {out.plot}", file=info)
            except OSError as exc:
                print(f"{PROG}: error: --plot {out.plot}: {exc}", file=sys.stderr)
                return 1
        else:
            print(f"{PROG}: no image analysed; {out.plot} not written", file=sys.stderr)
    if report.failures:
        print(f"{PROG}: {len(report.failures)} input(s) failed", file=sys.stderr)
        return 1
    return 0

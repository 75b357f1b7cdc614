"""Command line: ``vlprune analyze``, ``vlprune bench``, ``vlprune demo``, ``vlprune list`` (also ``python -m vlprune``).

Exit codes: 0 success; 1 some input failed (each is reported, the rest still run); 2 usage error
(unknown method / metric / family, invalid number; the message names the flag); 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from PIL import Image

from vlprune import __version__
from vlprune.analyze import (
    AnalyzeConfig,
    BatchReport,
    ImageFailure,
    ImageResult,
    analyze_grid,
    collect_images,
    iter_analyze,
    warm_up,
)
from vlprune.algorithms.predictive import METRICS, ORDERS
from vlprune.families import get_family, list_families
from vlprune.grid import BlockGrid
from vlprune.images import ALPHA_MODES, HIGH_BIT_DEPTH_MODES, MAX_IMAGE_PIXELS, ImageOptions
from vlprune.methods import list_methods
from vlprune.methods import options as opt
from vlprune.methods.base import get_method_class
from vlprune.methods.pixelprune import PixelPrune

PROG = "vlprune"
CSV_COLUMNS = (
    "path", "family", "method", "height", "width", "grid_h", "grid_w", "tokens", "kept", "retain",
    "unique", "duplicate_ratio", "selector_ms", "kept_grid_h", "kept_grid_w", "overlay", "error",
)


# ------------------------------------------------------------------------------ argument types
def _option(kind, check):
    """argparse ``type`` that parses with ``kind`` and validates with ``check`` -- one of the shared
    option validators (:mod:`vlprune.methods.options`), so a flag follows the Python API's rules."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        try:
            return check(value)
        except opt.OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _int_option(name: str, minimum: int):
    return _option(int, lambda v: opt.integer(name, v, minimum=minimum))


_tau = _option(float, lambda v: opt.unit_interval("tau", v))
_retain = _option(float, lambda v: opt.fraction("retain", v))
_seed = _option(int, opt.seed)


def _pixels(name: str):
    return _int_option(name, 1)


def _add_image_options(group) -> None:
    """The image options (:class:`vlprune.images.ImageOptions`) of analyze and bench."""
    group.add_argument("--min-pixels", type=_pixels("min_pixels"), default=None, metavar="N",
                       help="processor min_pixels, as the model is served (default: the family's)")
    group.add_argument("--max-pixels", type=_pixels("max_pixels"), default=None, metavar="N",
                       help="processor max_pixels, as the model is served (default: the family's)")
    group.add_argument("--max-image-pixels", type=_pixels("max_image_pixels"), default=MAX_IMAGE_PIXELS, metavar="N",
                       help=f"refuse decoded images larger than this (decompression bombs; default: {MAX_IMAGE_PIXELS})")
    group.add_argument("--exif", action=argparse.BooleanOptionalAction, default=None,
                       help="apply the EXIF orientation (default: yes, as transformers' load_image does for files)")
    group.add_argument("--alpha", choices=ALPHA_MODES, default=None,
                       help="transparency: ignore every kind (drop) or composite every kind on white (white); "
                            "default: as transformers loads a file (alpha band dropped, a colour key composited)")
    group.add_argument("--high-bit-depth", choices=HIGH_BIT_DEPTH_MODES, default=None,
                       help="16-bit / float images: clip at 255 as PIL and transformers do (default) or scale to 8 bits")


def _image_options(args: argparse.Namespace) -> ImageOptions:
    """The image flags as :class:`ImageOptions` (a bad combination is a usage error naming the flag)."""
    try:
        return ImageOptions(**{f.name: getattr(args, f.name) for f in fields(ImageOptions)})
    except opt.OptionError as exc:
        _usage_error(args.parser, exc)


def _usage_error(parser: argparse.ArgumentParser, exc: Exception):
    """Report a bad option value as argparse does, naming the flag that gave it."""
    if isinstance(exc, opt.OptionError):
        parser.error(f"argument {exc.flag}: {exc}")
    parser.error(str(exc))


def _output_path(parser: argparse.ArgumentParser, flag: str, path: str | None) -> None:
    """Check an output file before the run: not a folder, its folder can be made."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        parser.error(f"argument {flag}: {path!r} is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"argument {flag}: cannot create the folder of {path!r}: {exc.strerror or exc}")


def _family(text: str) -> str:
    try:
        return get_family(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_method_options(group, seed_help: str) -> None:
    """--order/--metric/--tau/--seed/--retain of analyze and bench; None = not given. A given option
    that the chosen method(s) cannot use is refused (:func:`vlprune.analyze.build_methods`)."""
    group.add_argument("--order", choices=ORDERS, default=None, help="PixelPrune scan order (default: pred2d)")
    group.add_argument("--metric", choices=METRICS, default=None, help="PixelPrune block distance (default: max)")
    group.add_argument("--tau", type=_tau, default=None, metavar="T",
                       help="PixelPrune threshold in [0, 1] pixel units; 0 = exact (default: 0); for a "
                            "baseline: of the PixelPrune that sets its budget")
    group.add_argument("--seed", type=_seed, default=None, metavar="N", help=f"integer >= 0; {seed_help}")
    group.add_argument("--retain", type=_retain, default=None, metavar="R",
                       help="baselines only: keep this fraction (0, 1] of each image's blocks instead of "
                            "PixelPrune's count")


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Drop visual tokens that carry no new information from Qwen-VL-family models.",
        epilog="Run 'vlprune COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    pre_vit = list_methods("pre_vit")
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
    a.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    g = a.add_argument_group("selection")
    g.add_argument("--family", type=_family, default="qwen3-vl", metavar="|".join(list_families()),
                   help="model family: block size and resize limits (default: qwen3-vl)")
    g.add_argument("--method", choices=pre_vit, default="pixelprune",
                   help="pre-ViT method (default: pixelprune); baselines keep PixelPrune's per-image count")
    _add_method_options(g, "seed of the random baselines (default: 0)")
    _add_image_options(a.add_argument_group("image loading and size"))
    o = a.add_argument_group("output")
    o.add_argument("--json", action="store_true",
                   help="stdout: one JSON object per image (failures: {path, error}), then {\"summary\": ...}")
    o.add_argument("--csv", metavar="FILE", help="also write one CSV row per image (failures included)")
    o.add_argument("--overlay", metavar="DIR", help="write a PNG per image: dropped blocks dimmed and outlined")
    o.add_argument("--plot", metavar="FILE", help="write a histogram + ECDF of per-image retain ratios")
    o.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    a.set_defaults(func=cmd_analyze, parser=a)

    d = sub.add_parser(
        "demo",
        help="run PixelPrune on built-in sample images for every family; write overlays",
        description="Make small sample images (GUI screenshot, document page, noise texture), run PixelPrune "
                    "(exact, Pred-2D) on each for every model family, print a table and write overlay PNGs.",
    )
    d.add_argument("--out", default="vlprune_demo", metavar="DIR", help="output folder (default: ./vlprune_demo)")
    d.add_argument("--no-generate", action="store_true",
                   help="skip the end-to-end generation section (when this build provides one)")
    d.set_defaults(func=cmd_demo, parser=d)

    _add_bench_parser(sub, pre_vit)

    ls = sub.add_parser("list", help="list methods and model families", description="List methods and model families.")
    ls.set_defaults(func=cmd_list, parser=ls)
    return parser


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except SystemExit as exc:  # argparse usage errors (2) and --help / --version (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `vlprune analyze ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


# ------------------------------------------------------------------------------ analyze
@dataclass
class OutputConfig:
    """Where and how ``analyze`` reports."""

    json: bool = False
    csv: str | None = None
    overlay: str | None = None
    plot: str | None = None
    progress: bool = True


def _analyze_config(args: argparse.Namespace) -> AnalyzeConfig:
    try:
        return AnalyzeConfig(
            family=args.family, method=args.method, order=args.order, metric=args.metric, tau=args.tau,
            seed=args.seed, retain=args.retain, image=_image_options(args),
        )
    except (ValueError, TypeError) as exc:
        _usage_error(args.parser, exc)


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
    csv_file = None
    if out.csv:
        _output_path(args.parser, "--csv", out.csv)
        try:
            csv_file = open(out.csv, "w", newline="", encoding="utf-8")
        except OSError as exc:
            args.parser.error(f"argument --csv: cannot write {out.csv!r}: {exc}")
    if out.overlay:
        try:
            Path(out.overlay).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            args.parser.error(f"argument --overlay: cannot use {out.overlay!r} as a folder: {exc}")
    _output_path(args.parser, "--plot", out.plot)
    inputs, early_failures = collect_images(args.paths)
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


# ------------------------------------------------------------------------------ demo
@dataclass
class DemoConfig:
    out: Path = Path("vlprune_demo")
    generate: bool = True


def run_demo(config: DemoConfig, samples: dict[str, Image.Image]) -> list[dict]:
    """Selection part of the demo: every sample x every family; prints the table, writes files.
    Returns one record per (sample, family)."""
    from vlprune.overlay import save_overlay

    out = Path(config.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    for name, img in samples.items():
        img.save(out / "samples" / f"{name}.png")
    method = PixelPrune()
    rows = []
    print("PixelPrune (Pred-2D, exact: tau = 0) on built-in samples; one token = one 2x2-patch block\n")
    fmt = "{:<9}  {:<11}  {:>9}  {:>11}  {:>7}  {:>16}  {:>7}  {:>9}"
    print(fmt.format("image", "family", "input", "resized", "grid", "tokens -> kept", "retain", "select ms"))
    for family in list_families():
        warm_up(method, family)
    for name, img in samples.items():
        for family in list_families():
            grid = BlockGrid.from_image(img, family)
            result, sel = analyze_grid(grid, method, name)
            path = save_overlay(out / "overlay" / f"{name}_{family}.png", grid.image(), sel)
            (h, w), (gh, gw) = result.size, result.grid
            print(fmt.format(
                name, family, f"{img.width}x{img.height}", f"{w}x{h}", f"{gw}x{gh}",
                f"{result.tokens} -> {result.kept}", f"{result.retain:.1%}", f"{result.selector_ms:.2f}",
            ))
            rows.append({**result.to_dict(), "overlay": str(path)})
    print(f"\nwrote {len(rows)} overlays to {out / 'overlay'} (dropped blocks dimmed and outlined; kept blocks untouched)")
    print(f"sample inputs in {out / 'samples'}; try: {PROG} analyze {out / 'samples'} --overlay {out / 'analyze'}")
    return rows


def cmd_demo(args: argparse.Namespace) -> int:
    from vlprune.samples import make_samples

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        args.parser.error(f"argument --out: {args.out!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        args.parser.error(f"argument --out: cannot create {args.out!r}: {exc.strerror or exc}")
    config = DemoConfig(out=out, generate=not args.no_generate)
    samples = make_samples()
    run_demo(config, samples)
    if config.generate:
        from vlprune.processor import demo_generation

        print()
        demo_generation(samples, config.out)
    return 0


# ------------------------------------------------------------------------------ bench
def _add_bench_parser(sub, pre_vit: list[str]) -> None:
    b = sub.add_parser(
        "bench",
        help="measured ViT / prefill / decode time, memory and KV cache of a real-size random-weight model",
        description=(
            "Build a named real-size architecture (vlprune/shapes.py) with random weights (no download), "
            "turn each image into a batch-1 request with the real offline processor, and time the unpruned "
            "model ('full') and each --method: ViT ms, prefill/TTFT ms, decode tokens/s, peak memory, "
            "KV-cache size, tokens kept and analytic FLOPs (vlprune.flops). Median and min/max over "
            "--repeats after --warmup passes. Bad input (unknown family/shape, a device or dtype that "
            "cannot run, a request that does not fit in memory, an image that cannot be read or that the "
            "processor refuses -- checked as analyze checks it -- or an option value that is not allowed) "
            "exits 2 before the "
            "model is built."
        ),
    )
    b.add_argument("images", nargs="+", metavar="IMAGE", help="image files (one request each)")
    g = b.add_argument_group("model")
    g.add_argument("--family", default=None, metavar="|".join(list_families()),
                   help="model family; resolves short --shape aliases such as 2b (default: from --shape, "
                        "else qwen3-vl)")
    g.add_argument("--shape", default="2b", metavar="NAME",
                   help="shape name (qwen3-vl-2b, qwen2-vl-2b, ...) or an alias with --family (default: 2b)")
    g.add_argument("--dtype", choices=["bf16", "fp32", "fp16"], default="bf16", help="weights/activations (default: bf16)")
    g.add_argument("--device", default="cpu", metavar="cpu|cuda", help="default: cpu")
    g.add_argument("--layers", type=_int_option("layers", 1), default=None, metavar="N",
                   help="QUICK RUNS ONLY: cut the LLM to N layers (labelled REDUCED DEPTH in every output)")
    g.add_argument("--vision-layers", type=_int_option("vision_layers", 1), default=None, metavar="N",
                   help="QUICK RUNS ONLY: cut the ViT to N layers (labelled REDUCED DEPTH)")
    g.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="attention implementation (default: sdpa)")
    m = b.add_argument_group("methods")
    m.add_argument("--method", action="append", choices=pre_vit, default=None, dest="methods",
                   help="method to compare with full (repeatable; default: pixelprune)")
    _add_method_options(m, "seed of the random baselines and of the weights (default: 0)")
    r = b.add_argument_group("run")
    r.add_argument("--warmup", type=_int_option("warmup", 0), default=1, metavar="N",
                   help="untimed passes over all images and methods first (default: 1)")
    r.add_argument("--repeats", type=_int_option("repeats", 1), default=3, metavar="N", help="timed passes (default: 3)")
    r.add_argument("--decode-tokens", type=_int_option("decode_tokens", 0), default=8,
                   metavar="N", help="greedy decode steps after each prefill (default: 8)")
    r.add_argument("--threads", type=_int_option("threads", 1), default=None, metavar="N",
                   help="torch CPU threads, fixed for the run (default: torch's default)")
    _add_image_options(b.add_argument_group("image loading and size"))
    r.add_argument("--max-memory-gb", type=_option(float, lambda v: opt.positive("max_memory_gb", v)), default=None,
                   metavar="G", help="memory budget for the pre-build check (default: available RAM / free GPU memory)")
    r.add_argument("--prompt", default="Describe this image.", help="the text turn after the image")
    r.add_argument("--onednn-cache", type=_int_option("onednn_cache", 0), default=8192,
                   metavar="N", help="CPU: oneDNN primitive-cache capacity in entries (default: 8192; oneDNN's own "
                                     "1024 thrashes when full and pruned shapes alternate; 0 disables the cache)")
    o = b.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write every number (per method and per image) as JSON")
    o.add_argument("--plot", metavar="FILE", help="write a bar plot (PNG)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    b.set_defaults(func=cmd_bench, parser=b)


def cmd_bench(args: argparse.Namespace) -> int:
    from vlprune.bench import BenchConfig, BenchError, format_table, run_bench, save_plot, write_json

    family = args.family
    if family is None and "-" not in args.shape.strip("-"):
        family = "qwen3-vl"
    _output_path(args.parser, "--json", args.json)
    _output_path(args.parser, "--plot", args.plot)
    try:
        config = BenchConfig(
            images=list(args.images), shape=args.shape, family=family, methods=args.methods or ["pixelprune"],
            options={"tau": args.tau, "order": args.order, "metric": args.metric, "retain": args.retain},
            dtype=args.dtype, device=args.device, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
            decode_tokens=args.decode_tokens, layers=args.layers, vision_layers=args.vision_layers,
            max_memory_gb=args.max_memory_gb, prompt=args.prompt, attn=args.attn,
            seed=0 if args.seed is None else args.seed, progress=not args.no_progress,
            onednn_cache=args.onednn_cache, image=_image_options(args),
        )
        result = run_bench(config)
    except (BenchError, opt.OptionError) as exc:
        _usage_error(args.parser, exc)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        save_plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


# ------------------------------------------------------------------------------ list
def _first_sentence(doc: str | None) -> str:
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    return para.split(". ")[0].rstrip(".") + "." if para else ""


def cmd_list(args: argparse.Namespace) -> int:
    print("methods (analyze --method takes the pre_vit ones):")
    for name in list_methods():
        cls = get_method_class(name)
        print(f"  {name:<12} {cls.stage:<8} {_first_sentence(cls.__doc__)}")
    print("\nfamilies (--family):")
    for name in list_families():
        f = get_family(name)
        print(f"  {name:<12} block {f.block} px (patch {f.patch_size} x merge {f.merge_size}), "
              f"min_pixels {f.min_pixels}, max_pixels {f.max_pixels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

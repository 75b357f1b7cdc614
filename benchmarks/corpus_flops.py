"""Retention and analytic prefill-FLOPs speedup of PixelPrune over the whole corpus (no timing).

For every image of ``../shared/corpus/manifest.csv``: the family's processor resize, PixelPrune's kept
tokens (defaults: Pred-2D, Max, tau = 0) and the prefill FLOPs of the named real shape
(:mod:`vlprune.flops`, ``logits_to_keep=1``) full vs pruned. This is the speedup a runtime whose time
follows FLOPs would see; measured speedups on the images of benchmarks/bench_table.py sit next to it in
docs/benchmarks.md. Cheap (seconds): it builds no model.

    PYTHONPATH=. python benchmarks/corpus_flops.py [--shape qwen3-vl-2b] [--max-pixels N] [--json FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from vlprune import create_method
from vlprune.flops import ImageTokens, Prompt, prefill_flops
from vlprune.grid import BlockGrid, ImageError
from vlprune.shapes import build_config, get_shape

#: Non-image tokens of a one-image chat turn with a short question (the bench prompt gives 19-21).
TEXT_TOKENS = 20
#: The paper's reported Qwen3-VL-2B TTFT speedup on an H20 at about 26 % retained (PixelPrune, Table 4).
PAPER = (0.26, 4.2)


def run(corpus: Path, shape_name: str, max_pixels: int | None) -> tuple[list[dict], list[str]]:
    shape = get_shape(shape_name)
    config = build_config(shape_name)
    method = create_method("pixelprune")
    rows, failed = [], []
    for rec in csv.DictReader(open(corpus / "manifest.csv", newline="")):
        path = corpus / rec["file"]
        try:
            sel = method(BlockGrid.from_image(path, shape.family, max_pixels=max_pixels))
        except (ImageError, OSError, ValueError) as exc:
            failed.append(f"{rec['file']}: {exc}")
            continue
        gh, gw = sel.grid
        thw = (1, 2 * gh, 2 * gw)
        full = prefill_flops(config, Prompt([ImageTokens(thw)], TEXT_TOKENS)).total
        pruned = prefill_flops(config, Prompt([ImageTokens(thw, sel.kept)], TEXT_TOKENS)).total
        rows.append({"file": rec["file"], "category": rec["category"], "grid": [gh, gw], "tokens": sel.n_total,
                     "kept": sel.n_kept, "retain": sel.retain, "flops_full": full, "flops_pruned": pruned,
                     "flops_speedup": full / pruned})
    return rows, failed


def render(rows: list[dict], shape_name: str, max_pixels: int | None) -> str:
    size = f"max_pixels {max_pixels}" if max_pixels else "the family's default processor size"
    out = [f"PixelPrune (Pred-2D, Max, tau = 0) on {len(rows)} corpus images, {shape_name} at {size}; "
           f"analytic prefill FLOPs, {TEXT_TOKENS} text tokens.\n",
           "| category | images | tokens (median) | retain: median [min-max] | FLOPs speedup: median [min-max] |",
           "|---|---|---|---|---|"]
    cats = sorted({r["category"] for r in rows})
    for cat in [*cats, "all"]:
        rs = [r for r in rows if cat in ("all", r["category"])]
        if not rs:
            continue
        ret = [r["retain"] for r in rs]
        sp = [r["flops_speedup"] for r in rs]
        out.append(f"| {cat} | {len(rs)} | {statistics.median(r['tokens'] for r in rs):.0f} | "
                   f"{statistics.median(ret):.1%} [{min(ret):.1%}-{max(ret):.1%}] | "
                   f"{statistics.median(sp):.2f}x [{min(sp):.2f}-{max(sp):.2f}] |")
    near = [r for r in rows if abs(r["retain"] - PAPER[0]) <= 0.05]
    if near:
        out.append(f"\nImages retaining {PAPER[0] - 0.05:.0%}-{PAPER[0] + 0.05:.0%} (like the paper's ~26 %): "
                   f"{len(near)}, FLOPs speedup median {statistics.median(r['flops_speedup'] for r in near):.2f}x "
                   f"(the paper's measured H20 TTFT speedup there: {PAPER[1]}x).")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    ap.add_argument("--shape", default="qwen3-vl-2b")
    ap.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels (default: the family's)")
    ap.add_argument("--json", help="write the per-image rows")
    a = ap.parse_args(argv)
    rows, failed = run(Path(a.corpus), a.shape, a.max_pixels)
    print(render(rows, a.shape, a.max_pixels))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    for f in failed:
        print(f"failed: {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

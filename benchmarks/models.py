"""Full vs PixelPrune-pruned prefill on real-size Qwen-VL models with random weights.

The measurements are ``vlprune bench`` runs (full depth, bf16, random weights, the real offline
processor; CUDA events on a GPU, where prefill = TTFT) shared with benchmarks/bench_table.py:
``qwen3-vl-2b@native`` (Qwen3-VL-2B shape, 8 corpus screenshots and pages at the processor's default
size) and ``qwen2.5-vl-3b@1MP`` (Qwen2.5-VL-3B shape, one image per category, ~1 MP). This script runs
the ones that are missing (or all with ``--rerun``) and prints, per image: retain ratio, ViT ms and
prefill ms full -> pruned, the measured speedup next to the LLM token ratio and the analytic FLOPs
speedup (:mod:`vlprune.flops`), and the selection + bookkeeping share of the pruned prefill.

    PYTHONPATH=. python benchmarks/models.py                 # runs what is missing (~30 min on 2 cores)
    PYTHONPATH=. python benchmarks/models.py --render-only   # from benchmarks/results/bench/*.json
    PYTHONPATH=. python benchmarks/models.py --quick         # 2 LLM / 2 ViT layers (REDUCED DEPTH)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_table  # noqa: E402

LABELS = ["qwen3-vl-2b@native", "qwen2.5-vl-3b@1MP"]
METHOD = "pixelprune"


def rows(d: dict) -> list[dict]:
    """Per-image full-vs-PixelPrune figures of one bench JSON (medians over the timed passes)."""
    full = {r["path"]: r for r in d["per_image"]["full"]}
    out = []
    for r in d["per_image"].get(METHOD, []):
        f = full[r["path"]]
        pre_f, pre_p = f["prefill_ms"]["median"], r["prefill_ms"]["median"]
        out.append({
            "image": f"{Path(r['path']).parent.name}/{Path(r['path']).name}",
            "grid": f"{r['grid_thw'][1] // 2}x{r['grid_thw'][2] // 2}",
            "retain": r["retain"],
            "vit_full": f["vit_ms"]["median"], "vit_pruned": r["vit_ms"]["median"],
            "prefill_full": pre_f, "prefill_pruned": pre_p,
            "speedup": pre_f / pre_p,
            "token_ratio": f["llm_tokens"] / r["llm_tokens"],
            "flops_speedup": f["flops_prefill"] / r["flops_prefill"],
            "overhead": r["plan_ms"]["median"] / pre_p,
        })
    return out


def render(out: Path) -> str:
    lines = []
    for label in LABELS:
        p = out / f"{label}.json"
        if not p.is_file():
            lines.append(f"**{label}**: no result ({p} missing)\n")
            continue
        d = json.loads(p.read_text())
        m = d["machine"]
        depth = "REDUCED DEPTH" if d["reduced_depth"] else "full depth"
        lines.append(f"**{d['shape']}** ({label}; {depth}, {d['dtype']} on {d['device']}, {m['cpu']}, {m['threads']} "
                     f"threads, {m['date']}; {d['config']['warmup']} warm-up + {d['config']['repeats']} timed passes, "
                     f"medians; 1-min load {m['loadavg_start'][0]:.1f} -> {m['loadavg_end'][0]:.1f})\n")
        lines.append("| image | grid (tokens) | retain | ViT ms full → pruned | prefill ms full → pruned | speedup | "
                     "LLM token ratio | FLOPs speedup | speedup / FLOPs speedup | select+bookkeeping |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        rs = rows(d)
        for r in rs:
            lines.append(f"| {r['image']} | {r['grid']} | {r['retain']:.1%} | {r['vit_full']:.0f} → {r['vit_pruned']:.0f} | "
                         f"{r['prefill_full']:.0f} → {r['prefill_pruned']:.0f} | {r['speedup']:.2f}× | "
                         f"{r['token_ratio']:.2f}× | {r['flops_speedup']:.2f}× | {r['speedup'] / r['flops_speedup']:.2f} | "
                         f"{r['overhead']:.2%} |")
        s = next(x for x in d["methods"] if x["method"] == METHOD)
        if rs:
            lines.append(
                f"\nAll images together: retain {s['retain']:.1%}, prefill {s['prefill_speedup']:.2f}× faster against "
                f"{1 / s['flops_ratio']:.2f}× fewer FLOPs (ratio {s['speedup_efficiency']:.2f}); per image the ratio "
                f"speedup / FLOPs speedup spans {min(r['speedup'] / r['flops_speedup'] for r in rs):.2f}–"
                f"{max(r['speedup'] / r['flops_speedup'] for r in rs):.2f} (median "
                f"{statistics.median(r['speedup'] / r['flops_speedup'] for r in rs):.2f}); selection + bookkeeping at "
                f"most {max(r['overhead'] for r in rs):.2%} of a pruned prefill.\n")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/bench", help="folder of the bench JSON files")
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    ap.add_argument("--rerun", action="store_true", help="run both shapes even if their JSON exists")
    ap.add_argument("--quick", action="store_true", help="2 LLM / 2 ViT layers (REDUCED DEPTH), into --out/quick")
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out) / "quick" if a.quick else Path(a.out)
    failed = []
    if not a.render_only:
        todo = [lb for lb in LABELS if a.rerun or a.quick or not (out / f"{lb}.json").is_file()]
        if todo:
            failed = bench_table.run(out, Path(a.corpus), a.quick, todo)
    print(render(out))
    if failed:
        sys.exit(f"failed runs: {', '.join(failed)}")


if __name__ == "__main__":
    main()

"""Reproduce the ``vlprune bench`` table of docs/benchmarks.md (section "Bench: measured vs analytic").

Runs ``vlprune bench`` (the CLI, one subprocess per run so each gets a fresh process and memory
counter) on corpus screenshots and pages for the Qwen3-VL-2B, Qwen2-VL-2B and Qwen2.5-VL-3B shapes at full depth,
writes each run's JSON under ``--out`` and prints the markdown tables:

    PYTHONPATH=. python benchmarks/bench_table.py                   # the recorded runs (~50 min on 2 idle CPU cores)
    PYTHONPATH=. python benchmarks/bench_table.py --render-only     # re-print from the saved JSON
    PYTHONPATH=. python benchmarks/bench_table.py --quick           # 2-layer smoke run (REDUCED, labelled)

The corpus is read in place (``--corpus``, default /work/shared/corpus, its manifest.csv).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: Corpus images: screenshots (web, desktop, mobile) and document pages, two per category for the
#: native run, the first of each pair for the ~1 MP runs.
IMAGES = ["web/py311_library_itertools.png", "web/flask_index.png", "doc/gnuplot_p027_text.png",
          "doc/gnuplot_p038_tables.png", "desktop/writer_valgrind_intro.png", "desktop/xterm_ls_python.png",
          "mobile/py311_library_functions.png", "mobile/flask_quickstart.png"]
ONE_PER_CATEGORY = IMAGES[::2]

#: (label, shape, extra CLI args, manifest files). "native" is the family's processor default; the
#: Qwen2-VL / Qwen2.5-VL runs cap images at ~1 MP (their default max_pixels is 12.8 MP, minutes per
#: prefill on 2 cores). benchmarks/models.py renders the qwen3-vl-2b@native and qwen2.5-vl-3b@1MP runs.
RUNS = [
    ("qwen3-vl-2b@native", "qwen3-vl-2b", ["--method", "pixelprune"], IMAGES),
    ("qwen3-vl-2b@1MP", "qwen3-vl-2b", ["--max-pixels", "1048576", "--method", "pixelprune", "--method", "random",
                                        "--method", "conncomp", "--repeats", "4"], ONE_PER_CATEGORY),
    ("qwen2-vl-2b@1MP", "qwen2-vl-2b", ["--max-pixels", "1003520", "--method", "pixelprune", "--method", "random"],
     ONE_PER_CATEGORY),
    ("qwen2.5-vl-3b@1MP", "qwen2.5-vl-3b", ["--max-pixels", "1003520", "--method", "pixelprune"], ONE_PER_CATEGORY),
    # the staged runtime: FastV (K = 2, retain 0.5) inside the LLM, alone and after PixelPrune
    ("qwen2-vl-2b@1MP-fastv", "qwen2-vl-2b", ["--max-pixels", "1003520", "--method", "fastv", "--method", "pixelprune",
                                              "--method", "pixelprune+fastv", "--repeats", "3"], ONE_PER_CATEGORY),
    # the baselines of docs/baselines.md at retain 0.5 (post-ViT: CDPruner, VisionZip, VisPruner; in-LLM, K = 2:
    # DART, MoB), each against the same unmodified model, with the time of the selection itself; one web
    # screenshot (six pipelines x 3 passes of a ~40 s full-depth prefill on 2 cores: ~20 min)
    ("qwen2-vl-2b@1MP-baselines", "qwen2-vl-2b",
     ["--max-pixels", "1003520", *(a for m in ("cdpruner", "visionzip", "vispruner", "dart", "mob") for a in ("--method", m))],
     IMAGES[:1]),
]
COMMON = ["--dtype", "bf16", "--device", "cpu", "--threads", "2", "--warmup", "1", "--repeats", "2",
          "--decode-tokens", "4", "--onednn-cache", "8192"]


def _max_pixels(d: dict):
    """max_pixels of a bench JSON (newer runs keep the image options under config.image)."""
    c = d["config"]
    return c["max_pixels"] if "max_pixels" in c else (c.get("image") or {}).get("max_pixels")


def run(out: Path, corpus: Path, quick: bool, only: list[str] | None) -> list[str]:
    """One ``vlprune bench`` subprocess per run; a failed run is reported and the next one goes on."""
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for label, shape, extra, files in RUNS:
        if only and label not in only:
            continue
        images = [str(corpus / f) for f in files]
        for im in images:
            if not Path(im).is_file():
                sys.exit(f"missing corpus image {im}")
        args = [sys.executable, "-m", "vlprune", "bench", "--shape", shape, *COMMON, *extra,
                "--json", str(out / f"{label}.json"), "--plot", str(out / f"{label}.png"), *images]
        if quick:
            args += ["--layers", "2", "--vision-layers", "2"]
        print("$", " ".join(args[1:]), flush=True)
        if subprocess.run(args).returncode != 0:
            failed.append(label)
    return failed


def _plan(s: dict) -> str:
    p = s.get("plan_ms")
    return "-" if not p or p["median"] is None else f"{p['median']:.0f}"


def _select(s: dict) -> str:
    """Median ms of the selection itself (every stage, scoring included) and its share of the prefill."""
    p, share = s.get("select_ms"), s.get("select_ms_share")
    if not p or p["median"] is None or share is None:
        return "-"
    return f"{p['median']:.0f} ({share:.2%})"


def _best(s: dict, full: dict) -> str:
    """Speedup of the fastest repeats (interference only adds time) and its efficiency."""
    sp = full["prefill_ms"]["min"] / s["prefill_ms"]["min"]
    return f"{sp:.2f}x ({sp * s['flops_ratio']:.2f})"


def two_rate_fit(d: dict) -> str:
    """Descriptive check of *why* time and FLOPs part: fit ``prefill ms = a * attention FLOPs + b * other
    FLOPs`` (least squares over every image x method cell of one run, medians) and, leaving each image
    out in turn, predict its speedup from the other images' fit. Attention FLOPs are the ViT's and the
    LLM's score/value products (dense, as vlprune.flops counts them); other = everything else."""
    import numpy as np

    from vlprune.flops import ImageTokens, Prompt, prefill_flops
    from vlprune.shapes import build_config

    cfg = build_config(d["shape"], d["config"]["layers"], d["config"]["vision_layers"])
    cells = []  # (image, method, attention flops, other flops, ms)
    for meth, rows in d["per_image"].items():
        for r in rows:
            kept = None if meth == "full" else r["kept_tokens"]
            f = prefill_flops(cfg, Prompt([ImageTokens(tuple(r["grid_thw"]), kept)], r["prompt_tokens"] - r["image_tokens"]))
            attn = f.vit_attn + f.llm_attn
            cells.append((r["path"], meth, attn, f.total - attn, r["prefill_ms"]["median"]))
    if len({c[0] for c in cells}) < 3:
        return ""

    def fit(cs):
        a = np.array([[c[2], c[3]] for c in cs], float)
        return np.linalg.lstsq(a, np.array([c[4] for c in cs], float), rcond=None)[0]

    ca, co = fit(cells)
    ratios = []
    for img in sorted({c[0] for c in cells}):
        k_attn, k_other = fit([c for c in cells if c[0] != img])
        mine = {c[1]: c for c in cells if c[0] == img}
        for meth, c in mine.items():
            if meth == "full":
                continue
            f = mine["full"]
            pred = (k_attn * f[2] + k_other * f[3]) / (k_attn * c[2] + k_other * c[3])
            ratios.append((f[4] / c[4]) / pred)
    rate = lambda k: f"{1e-9 / k:.2f}" if k > 0 else "not resolved (negative fit)"  # FLOPs per ms -> TFLOP/s
    return (f"Two-rate time model (least squares over the {len(cells)} cells): attention runs at {rate(ca)} TFLOP/s, "
            f"everything else at {rate(co)} TFLOP/s. Predicting each image's speedup from the other images' fit, "
            f"measured / predicted spans {min(ratios):.2f}-{max(ratios):.2f} (median {sorted(ratios)[len(ratios) // 2]:.2f}).\n")


def render(out: Path) -> str:
    lines = []
    for label, *_ in RUNS:
        p = out / f"{label}.json"
        if not p.is_file():
            continue
        d = json.loads(p.read_text())
        depth = "REDUCED DEPTH" if d["reduced_depth"] else "full depth"
        m = d["machine"]
        load = m.get("loadavg_start"), m.get("loadavg_end")
        load = f"; 1-min load {load[0][0]:.1f} -> {load[1][0]:.1f}" if load[0] else ""
        lines.append(f"**{label}** ({d['shape']}, {depth}, {d['dtype']}, {m['cpu']}, {m['threads']} threads, "
                     f"{m['date']}; {d['config']['repeats']} repeat(s), {d['config']['warmup']} warm-up{load}; "
                     f"max_pixels {_max_pixels(d) or 'family default'})\n")
        lines.append("| method | kept / tokens | retain | TFLOPs | FLOPs ratio | ViT ms | select+plan ms | prefill ms [min-max] | "
                     "measured prefill ratio | speedup | speedup / (1/FLOPs ratio) | best-of speedup (eff) | decode tok/s | "
                     "KV MiB (meas./analytic) | selection ms (of prefill) |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        full_s = d["methods"][0]
        for s in d["methods"]:
            eff = s.get("speedup_efficiency")
            lines.append(
                f"| {s['method']} | {s['kept_tokens']} / {s['image_tokens']} | {s['retain']:.1%} | "
                f"{s['flops_prefill'] / 1e12:.2f} | {s['flops_ratio']:.3f} | {s['vit_ms']['median']:.0f} | "
                f"{_plan(s)} | {s['prefill_ms']['median']:.0f} [{s['prefill_ms']['min']:.0f}-{s['prefill_ms']['max']:.0f}] | "
                f"{s['prefill_ratio']:.3f} | {s['prefill_speedup']:.2f}x | "
                f"{eff:.2f} | {_best(s, full_s)} | {s['decode_tok_s']['median']:.2f} | "
                f"{s['kv_bytes_measured'] / 2**20:.1f} / {s['kv_bytes_analytic'] / 2**20:.1f} | {_select(s)} |"
            )
        lines.append("")
        lines.append("Per image (speedup against retention, like for like):\n")
        lines.append("| image | method | retain | FLOPs ratio | prefill ms median (full -> method) | speedup | eff | "
                     "best-of ms (full -> method) | best-of speedup | eff |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        full = {r["path"]: r for r in d["per_image"]["full"]}
        for meth, rows in d["per_image"].items():
            if meth == "full":
                continue
            for r in rows:
                f = full[r["path"]]
                ratio = r["flops_prefill"] / f["flops_prefill"]
                sp = f["prefill_ms"]["median"] / r["prefill_ms"]["median"]
                lines.append(f"| {Path(r['path']).parent.name}/{Path(r['path']).name} | {meth} | {r['retain']:.1%} | "
                             f"{ratio:.3f} | {f['prefill_ms']['median']:.0f} -> {r['prefill_ms']['median']:.0f} | "
                             f"{sp:.2f}x | {sp * ratio:.2f} | {f['prefill_ms']['min']:.0f} -> {r['prefill_ms']['min']:.0f} | "
                             f"{f['prefill_ms']['min'] / r['prefill_ms']['min']:.2f}x | "
                             f"{f['prefill_ms']['min'] / r['prefill_ms']['min'] * ratio:.2f} |")
        lines.append("")
        lines.append(two_rate_fit(d))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/bench", help="folder for the JSON/PNG of each run")
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpus"),
                    help="corpus folder with manifest.csv (default: ../shared/corpus beside the repo)")
    ap.add_argument("--quick", action="store_true", help="2 LLM / 2 ViT layers (REDUCED DEPTH, labelled)")
    ap.add_argument("--only", action="append", choices=[r[0] for r in RUNS], help="run only this label (repeatable)")
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    failed = [] if a.render_only else run(out, Path(a.corpus), a.quick, a.only)
    print(render(out))
    if failed:
        sys.exit(f"failed runs: {', '.join(failed)}")


if __name__ == "__main__":
    main()

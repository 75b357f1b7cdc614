"""Every GPU measurement of docs/benchmarks.md in one run: time to first token (CUDA events) of the
unmodified model vs PixelPrune vs FastV vs PixelPrune + FastV, with sdpa and FlashAttention-2.

Shapes: Qwen3-VL-2B and Qwen2-VL-2B (random weights, bf16, full depth; speed does not depend on weight
values), over a few corpus screenshots and pages at the processor's default size (``--corpus``, default
the corpus beside the repository; the built-in samples of ``vlprune.samples`` when it is absent). Each
(shape, attention) cell is one ``vlprune.bench.run_bench`` call: 1 warm-up pass, then 3 timed passes
over every method and image (medians), 8 greedy decode steps after each prefill, and per method the
tokens after every stage, ViT / in-LLM scoring ms, peak memory, measured and analytic KV cache and the
analytic FLOPs of what ran. ``flash_attention_2`` runs when the ``flash_attn`` package works here;
otherwise the cell is recorded as unavailable, with the reason.

    python benchmarks/gpu.py                  # one CUDA GPU; sized for < 8 min on an H200 (not yet timed)
    python benchmarks/gpu.py --dry-run        # the same code path on CPU: tiny shapes, one image, one pass

Writes ``<out>/gpu.json`` (machine, every cell: status and per-method figures), ``<out>/gpu.md`` (the
table) and each cell's full ``vlprune bench`` JSON (``<out>/<shape>_<attn>.json``). When the time budget
(``--budget-s``) runs out, the running cell stops after its current pass, later cells are recorded as
skipped, and the table is written with what ran (marked partial).

Status: the CUDA path has NOT been run yet (no GPU was available while it was written); the dry run is
part of the test suite (tests/test_gpu_script.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from vlprune.bench import (  # noqa: E402
    BenchConfig,
    flash_attention_status,
    machine_info,
    register_shape,
    run_bench,
    write_json,
)
from vlprune.images import ImageOptions  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
SHAPES = ("qwen3-vl-2b", "qwen2-vl-2b")
DRY_SHAPES = ("qwen3-vl-tiny", "qwen2-vl-tiny")  # the families' test architectures (vlprune.families)
METHODS = ("pixelprune", "fastv", "pixelprune+fastv")
ATTNS = ("sdpa", "flash_attention_2")
CATEGORIES = ("web", "doc", "mobile")  # one corpus image of each
#: seconds a cell needs at least (model build + warm-up); with less budget left it is skipped
MIN_CELL_S = 30.0


def pick_images(corpus: Path, n: int, out: Path) -> list[str]:
    """The first manifest image of each of :data:`CATEGORIES` (then more of them, in manifest order) up
    to ``n``; without a corpus, the built-in samples written to ``<out>/samples``."""
    manifest = corpus / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        first = [next(r["file"] for r in rows if r["category"] == c) for c in CATEGORIES
                 if any(r["category"] == c for r in rows)]
        files = list(dict.fromkeys(first + [r["file"] for r in rows if r["category"] in CATEGORIES]))
        return [str(corpus / f) for f in files[:n]]
    from vlprune.samples import make_samples

    (out / "samples").mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img in list(make_samples().items())[:n]:
        img.save(out / "samples" / f"{name}.png")
        paths.append(str(out / "samples" / f"{name}.png"))
    return paths


def _median(s: dict):
    return s["median"] if s and s.get("n") else None


def cell_rows(d: dict) -> list[dict]:
    """Per-method figures of one ``vlprune bench`` result (its ``to_dict()``)."""
    out = []
    for s in d["methods"]:
        out.append({
            "method": s["method"], "pipeline": s["pipeline"], "attn_implementation": s["attn_implementation"],
            "tokens_by_stage": s["tokens_by_stage"], "image_tokens": s["image_tokens"],
            "kept_tokens": s["kept_tokens"], "retain": s["retain"], "llm_layer": s["llm_layer"],
            "ttft_ms": _median(s["prefill_ms"]), "ttft_ms_min": s["prefill_ms"]["min"],
            "ttft_ms_max": s["prefill_ms"]["max"], "passes": s["prefill_ms"]["n"],
            "speedup": s["prefill_speedup"], "flops_speedup": 1 / s["flops_ratio"] if s["flops_ratio"] else None,
            "vit_ms": _median(s["vit_ms"]), "llm_ms": _median(s["llm_ms"]), "llm_ms_share": s["llm_ms_share"],
            "decode_tok_s": _median(s["decode_tok_s"]), "peak_mem_mb": _median(s["peak_mem_mb"]),
            "kv_mib_measured": s["kv_bytes_measured"] / 2**20, "kv_mib_analytic": s["kv_bytes_analytic"] / 2**20,
        })
    return out


def _f(x, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# GPU benchmark{' (DRY RUN: CPU, tiny shapes; not a measurement)' if report['dry_run'] else ''}", "",
             f"{m.get('gpu') or m['cpu']}; torch {m['torch']}, transformers {m.get('transformers')}, "
             f"CUDA {m.get('cuda')}, flash_attn {m.get('flash_attn')}; {m['date']}; random weights, "
             f"{report['dtype']}, full depth; {report['warmup']} warm-up + {report['repeats']} timed passes, medians; "
             f"{len(report['images'])} image(s), times summed over them"
             f"{'; PARTIAL: the time budget ran out' if report['partial'] else ''}.", "",
             "| shape | attention | method | tokens by stage | retain | TTFT ms [min–max] | speedup | FLOPs speedup "
             "| ViT ms | in-LLM ms (share) | decode tok/s | peak MiB | KV MiB (meas./analytic) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in report["cells"]:
        if cell["status"] not in ("done", "partial"):
            lines.append(f"| {cell['shape']} | {cell['attn']} | {cell['status']}: {cell['reason']} |"
                         + " |" * 10)
            continue
        for r in cell["methods"]:
            stages = " → ".join(str(v) for v in r["tokens_by_stage"].values())
            llm = "—" if r["llm_layer"] is None else f"{_f(r['llm_ms'], '.2f')} ({_f(r['llm_ms_share'], '.1%')})"
            lines.append(
                f"| {cell['shape']} | {r['attn_implementation']}{' (partial)' if cell['status'] == 'partial' else ''} "
                f"| {r['method']} | {stages} | {r['retain']:.1%} | {_f(r['ttft_ms'], '.1f')} "
                f"[{_f(r['ttft_ms_min'], '.1f')}–{_f(r['ttft_ms_max'], '.1f')}] | {_f(r['speedup'], '.2f')}× | "
                f"{_f(r['flops_speedup'], '.2f')}× | {_f(r['vit_ms'], '.1f')} | {llm} | "
                f"{_f(r['decode_tok_s'], '.1f')} | {_f(r['peak_mem_mb'], '.0f')} | "
                f"{r['kv_mib_measured']:.1f} / {r['kv_mib_analytic']:.1f} |")
    lines += ["", "TTFT = one prefill producing the first token (CUDA events on a GPU); speedup = full TTFT / method "
              "TTFT; FLOPs speedup = analytic (vlprune.flops of what ran); in-LLM ms = FastV's scoring + selection "
              "(host timer) and its share of that method's TTFT; tokens by stage: raw → after each stage that ran.",
              f"Images: {', '.join(report['images'])}"]
    return "\n".join(lines) + "\n"


def _release(device: str) -> None:
    """Hand the last cell's model memory back before the next cell measures free memory."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def run_cell(cell: dict, cfg: BenchConfig, out: Path) -> bool:
    """One (shape, attention) cell through ``run_bench``; fills ``cell``, returns whether it ran partial."""
    try:
        res = run_bench(cfg)
    except (RuntimeError, ValueError) as exc:  # e.g. out of memory: record it, go on with the next cell
        cell.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        print(f"  failed: {exc}", file=sys.stderr, flush=True)
        return False
    finally:
        _release(cfg.device)
    path = out / f"{cfg.shape}_{cfg.attn}.json"
    write_json(res, path)
    cell.update(status="partial" if res.partial else "done", reason="; ".join(res.notes), json=str(path),
                build_s=res.build_s, methods=cell_rows(res.to_dict()))
    return res.partial


def run(args) -> dict:
    """Every (shape, attention) cell within the budget; returns the report written to ``gpu.json``."""
    import torch

    t0 = time.monotonic()
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py: no CUDA GPU on this machine; run it on one, or use --dry-run (CPU, tiny shapes)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device, dtype = ("cpu", "fp32") if args.dry_run else ("cuda", "bf16")
    shapes = args.shapes or (DRY_SHAPES if args.dry_run else SHAPES)
    if args.dry_run:
        from vlprune.families import get_family

        for fam in ("qwen3-vl", "qwen2-vl"):
            register_shape(get_family(fam).tiny)
    warmup, repeats = (0, 1) if args.dry_run else (args.warmup, args.repeats)
    images = pick_images(Path(args.corpus), 1 if args.dry_run else args.images, out)
    machine = machine_info(device, torch.get_num_threads())
    print(f"machine: {machine.get('gpu') or machine['cpu']}; torch {machine['torch']}, transformers "
          f"{machine.get('transformers')}, CUDA {machine.get('cuda')}, flash_attn {machine.get('flash_attn')}",
          flush=True)
    report = {"dry_run": args.dry_run, "device": device, "dtype": dtype, "machine": machine, "images": images,
              "methods": ["full", *args.methods], "warmup": warmup, "repeats": repeats,
              "decode_tokens": args.decode_tokens, "budget_s": args.budget_s, "cells": [], "partial": False}
    for shape in shapes:
        for attn in ATTNS:
            cell = {"shape": shape, "attn": attn}
            report["cells"].append(cell)
            why = flash_attention_status(device, dtype) if attn == "flash_attention_2" else None
            left = args.budget_s - (time.monotonic() - t0)
            if why is not None:
                cell.update(status="unavailable", reason=why)
            elif left <= (0 if args.dry_run else MIN_CELL_S):
                cell.update(status="skipped", reason=f"time budget: {max(0.0, left):.0f} s left")
                report["partial"] = True
            else:
                print(f"{shape} / {attn}: {len(images)} image(s), {warmup} warm-up + {repeats} timed pass(es), "
                      f"{left:.0f} s of budget left", flush=True)
                cfg = BenchConfig(images=images, shape=shape, family=None, methods=list(args.methods), dtype=dtype,
                                  device=device, warmup=warmup, repeats=repeats, decode_tokens=args.decode_tokens,
                                  attn=attn, progress=False, onednn_cache=8192 if args.dry_run else None,
                                  budget_s=left, image=ImageOptions(max_pixels=args.max_pixels))
                report["partial"] |= run_cell(cell, cfg, out)
    report["elapsed_s"] = time.monotonic() - t0
    (out / "gpu.json").write_text(json.dumps(report, indent=1, default=float))
    table = markdown(report)
    (out / "gpu.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"wrote {out / 'gpu.json'} and {out / 'gpu.md'} ({report['elapsed_s']:.0f} s)")
    return report


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu"), help="output folder")
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="corpus folder with manifest.csv")
    ap.add_argument("--images", type=int, default=3, help="corpus images (one per category first; default 3)")
    ap.add_argument("--shapes", action="append", default=None, help="shape (repeatable; default: the 2B shapes)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), help="pipelines besides full")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decode-tokens", type=int, default=8)
    ap.add_argument("--max-pixels", type=int, default=None, help="processor max_pixels (default: the family's)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop cleanly after this many seconds")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, one image, one pass")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    main()

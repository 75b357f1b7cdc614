"""Serving benchmark of the vLLM plug-in: offline throughput and time to first token, unpruned vs
PixelPrune (tau = 0 and 0.05) vs Random at PixelPrune's budget, on real-size architectures.

Per shape (default Qwen2-VL-2B and Qwen3-VL-2B, full depth, ``load_format="dummy"`` random weights) one
plug-in engine serves every method, chosen per request (``mm_processor_kwargs={"vlprune": ...}``; the
unpruned run is ``full``, which takes vLLM's stock code path). Requests: corpus screenshots and
document pages (``--corpus``; built-in samples without it) with one question each, all submitted at
once (``LLM.generate``), after one warm-up request on an image outside the batch. Measured: wall time
of the batch (requests/s, output tokens/s), each request's time to first token (vLLM's request
stats; p50, p90), the selector's time in this process (where the API-side processor runs) as a share
of the mean request latency; counted: visual tokens kept and the analytic FLOPs of the same requests
(:mod:`vlprune.flops`: prefill plus the decode steps, with the kept blocks the plug-in's selector
chooses on the checkpoint processor's pixels).

    python benchmarks/vllm_serve.py                    # CPU (vLLM's CPU build, scripts/vllm-env)
    python benchmarks/vllm_serve.py --device cuda      # a GPU with vLLM's CUDA build
    python benchmarks/vllm_serve.py --dry-run          # the plan (requests, tokens, FLOPs); no engine

Writes ``<out>/vllm_serve.json`` and ``<out>/vllm_serve.md``. Targets (docs/benchmarks.md): requests/s
ratio >= 0.9 x the FLOPs ratio; >= 1.6x requests/s where retention <= 52 %; selector <= 2 % of request
latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
SHAPES = ("qwen2-vl-2b", "qwen3-vl-2b")
#: (label, per-request plan)
METHODS = (
    ("unpruned", {"method": "full"}),
    ("pixelprune tau=0", {"method": "pixelprune"}),
    ("pixelprune tau=0.05", {"method": "pixelprune", "pixelprune.tau": 0.05}),
    ("random (PixelPrune's budget)", {"method": "random"}),
)
QUESTION = "Read the page and summarise what it shows."


def pick_images(corpus: Path, n: int) -> list[Path]:
    """Screenshots and document pages in turn (web, doc, mobile, desktop), manifest order."""
    import csv

    manifest = corpus / "manifest.csv"
    if not manifest.is_file():
        return []
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_cat: dict[str, list[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["file"])
    order, i = [], 0
    cats = [c for c in ("web", "doc", "mobile", "desktop") if c in by_cat]
    while len(order) < n + 1 and any(by_cat[c] for c in cats):
        c = cats[i % len(cats)]
        if by_cat[c]:
            order.append(corpus / by_cat[c].pop(0))
        i += 1
    return order


def load_images(args):
    from PIL import Image

    paths = pick_images(Path(args.corpus), args.requests)
    if paths:
        images = [Image.open(p).convert("RGB") for p in paths]
        names = [str(p.relative_to(args.corpus)) for p in paths]
    else:  # no corpus: the built-in samples
        from vlprune.samples import make_samples

        samples = make_samples()
        names = sorted(samples)
        images = [samples[k] for k in names]
        while len(images) < args.requests + 1:
            images, names = images + images, names + names
    return images[0], names[0], images[1:args.requests + 1], names[1:args.requests + 1]


def plan_requests(ckpt: Path, shape: str, images: list, max_tokens: int) -> dict:
    """Per method: each request's kept blocks (the plug-in's selector on the checkpoint processor's
    pixels) and the analytic FLOPs of prefill + ``max_tokens`` decode steps."""
    from transformers import AutoConfig, AutoProcessor

    from vlprune import flops
    from vlprune.families import get_family
    from vlprune.serving.plan import ServingPlan
    from vlprune.serving.select import keep_masks, select_rows

    config = AutoConfig.from_pretrained(str(ckpt))
    proc = AutoProcessor.from_pretrained(str(ckpt))
    spec = get_family(config.model_type)
    ip = proc.image_processor
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
                                    add_generation_prompt=True)
    batches = [proc(text=[text], images=[im], return_tensors="pt") for im in images]  # the same for every method
    out = {}
    for label, payload in METHODS:
        method = ServingPlan.from_payload(payload).pipeline().get("pre_vit")
        rows = []
        for batch in batches:
            n_image = int((batch["input_ids"] == config.image_token_id).sum())
            sel = select_rows(batch["pixel_values"], batch["image_grid_thw"], method, spec, ip.image_mean, ip.image_std)
            (mask,) = keep_masks(sel.keep, sel.image_grid_thw, spec.merge_size)
            grid = tuple(int(x) for x in sel.image_grid_thw[0])
            prompt = flops.Prompt([flops.ImageTokens(grid, kept=mask.nonzero()[0])],
                                  int(batch["input_ids"].shape[1]) - n_image)
            est = flops.estimate(config, prompt, decode_tokens=max_tokens)
            rows.append({"tokens": n_image, "kept": int(mask.sum()), "flops": est.prefill.total + est.decode.total,
                         "prefill_flops": est.prefill.total})
        out[label] = rows
    return {"shape": shape, "text": text, "requests": out}


def write_checkpoint(out: Path, shape: str, max_pixels: int, dtype: str) -> Path:
    from vlprune.serving.checkpoint import write_checkpoint as write
    from vlprune.shapes import get_shape

    path = out / f"ckpt-{shape}"
    if not (path / "config.json").is_file():
        write(path, get_shape(shape).family, shape, weights=False, max_pixels=max_pixels, dtype=dtype)
    return path


def run_shape(args, shape: str, plan: dict, ckpt: Path, warm, images) -> dict:
    from vllm import LLM, SamplingParams

    import vlprune.serving as vs
    from vlprune.serving.processor import STATS

    extra = dict(enforce_eager=True) if args.device == "cpu" else {}
    memory = dict(kv_cache_memory_bytes=args.kv_cache_gib * 2**30) if args.device == "cpu" else \
        dict(gpu_memory_utilization=0.85)
    t0 = time.perf_counter()
    llm = LLM(model=str(ckpt), load_format="dummy", dtype=args.dtype, max_model_len=args.max_model_len,
              limit_mm_per_prompt={"image": 1, "video": 0}, disable_log_stats=False, seed=0, **memory, **extra,
              **vs.vllm_kwargs("pixelprune"))
    start_s = time.perf_counter() - t0
    params = SamplingParams(max_tokens=args.max_tokens, min_tokens=args.max_tokens, temperature=0)
    result = {"shape": shape, "engine_start_s": round(start_s, 1), "methods": {}}
    text = plan["text"]
    try:
        for label, payload in METHODS:
            kw = {"mm_processor_kwargs": {"vlprune": payload}}
            llm.generate([{"prompt": text, "multi_modal_data": {"image": warm}, **kw}], params, use_tqdm=False)
            STATS.reset()
            t1 = time.perf_counter()
            outs = llm.generate([{"prompt": text, "multi_modal_data": {"image": im}, **kw} for im in images], params,
                                use_tqdm=False)
            wall = time.perf_counter() - t1
            ttft = sorted(o.metrics.first_token_latency for o in outs if o.metrics is not None)
            # per request: time to the first token (front-end clock) + decode time (engine clock)
            e2e = [o.metrics.first_token_latency + (o.metrics.last_token_ts - o.metrics.first_token_ts)
                   for o in outs if o.metrics is not None and o.metrics.last_token_ts]
            out_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
            image_id = int(llm.llm_engine.model_config.hf_config.image_token_id)
            kept = [sum(1 for t in o.prompt_token_ids if t == image_id) for o in outs]
            rows = plan["requests"][label]
            mean_latency = statistics.mean(e2e) if e2e else wall
            result["methods"][label] = {
                "wall_s": wall, "requests_per_s": len(outs) / wall, "output_tokens_per_s": out_tokens / wall,
                "ttft_p50_s": _pct(ttft, 50), "ttft_p90_s": _pct(ttft, 90),
                "visual_tokens": sum(r["tokens"] for r in rows), "kept": sum(kept),
                "kept_planned": sum(r["kept"] for r in rows), "flops": sum(r["flops"] for r in rows),
                "mean_latency_s": mean_latency, "selector_ms_per_request": STATS.ms / max(1, len(outs)),
                "selector_share_of_latency": (STATS.ms / 1e3 / max(1, len(outs))) / mean_latency,
            }
            print(f"{shape} {label}: {len(outs) / wall:.3f} req/s, kept {sum(kept)}/{result['methods'][label]['visual_tokens']}",
                  file=sys.stderr, flush=True)
    finally:
        llm.llm_engine.engine_core.shutdown()
    return result


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def table(report: dict) -> str:
    lines = [f"vLLM serving benchmark ({report['device']}, {report['dtype']}, {report['requests']} requests, "
             f"{report['max_tokens']} output tokens each, max_pixels {report['max_pixels']}; {report['date']})", ""]
    for shape in report["shapes"]:
        base = shape["methods"].get("unpruned")
        lines += [f"**{shape['shape']}** (engine start {shape.get('engine_start_s', '—')} s)", "",
                  "| method | visual tokens kept | req/s | speed-up | FLOPs ratio | speed-up / FLOPs ratio | "
                  "output tok/s | TTFT p50 / p90 (s) | selector share |", "|---|---|---|---|---|---|---|---|---|"]
        for label, m in shape["methods"].items():
            keep = m["kept"] / m["visual_tokens"] if m["visual_tokens"] else float("nan")
            if "requests_per_s" not in m:
                lines.append(f"| {label} | {m['kept']} ({keep:.1%}) | — | — | "
                             f"{base['flops'] / m['flops']:.2f}x | — | — | — | — |")
                continue
            su = m["requests_per_s"] / base["requests_per_s"]
            fr = base["flops"] / m["flops"]
            lines.append(f"| {label} | {m['kept']} ({keep:.1%}) | {m['requests_per_s']:.3f} | {su:.2f}x | {fr:.2f}x | "
                         f"{su / fr:.2f} | {m['output_tokens_per_s']:.2f} | {m['ttft_p50_s']:.1f} / {m['ttft_p90_s']:.1f} | "
                         f"{m['selector_share_of_latency']:.2%} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES))
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--max-pixels", type=int, default=1_003_520, help="the checkpoints' processor bound")
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 (fp32 on a CPU without bf16 matrix units)")
    ap.add_argument("--kv-cache-gib", type=float, default=2.0, help="CPU KV cache size")
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vllm_serve"))
    ap.add_argument("--dry-run", action="store_true", help="write the checkpoints and the plan; start no engine")
    args = ap.parse_args(argv)
    from vlprune.bench.config import DTYPES
    from vlprune.bench.dtype import default_dtype

    if args.dtype is None:
        short, why = default_dtype(args.device)
        args.dtype = DTYPES[short]
        print(why, file=sys.stderr)
    args.dtype = DTYPES.get(args.dtype, args.dtype)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warm, warm_name, images, names = load_images(args)
    import torch

    from vlprune.bench import machine_info

    report = {"device": args.device, "dtype": args.dtype, "requests": len(images), "images": names,
              "max_tokens": args.max_tokens, "max_pixels": args.max_pixels, "dry_run": args.dry_run,
              "date": time.strftime("%Y-%m-%d"), "machine": machine_info("cpu" if args.dry_run else args.device,
                                                                        torch.get_num_threads()),
              "shapes": []}
    for shape in args.shapes:
        ckpt = write_checkpoint(out, shape, args.max_pixels, args.dtype)
        plan = plan_requests(ckpt, shape, images, args.max_tokens)
        if args.dry_run:
            report["shapes"].append({"shape": shape, "methods": {
                label: {"visual_tokens": sum(r["tokens"] for r in rows), "kept": sum(r["kept"] for r in rows),
                        "flops": sum(r["flops"] for r in rows)} for label, rows in plan["requests"].items()}})
            continue
        report["shapes"].append(run_shape(args, shape, plan, ckpt, warm, images))
        (out / "vllm_serve.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "vllm_serve.json").write_text(json.dumps(report, indent=1, default=float))
    (out / "vllm_serve.md").write_text(table(report))
    print(table(report))
    return report


if __name__ == "__main__":
    main()

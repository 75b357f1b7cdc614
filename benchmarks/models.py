"""Full vs PixelPrune-pruned prefill on real-shape Qwen-VL models with random weights (issue 3 item 7).

Builds Qwen3-VL-2B- and Qwen2.5-VL-3B-shaped models from config (random weights, bf16 on CPU by
default; reduced depth by default so a full run fits in ~10 minutes on 2 CPU cores: every layer of a
stack has the same shape, so per-layer cost and the pruned/full ratios carry over to full depth),
feeds corpus screenshots/pages through the real offline processor, and reports per image: retain
ratio, ViT ms, prefill ms (ViT + LLM, ``logits_to_keep=1``), speedup next to the LLM token ratio and
the analytic FLOPs ratio (``vlprune.flops``), and the selection + bookkeeping share of the pruned
prefill. On CUDA it uses CUDA events and also reports TTFT (``generate(max_new_tokens=1)``).

    python benchmarks/models.py --quick          # 1 image, 2+2 layers, small images (~1-2 min)
    python benchmarks/models.py                  # 4 images x 2 models (~10 min on 2 cores)
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vlprune.api import apply  # noqa: E402
from vlprune.flops import ImageTokens, Prompt, prefill_flops  # noqa: E402
from vlprune.models.configs import build_config, shape_spec  # noqa: E402
from vlprune.processor import build_processor, processor_inputs  # noqa: E402

CORPUS = Path("/work/shared/corpus")
PROMPT = "Read the page and answer: what is its title?"


@dataclass(frozen=True)
class BenchConfig:
    shapes: tuple[str, ...] = ("qwen3-vl-2b", "qwen2.5-vl-3b")
    images_per_category: int = 1
    categories: tuple[str, ...] = ("web", "doc", "desktop", "mobile")
    text_layers: int | None = 4
    vision_layers: int | None = 4
    max_pixels: int = 640 * 640
    dtype: str = "bfloat16"
    repeats: int = 2
    method: str = "pixelprune"
    device: str = "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Row:
    shape: str
    image: str
    category: str
    grid: str
    tokens_full: int
    tokens_kept: int
    retain: float
    llm_len_full: int
    llm_len_pruned: int
    vit_ms_full: float
    vit_ms_pruned: float
    prefill_ms_full: float
    prefill_ms_pruned: float
    selector_ms: float
    plan_ms: float
    speedup: float
    token_ratio: float
    flops_ratio: float
    overhead_pct: float
    ttft_ms_full: float | None = None
    ttft_ms_pruned: float | None = None


def corpus_images(cfg: BenchConfig) -> list[tuple[str, Path]]:
    rows = list(csv.DictReader(open(CORPUS / "manifest.csv")))
    out = []
    for cat in cfg.categories:
        picked = [r for r in rows if r["category"] == cat][: cfg.images_per_category]
        out += [(cat, CORPUS / r["file"]) for r in picked]
    return out


class Timer:
    """Wall-clock on CPU, CUDA events on GPU; best of ``repeats`` (ms)."""

    def __init__(self, device: str, repeats: int):
        self.cuda = device.startswith("cuda")
        self.repeats = max(1, repeats)

    def __call__(self, fn):
        best, out = float("inf"), None
        for _ in range(self.repeats):
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                torch.cuda.synchronize()
                a.record()
                out = fn()
                b.record()
                torch.cuda.synchronize()
                ms = a.elapsed_time(b)
            else:
                t0 = time.perf_counter()
                out = fn()
                ms = (time.perf_counter() - t0) * 1e3
            best = min(best, ms)
        return best, out


def build(shape: str, cfg: BenchConfig):
    from transformers import AutoModelForImageTextToText

    spec = shape_spec(spec_family(shape), shape)
    mc = build_config(spec.family, shape, cfg.text_layers, cfg.vision_layers)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(mc, dtype=getattr(torch, cfg.dtype), attn_implementation="sdpa")
    return model.eval().to(cfg.device), spec.family


def spec_family(shape: str) -> str:
    return {"qwen3-vl": "qwen3-vl", "qwen2.5-vl": "qwen2.5-vl", "qwen2-vl": "qwen2-vl", "qwen3.5": "qwen3.5"}[
        shape.rsplit("-", 1)[0]]


def bench_image(model, proc, family, shape, cat, path, cfg: BenchConfig, timer: Timer) -> Row:
    inputs = processor_inputs(proc, path, PROMPT).to(cfg.device)
    pv, thw = inputs["pixel_values"], inputs["image_grid_thw"]
    n_img = int(thw.prod(-1).sum()) // 4
    n_text = int(inputs["input_ids"].shape[1]) - n_img
    with torch.no_grad():
        vit_full, _ = timer(lambda: model.model.get_image_features(pv, thw))
        pre_full, _ = timer(lambda: model(**inputs, logits_to_keep=1))
        ttft_full = ttft_pruned = None
        if timer.cuda:
            ttft_full, _ = timer(lambda: model.generate(**inputs, max_new_tokens=1, do_sample=False))
        with apply(model, cfg.method, processor=proc) as run:
            pre_pruned, _ = timer(lambda: model(**inputs, logits_to_keep=1))
            last, prep = run.last, run.last_prepared
            if timer.cuda:
                ttft_pruned, _ = timer(lambda: model.generate(**inputs, max_new_tokens=1, do_sample=False))
    kept = prep.selections[0].kept
    g = tuple(int(x) for x in thw[0].tolist())
    f_full = prefill_flops(model.config, Prompt([ImageTokens(g)], n_text)).total
    f_pruned = prefill_flops(model.config, Prompt([ImageTokens(g, kept)], n_text)).total
    return Row(
        shape, path.name, cat, f"{g[1] // 2}x{g[2] // 2}", last.tokens_before, last.tokens_after, last.retain,
        last.llm_tokens_before, last.llm_tokens_after, vit_full, last.vit_ms, pre_full, pre_pruned,
        last.selector_ms, last.plan_ms, pre_full / pre_pruned, last.llm_tokens_before / last.llm_tokens_after,
        f_full / f_pruned, 100 * last.plan_ms / pre_pruned, ttft_full, ttft_pruned,
    )


def warm_up(model, proc, cfg):
    """One small forward (allocator / oneDNN / numba JIT warm-up), not timed."""
    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.full((256, 256, 3), 128, np.uint8))
    inputs = processor_inputs(proc, img, "hi").to(cfg.device)
    with torch.no_grad():
        model(**inputs, logits_to_keep=1)
        with apply(model, cfg.method):
            model(**inputs, logits_to_keep=1)


def run(cfg: BenchConfig) -> list[Row]:
    rows = []
    timer = Timer(cfg.device, cfg.repeats)
    for shape in cfg.shapes:
        t0 = time.perf_counter()
        model, family = build(shape, cfg)
        proc = build_processor(family, max_pixels=cfg.max_pixels)
        warm_up(model, proc, cfg)
        print(f"# {shape}: built + warm-up in {time.perf_counter() - t0:.0f} s "
              f"({model.config.get_text_config().num_hidden_layers} LLM / {model.config.vision_config.depth} ViT layers, "
              f"{cfg.dtype}, {cfg.device})", flush=True)
        for cat, path in corpus_images(cfg):
            r = bench_image(model, proc, family, shape, cat, path, cfg, timer)
            print(f"  {r.category:8s} {r.image[:36]:36s} grid {r.grid:6s} retain {r.retain:6.1%}  "
                  f"ViT {r.vit_ms_full:7.0f} -> {r.vit_ms_pruned:6.0f} ms  prefill {r.prefill_ms_full:7.0f} -> "
                  f"{r.prefill_ms_pruned:6.0f} ms  speedup {r.speedup:4.2f}x (tokens {r.token_ratio:4.2f}x, "
                  f"FLOPs {r.flops_ratio:4.2f}x)  select+bookkeeping {r.overhead_pct:4.1f}%", flush=True)
            rows.append(r)
        del model
    return rows


def markdown(rows: list[Row], cfg: BenchConfig) -> str:
    head = ("| model | image | grid | retain | ViT ms full → pruned | prefill ms full → pruned | speedup | "
            "LLM token ratio | FLOPs ratio | select+bookkeeping |\n|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r.shape} | {r.category}/{r.image} | {r.grid} | {r.retain:.1%} | {r.vit_ms_full:.0f} → {r.vit_ms_pruned:.0f} | "
        f"{r.prefill_ms_full:.0f} → {r.prefill_ms_pruned:.0f} | {r.speedup:.2f}× | {r.token_ratio:.2f}× | "
        f"{r.flops_ratio:.2f}× | {r.overhead_pct:.1f}% |\n" for r in rows)
    by = {}
    for r in rows:
        by.setdefault(r.shape, []).append(r)
    summ = "".join(
        f"\n{s}: retain {sum(r.tokens_kept for r in rs) / sum(r.tokens_full for r in rs):.1%} (dataset-level), "
        f"median speedup {statistics.median(r.speedup for r in rs):.2f}× vs median FLOPs ratio "
        f"{statistics.median(r.flops_ratio for r in rs):.2f}×, max select+bookkeeping {max(r.overhead_pct for r in rs):.1f}%"
        for s, rs in by.items())
    note = (f"\n\nRandom weights, {cfg.dtype} on {cfg.device}, depth reduced to {cfg.text_layers} LLM / "
            f"{cfg.vision_layers} ViT layers, max_pixels {cfg.max_pixels}, best of {cfg.repeats}.\n")
    return head + body + summ + note


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 image, 2+2 layers, max 512x512 px")
    ap.add_argument("--shapes", default=None, help="comma list, e.g. qwen3-vl-2b,qwen2.5-vl-3b")
    ap.add_argument("--images-per-category", type=int, default=None)
    ap.add_argument("--text-layers", type=int, default=None, help="LLM depth (0 = full depth)")
    ap.add_argument("--vision-layers", type=int, default=None, help="ViT depth (0 = full depth)")
    ap.add_argument("--max-pixels", type=int, default=None)
    ap.add_argument("--dtype", default=None, choices=["bfloat16", "float32", "float16"])
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", type=Path, default=None, help="write rows as JSON and the table as .md next to it")
    a = ap.parse_args(argv)
    base = BenchConfig()
    if a.quick:
        base = BenchConfig(shapes=("qwen3-vl-2b",), categories=("web",), text_layers=2, vision_layers=2,
                           max_pixels=512 * 512)
    kw = {}
    if a.shapes:
        kw["shapes"] = tuple(a.shapes.split(","))
    for k in ("images_per_category", "max_pixels", "dtype", "repeats", "device"):
        if getattr(a, k) is not None:
            kw[k] = getattr(a, k)
    for k in ("text_layers", "vision_layers"):
        if getattr(a, k) is not None:
            kw[k] = getattr(a, k) or None
    cfg = BenchConfig(**{**asdict(base), **kw})
    rows = run(cfg)
    md = markdown(rows, cfg)
    print("\n" + md)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"config": asdict(cfg), "rows": [asdict(r) for r in rows]}, indent=1))
        a.out.with_suffix(".md").write_text(md)


if __name__ == "__main__":
    main()

"""GUIPruner on real agent steps: full vs settings I / II / III vs PixelPrune vs PixelPrune + GUIPruner.

Each request is one step of a real recorded browsing episode (goal, the last 4 actions, 4 history
screenshots and the current one; ``vlprune.agent.agent_request``) through a random-weight model of a
real architecture at full depth (speed does not depend on weight values). Per method and request:
visual tokens after every stage, ViT ms, prefill ms (TTFT), decode ms per token, peak memory, KV cache
and the analytic FLOPs of what ran. ``full`` is the unmodified model; every pruned method runs through
``vlprune.apply`` with ``run.process`` (TAR resizes history screenshots before the processor, once).

    python benchmarks/agent.py                       # Qwen2-VL-2B and Qwen3-VL-2B, 2 episodes
    python benchmarks/agent.py --shapes qwen2-vl-2b --episodes web_pg15_select --repeats 1

Times are medians over ``--repeats`` timed passes after ``--warmup`` untimed ones; the method order
rotates every pass. Speed-ups are ratios of medians measured in the same run. Writes
``<out>/agent_<shape>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from vlprune import flops
from vlprune.agent import agent_request
from vlprune import compat
from vlprune.bench import build_model, configure_onednn_cache
from vlprune.bench.timing import PeakMemory, Timer, VisionTimer, cache_bytes
from vlprune.families import get_family
from vlprune.processor import align_config_to_processor, build_processor
from vlprune.runtime import ApplyConfig, apply
from vlprune.shapes import build_config, get_shape

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRAJECTORIES = ROOT.parent / "shared" / "corpus" / "trajectories"
METHODS = {  # label -> pipeline spec and options (the paper's settings: mu 0.75, gamma 0.2, rho 0.3, K 2)
    "full": None,
    "guipruner-I": ("guipruner", {"guipruner": {"preset": "I"}}),
    "guipruner-II": ("guipruner", {"guipruner": {"preset": "II"}}),
    "guipruner-III": ("guipruner", {"guipruner": {"preset": "III"}}),
    "pixelprune": ("pixelprune", {}),
    "pixelprune+guipruner-III": ("pixelprune+guipruner", {"guipruner": {"preset": "III"}}),
}
STAGES = ("raw", "input", "pre_vit", "llm")


def _full_prompt(batch, proc) -> flops.Prompt:
    thw = batch["image_grid_thw"].tolist()
    n_img = int((batch["input_ids"] == proc.image_token_id).sum())
    return flops.Prompt([flops.ImageTokens(tuple(g)) for g in thw], int(batch["input_ids"].shape[1]) - n_img)


def _one(model, batch, timer, vit, peak, decode_tokens: int) -> dict:
    vit.reset()
    peak.start()
    t0 = timer.mark()
    out = model(**batch, use_cache=True, logits_to_keep=1)
    tok = out.logits[:, -1].argmax(-1, keepdim=True)
    t1 = timer.mark()
    mem = peak.stop()
    cache = compat.cache_from_output(out)
    kv = cache_bytes(cache)
    d0 = timer.mark()
    for _ in range(decode_tokens):
        out = model(input_ids=tok, **{compat.model_cache_kwarg(model): cache}, use_cache=True, logits_to_keep=1)
        cache = compat.cache_from_output(out)
        tok = out.logits[:, -1].argmax(-1, keepdim=True)
    d1 = timer.mark()
    return {"prefill_ms": timer.ms(t0, t1), "vit_ms": vit.total_ms(), "peak_mib": mem, "kv_bytes": kv,
            "decode_ms_per_token": timer.ms(d0, d1) / max(1, decode_tokens)}


def run_shape(shape_name: str, episodes: list[Path], args) -> dict:
    shape = get_shape(shape_name)
    family = shape.family
    spec = get_family(family)
    limits = (spec.block**2, args.max_pixels)  # one-token floor: TAR III shrinks old frames below 256 x 256
    proc = build_processor(family, min_pixels=limits[0], max_pixels=limits[1])
    config = build_config(shape_name, args.layers, args.vision_layers)
    align_config_to_processor(config, proc)
    model = build_model(config, args.dtype, args.device, args.seed, args.attn)
    requests = []
    for ep in episodes:
        req = agent_request(ep, family, limits=limits)
        requests.append((req, proc.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)))
    timer = Timer(args.device)
    vit = VisionTimer(model.model.visual, timer)
    peak = PeakMemory(args.device)
    dev = lambda b: {k: (v.to(args.device) if hasattr(v, "to") else v) for k, v in b.items()}  # noqa: E731
    labels = list(METHODS)
    runs: dict = {m: [dict(samples=[]) for _ in requests] for m in labels}
    passes = args.warmup + args.repeats
    try:
        with torch.inference_mode():
            for p in range(passes):
                k = p % len(labels)
                for label in labels[k:] + labels[:k]:
                    for i, (req, text) in enumerate(requests):
                        print(f"[{shape_name}] pass {p + 1}/{passes} {label} {req.episode}", file=sys.stderr, flush=True)
                        rec = runs[label][i]
                        model.model.rope_deltas = None
                        if METHODS[label] is None:
                            t0 = time.perf_counter()
                            batch = proc(text=[text], images=req.images, return_tensors="pt", padding=True)
                            pre_ms = (time.perf_counter() - t0) * 1e3
                            sample = _one(model, dev(batch), timer, vit, peak, args.decode_tokens)
                            if "flops" not in rec:
                                n = int((batch["input_ids"] == proc.image_token_id).sum())
                                rec.update(tokens={"raw": n}, prompt_tokens=int(batch["input_ids"].shape[1]),
                                           prompt=_full_prompt(batch, proc))
                        else:
                            spec_, options = METHODS[label]
                            cfg = ApplyConfig(sync_cuda=args.device.startswith("cuda"))
                            with apply(model, spec_, processor=proc, config=cfg, **options) as run:
                                t0 = time.perf_counter()
                                batch = run.process(text, [req.images])
                                pre_ms = (time.perf_counter() - t0) * 1e3
                                sample = _one(model, dev(batch), timer, vit, peak, args.decode_tokens)
                                last = run.last
                                sample.update(select_ms=last.selector_ms, plan_ms=last.plan_ms, llm_ms=last.llm_ms)
                                if "flops" not in rec:
                                    rec.update(tokens={s: sum(x.tokens_by_stage.get(s, 0) for x in run.stats)
                                                       for s in STAGES if s in run.stats[0].tokens_by_stage},
                                               prompt_tokens=int(batch["input_ids"].shape[1]),
                                               prompt=last.flops_prompts()[0], layer=run.llm_layer)
                        sample["preprocess_ms"] = pre_ms
                        if "flops" not in rec:
                            est = flops.estimate(config, rec.pop("prompt"), dtype=args.dtype)
                            rec["flops"] = est.prefill.as_dict(1e12)
                            rec["kv_analytic_bytes"] = est.kv.total_bytes
                        if p >= args.warmup:
                            rec["samples"].append(sample)
    finally:
        vit.close()
    return {"shape": shape_name, "family": family, "episodes": [r.episode for r, _ in requests],
            "steps": [r.step for r, _ in requests], "runs": runs, "limits": limits}


def _median(rec_list: list[dict], key: str) -> float:
    return statistics.median(statistics.median(s[key] for s in r["samples"]) for r in rec_list)


def _sum_median(rec_list: list[dict], key: str) -> float:
    """Sum over requests of each request's median (a workload of all requests)."""
    return sum(statistics.median(s[key] for s in r["samples"]) for r in rec_list)


def table(res: dict) -> str:
    runs = res["runs"]
    full_vit, full_pre = _sum_median(runs["full"], "vit_ms"), _sum_median(runs["full"], "prefill_ms")
    full_fl = sum(r["flops"]["total"] for r in runs["full"])
    head = ("| method | visual tokens: raw | after TAR | after PixelPrune | after SSP | ViT ms | prefill ms | "
            "decode ms/token | peak MiB | TFLOPs | ViT × | prefill × | FLOPs × |")
    lines = [head, "|" + "---|" * 13]
    for label, recs in runs.items():
        toks = [str(sum(r["tokens"][s] for r in recs)) if s in recs[0]["tokens"] else "–" for s in STAGES]
        vit, pre = _sum_median(recs, "vit_ms"), _sum_median(recs, "prefill_ms")
        fl = sum(r["flops"]["total"] for r in recs)
        lines.append(f"| {label} | {' | '.join(toks)} | {vit:.0f} | {pre:.0f} | {_median(recs, 'decode_ms_per_token'):.0f} | "
                     f"{_median(recs, 'peak_mib'):.0f} | {fl:.2f} | {full_vit / vit:.2f} | {full_pre / pre:.2f} | "
                     f"{full_fl / fl:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", nargs="+", default=["qwen2-vl-2b", "qwen3-vl-2b"])
    ap.add_argument("--trajectories", type=Path, default=DEFAULT_TRAJECTORIES,
                    help="folder of recorded episodes (<episode>/episode.json + step_NN.png)")
    ap.add_argument("--episodes", nargs="+", default=["web_pg15_select", "mob_git_tutorial_pull"])
    ap.add_argument("--max-pixels", type=int, default=1003520, help="processor max_pixels (default ~1 MP)")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (CUDA events time the GPU)")
    ap.add_argument("--attn", default="sdpa", help="attention implementation (sdpa, eager, flash_attention_2)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--decode-tokens", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=None, help="QUICK RUNS ONLY: cut the LLM to N layers")
    ap.add_argument("--vision-layers", type=int, default=None, help="QUICK RUNS ONLY: cut the ViT to N layers")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "agent")
    args = ap.parse_args(argv)
    episodes = [args.trajectories / e for e in args.episodes]
    missing = [str(e) for e in episodes if not (e / "episode.json").is_file()]
    if missing:
        ap.error(f"no episode.json in {', '.join(missing)} (give --trajectories / --episodes)")
    configure_onednn_cache(8192)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "device": args.device, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
               "cpu_count": os.cpu_count(), "date": str(date.today()), "platform": platform.platform()}
    for shape in args.shapes:
        res = run_shape(shape, episodes, args)
        res.update(machine=machine, config={k: str(v) for k, v in vars(args).items()})
        path = args.out / f"agent_{shape}.json"
        path.write_text(json.dumps(res, indent=1))
        depth = "" if args.layers is None and args.vision_layers is None else (
            f", REDUCED DEPTH {args.layers} LLM / {args.vision_layers} ViT layers")
        print(f"\n### {shape} ({', '.join(res['episodes'])}; step {res['steps']}, 4 history frames + current, "
              f"max_pixels {args.max_pixels}, {args.dtype}, {machine['threads']} threads, {machine['date']}{depth})\n")
        print(table(res))
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

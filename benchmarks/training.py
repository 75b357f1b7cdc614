"""One training step with pruned inputs (PixelPrune §4.5.2, Table 5): forward, backward and optimizer-step
time and peak memory, full tokens vs PixelPrune and Random / Resize at PixelPrune's budget.

A random-weight model of a real architecture (default the Qwen3-VL-2B shape; ``--layers`` /
``--vision-layers`` cut its depth, and every output says so) trains on a batch of corpus screenshots
(default 4, left-padded) with a fixed answer after each prompt. The loss is the cross-entropy of the
answer tokens; ``lm_head`` runs on those positions only (``logits_to_keep``), as the authors' training code
restricts it to label positions. Each step: ``zero_grad``, forward (selection, ViT, LLM, loss) under
``vlprune.apply``, ``loss.backward()``, ``optimizer.step()``.

    python benchmarks/training.py                              # Qwen3-VL-2B widths, 2 + 2 layers, bf16
    python benchmarks/training.py --layers 28 --vision-layers 24 --device cuda --checkpointing

Times are medians over ``--repeats`` timed steps after ``--warmup`` untimed ones (the optimizer state is
allocated in the warm-up), the method order rotating every pass; speed-ups are ratios of medians in the
same run. Analytic FLOPs: the forward of what ran (:mod:`vlprune.flops`, ``logits_to_keep`` positions of
``lm_head``) times 3 (backward = 2 x forward for every matmul; 4 x with gradient checkpointing, which
recomputes the forward). Random and Resize get ``retain`` = PixelPrune's kept share of the batch.
Target: forward + backward speed-up >= 0.9 x the FLOPs ratio (the optimizer step does the same work for
every method and is reported on its own).
Writes ``--out`` (JSON) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vlprune import flops
from vlprune.bench import DTYPES, build_model
from vlprune.bench.dtype import default_dtype
from vlprune.bench.timing import PeakMemory, Timer, loadavg, machine_info
from vlprune.families import get_family
from vlprune.processor import align_config_to_processor, build_processor
from vlprune.runtime import apply
from vlprune.shapes import build_config, get_shape

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_IMAGES = ("web/py311_library_itertools.png", "web/pg15_sql_select.png", "desktop/geany_json_decoder.png",
                  "desktop/writer_valgrind_intro.png")
ANSWER = "The setting is in the second panel, below the search field, next to the button."


def _batch(proc, images: list[Path], question: str, n_answer: int):
    """Left-padded processor batch: per image a user turn (image + question), then the assistant answer."""
    answer_ids = proc.tokenizer(ANSWER, add_special_tokens=False)["input_ids"][:n_answer]
    if len(answer_ids) < n_answer:
        raise SystemExit(f"--answer-tokens {n_answer}: the answer has {len(answer_ids)} tokens")
    texts = []
    for _ in images:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        texts.append(proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
    proc.tokenizer.padding_side = "left"
    from PIL import Image

    pil = [Image.open(p).convert("RGB") for p in images]
    batch = proc(text=texts, images=pil, return_tensors="pt", padding=True)
    answer = torch.tensor(answer_ids).repeat(len(images), 1)
    b = answer.shape[0]
    batch["input_ids"] = torch.cat([batch["input_ids"], answer], 1)
    batch["attention_mask"] = torch.cat([batch["attention_mask"], torch.ones(b, n_answer, dtype=torch.long)], 1)
    if "mm_token_type_ids" in batch:
        batch["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"], torch.zeros(b, n_answer, dtype=batch["mm_token_type_ids"].dtype)], 1)
    return dict(batch), answer


def _full_prompts(batch, proc) -> list:
    """One unpruned prompt per row (one image each)."""
    out = []
    for r, grid in enumerate(batch["image_grid_thw"].tolist()):
        ids = batch["input_ids"][r][batch["attention_mask"][r].bool()]
        n_img = int((ids == proc.image_token_id).sum())
        out.append(flops.Prompt([flops.ImageTokens(tuple(grid))], int(ids.numel()) - n_img))
    return out


def _step(model, opt, batch, answer, spec, proc, timer, peak, n_answer):
    opt.zero_grad(set_to_none=True)
    model.model.rope_deltas = None
    peak.start()
    t0 = timer.mark()
    run = None
    if spec is None:
        logits = model(**batch, use_cache=False, logits_to_keep=n_answer + 1).logits
    else:
        name, opts = spec
        with apply(model, name, processor=proc, **opts) as run:
            logits = model(**batch, use_cache=False, logits_to_keep=n_answer + 1).logits
    loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), answer.reshape(-1).to(logits.device))
    t1 = timer.mark()
    loss.backward()
    t2 = timer.mark()
    opt.step()
    t3 = timer.mark()
    mem = peak.stop()
    return {"forward_s": timer.ms(t0, t1) / 1e3, "backward_s": timer.ms(t1, t2) / 1e3,
            "optimizer_s": timer.ms(t2, t3) / 1e3, "step_s": timer.ms(t0, t3) / 1e3, "peak_mib": mem,
            "loss": float(loss)}, run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="qwen3-vl-2b")
    ap.add_argument("--layers", type=int, default=2, help="LLM layers (default 2 of the shape's)")
    ap.add_argument("--vision-layers", type=int, default=2, help="ViT blocks (default 2)")
    ap.add_argument("--full-depth", action="store_true", help="the shape's own depth (overrides --layers / --vision-layers)")
    ap.add_argument("--images", nargs="*", default=None, help=f"screenshots (default: 4 of {CORPUS})")
    ap.add_argument("--max-pixels", type=int, default=512 * 1024, help="processor max_pixels per image")
    ap.add_argument("--answer-tokens", type=int, default=16)
    ap.add_argument("--dtype", default=None, help="bf16 / fp32 (default: bf16 where the CPU has bf16 units)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing (LLM and ViT)")
    ap.add_argument("--methods", default="full,pixelprune,random,resize")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training" / "training_qwen3-vl-2b.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype, why = (args.dtype, "given") if args.dtype else default_dtype(args.device)
    images = [Path(p) for p in args.images] if args.images else [CORPUS / p for p in DEFAULT_IMAGES]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise SystemExit(f"images not found: {', '.join(missing)}")
    shape = get_shape(args.shape)
    family = get_family(shape.family)
    layers, vlayers = (None, None) if args.full_depth else (args.layers, args.vision_layers)
    proc = build_processor(shape.family, min_pixels=family.block**2 * 4, max_pixels=args.max_pixels)
    config = build_config(args.shape, layers, vlayers)
    align_config_to_processor(config, proc)
    if dtype not in DTYPES:
        raise SystemExit(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    model = build_model(config, DTYPES[dtype], args.device, args.seed, "sdpa").train()
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    opt = (torch.optim.AdamW(model.parameters(), lr=1e-6) if args.optimizer == "adamw"
           else torch.optim.SGD(model.parameters(), lr=1e-6))
    batch, answer = _batch(proc, images, "Where is the setting for the search options?", args.answer_tokens)
    batch = {k: (v.to(args.device) if hasattr(v, "to") else v) for k, v in batch.items()}
    timer, peak = Timer(args.device), PeakMemory(args.device)
    depth = {"llm_layers": config.get_text_config().num_hidden_layers, "vit_blocks": config.vision_config.depth,
             "reduced": not args.full_depth}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    specs: dict = {"full": None, "pixelprune": ("pixelprune", {})}
    info: dict = {m: {"samples": []} for m in methods}
    # PixelPrune first, once, for the budget of the baselines
    _, run = _step(model, opt, batch, answer, specs["pixelprune"], proc, timer, peak, args.answer_tokens)
    total, retain = run.last.tokens_before, run.last.retain
    specs["random"] = ("random", {"retain": retain})
    specs["resize"] = ("resize", {"retain": retain})
    passes = args.warmup + args.repeats
    for p in range(passes):
        k = p % len(methods)
        for m in methods[k:] + methods[:k]:
            print(f"[training] pass {p + 1}/{passes} {m}", file=sys.stderr, flush=True)
            sample, run = _step(model, opt, batch, answer, specs[m], proc, timer, peak, args.answer_tokens)
            rec = info[m]
            if "tokens" not in rec:
                prompts = _full_prompts(batch, proc) if run is None else run.last.flops_prompts()
                fwd = sum(flops.prefill_flops(config, pr, logits_to_keep=args.answer_tokens + 1).total for pr in prompts)
                rec["tflops_fwd_bwd"] = fwd * (4 if args.checkpointing else 3) / 1e12
                rec["vit_patches"] = (sum(t * h * w for t, h, w in batch["image_grid_thw"].tolist()) if run is None
                                      else sum(len(s.vit_blocks) for s in run.stats) * family.merge_size**2)
                rec["visual_tokens"] = total if run is None else run.last.tokens_after
            if p >= args.warmup:
                rec["samples"].append(sample)
    for m in methods:
        rec = info[m]
        rec["median"] = {k: statistics.median(s[k] for s in rec["samples"]) for k in rec["samples"][0] if k != "loss"}
    base = info.get("full")
    table = ["| method | retain | ViT patches | visual tokens | forward s | backward s | optimizer s | step s | "
             "peak MiB | TFLOPs fwd+bwd | fwd+bwd speed-up | step speed-up | FLOPs ratio | fwd+bwd speed-up / FLOPs ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        rec, med = info[m], info[m]["median"]
        su = fr = fb = None
        if base is not None:
            bm = base["median"]
            su = bm["step_s"] / med["step_s"]
            fb = (bm["forward_s"] + bm["backward_s"]) / (med["forward_s"] + med["backward_s"])
            fr = base["tflops_fwd_bwd"] / rec["tflops_fwd_bwd"]
            rec.update(step_speedup=su, fwd_bwd_speedup=fb, target_met=fb >= 0.9 * fr,
                       forward_speedup=base["median"]["forward_s"] / med["forward_s"],
                       backward_speedup=base["median"]["backward_s"] / med["backward_s"], flops_ratio=fr,
                       peak_mem_ratio=med["peak_mib"] / base["median"]["peak_mib"])
        table.append(f"| {m} | {rec['visual_tokens'] / total:.1%} | {rec['vit_patches']} | {rec['visual_tokens']} | "
                     f"{med['forward_s']:.2f} | {med['backward_s']:.2f} | {med['optimizer_s']:.2f} | {med['step_s']:.2f} | "
                     f"{med['peak_mib']:.0f} | {rec['tflops_fwd_bwd']:.2f} | "
                     f"{'' if fb is None else f'{fb:.2f}x'} | {'' if su is None else f'{su:.2f}x'} | "
                     f"{'' if fr is None else f'{fr:.2f}x'} | {'' if fb is None else f'{fb / fr:.2f}'} |")
    result = {"shape": args.shape, "depth": depth, "dtype": dtype, "dtype_reason": why, "device": args.device,
              "batch": len(images), "images": [str(p.relative_to(CORPUS)) if CORPUS in p.parents else str(p) for p in images],
              "max_pixels": args.max_pixels, "answer_tokens": args.answer_tokens, "optimizer": args.optimizer,
              "checkpointing": args.checkpointing, "warmup": args.warmup, "repeats": args.repeats,
              "pixelprune_retain": retain, "methods": info, "timing": timer.method, "memory": peak.method,
              "machine": machine_info(args.device, torch.get_num_threads()), "loadavg_end": loadavg(),
              "table": table}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    label = "reduced depth" if depth["reduced"] else "full depth"
    print(f"{args.shape} ({label}: {depth['llm_layers']} LLM layers, {depth['vit_blocks']} ViT blocks), {dtype}, "
          f"batch {len(images)}, {time.strftime('%Y-%m-%d')}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

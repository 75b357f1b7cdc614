"""``vlprune bench``: measured ViT / prefill / decode time, memory and KV cache of a real-size
random-weight model for the unmodified model and each pipeline (:mod:`vlprune.bench`)."""

from __future__ import annotations

import argparse

from vlprune.cli.common import (
    add_image_options,
    add_method_options,
    image_options,
    int_option,
    method_spec_type,
    opt_flags,
    option_type,
    output_path,
    path_arg,
    usage_error,
)
from vlprune.bench.config import ATTN
from vlprune.cli.flags import FlagError
from vlprune.families import list_families
from vlprune import options as opt


def add_parser(sub) -> None:
    b = sub.add_parser(
        "bench",
        help="measured ViT / prefill / decode time, memory and KV cache of a real-size random-weight model",
        description=(
            "Build a named real-size architecture (vlprune/shapes.py) with random weights (no download), "
            "turn each image into a batch-1 request with the real offline processor, and time the unpruned "
            "model ('full') and each --method (any registered method or a composition such as "
            "pixelprune+fastv): tokens after every stage, selection / ViT / post-ViT / in-LLM ms, prefill/TTFT "
            "ms, decode tokens/s, peak memory, KV-cache size (measured and analytic) and the analytic FLOPs of "
            "what ran (vlprune.flops). Median and min/max over --repeats after --warmup passes. Bad input "
            "(unknown family/shape/method, a device, dtype or attention implementation that cannot run, a "
            "request that does not fit in memory, an image that cannot be read or that the processor refuses "
            "-- checked as analyze checks it -- or an option value that is not allowed) exits 2 before the "
            "model is built."
        ),
    )
    b.add_argument("images", nargs="+", type=path_arg, metavar="IMAGE", help="image files (one request each)")
    g = b.add_argument_group("model")
    g.add_argument("--family", default=None, metavar="|".join(list_families()),
                   help="model family; resolves short --shape aliases such as 2b (default: from --shape, "
                        "else qwen3-vl)")
    g.add_argument("--shape", default="2b", metavar="NAME",
                   help="shape name (qwen3-vl-2b, qwen2-vl-2b, ...) or an alias with --family (default: 2b)")
    g.add_argument("--dtype", choices=["bf16", "fp32", "fp16"], default=None,
                   help="weights/activations (default: bf16 on CUDA and on CPUs with bf16 matrix units -- "
                        "avx512_bf16 / amx_bf16 on x86, bf16 on Arm, from /proc/cpuinfo --, else fp32; the "
                        "output says which and why)")
    g.add_argument("--device", default="cpu", metavar="cpu|cuda", help="default: cpu")
    g.add_argument("--layers", type=int_option("layers", 1), default=None, metavar="N",
                   help="QUICK RUNS ONLY: cut the LLM to N layers (labelled REDUCED DEPTH in every output)")
    g.add_argument("--vision-layers", type=int_option("vision_layers", 1), default=None, metavar="N",
                   help="QUICK RUNS ONLY: cut the ViT to N layers (labelled REDUCED DEPTH)")
    g.add_argument("--attn", choices=ATTN, default="sdpa",
                   help="attention implementation (default: sdpa; flash_attention_2 needs a CUDA GPU, bf16/fp16 "
                        "and the flash_attn package)")
    m = b.add_argument_group("methods")
    m.add_argument("--method", action="append", type=method_spec_type, default=None, dest="methods", metavar="M",
                   help="method or composition a+b (at most one per stage) to compare with full (repeatable; "
                        "default: pixelprune); e.g. fastv, pixelprune+fastv, pixelprune+guipruner")
    add_method_options(m, "seed of the random baselines and of the weights (default: 0)")
    r = b.add_argument_group("run")
    r.add_argument("--warmup", type=int_option("warmup", 0), default=1, metavar="N",
                   help="untimed passes over all images and methods first (default: 1)")
    r.add_argument("--repeats", type=int_option("repeats", 1), default=3, metavar="N", help="timed passes (default: 3)")
    r.add_argument("--decode-tokens", type=int_option("decode_tokens", 0), default=8,
                   metavar="N", help="greedy decode steps after each prefill (default: 8)")
    r.add_argument("--threads", type=int_option("threads", 1), default=None, metavar="N",
                   help="torch CPU threads, fixed for the run (default: torch's default)")
    add_image_options(b.add_argument_group("image loading and size"))
    r.add_argument("--max-memory-gb", type=option_type(float, lambda v: opt.positive("max_memory_gb", v)), default=None,
                   metavar="G", help="memory budget for the pre-build check (default: available RAM / free GPU memory)")
    r.add_argument("--prompt", default="Describe this image.", help="the text turn after the image")
    r.add_argument("--onednn-cache", type=int_option("onednn_cache", 0), default=8192,
                   metavar="N", help="CPU: oneDNN primitive-cache capacity in entries (default: 8192; oneDNN's own "
                                     "1024 thrashes when full and pruned shapes alternate; 0 disables the cache)")
    o = b.add_argument_group("output")
    o.add_argument("--json", type=path_arg, metavar="FILE", help="write every number (per method and per image) as JSON")
    o.add_argument("--plot", type=path_arg, metavar="FILE", help="write a bar plot (PNG)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    b.set_defaults(func=cmd_bench, parser=b)


def cmd_bench(args: argparse.Namespace) -> int:
    from vlprune.bench import BenchConfig, BenchError, format_table, run_bench, save_plot, write_json

    family = args.family
    if family is None and "-" not in args.shape.strip("-"):
        family = "qwen3-vl"
    dtype = args.dtype
    if dtype is None:
        from vlprune.bench.dtype import default_dtype

        dtype, note = default_dtype(args.device)
        print(note, flush=True)
    output_path(args.parser, "--json", args.json, args.images)
    output_path(args.parser, "--plot", args.plot, args.images)
    try:
        config = BenchConfig(
            images=list(args.images), shape=args.shape, family=family, methods=args.methods or ["pixelprune"],
            options={"tau": args.tau, "order": args.order, "metric": args.metric, "retain": args.retain},
            method_options=opt_flags(args),
            dtype=dtype, device=args.device, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
            decode_tokens=args.decode_tokens, layers=args.layers, vision_layers=args.vision_layers,
            max_memory_gb=args.max_memory_gb, prompt=args.prompt, attn=args.attn,
            seed=0 if args.seed is None else args.seed, progress=not args.no_progress,
            onednn_cache=args.onednn_cache, image=image_options(args),
        )
        result = run_bench(config)
    except (BenchError, FlagError, opt.OptionError) as exc:
        usage_error(args.parser, exc)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        save_plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0

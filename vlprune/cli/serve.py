"""``vlprune serve MODEL --method M [--opt NAME.OPTION=VALUE ...] [-- VLLM FLAGS]``: vLLM's
OpenAI-compatible server with the vlprune plug-in selected (``docs/serving.md``).

Checks before anything starts: the method and its options (the rules of ``vlprune.create_method``; only
methods vLLM can run), vLLM installed with every hook the plug-in uses, a supported transformers
release, and a Qwen-VL checkpoint. Then it replaces itself with ``vllm serve`` (same Python), passing
the flags after ``--`` through (``--hf-overrides`` / ``--mm-processor-kwargs`` merged).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys

from vlprune.cli.common import method_spec_type, opt_flags, usage_error


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve a Qwen-VL model with vLLM, pruned (OpenAI-compatible API)",
        description="Start vLLM's OpenAI-compatible server with the vlprune plug-in: images are pruned before "
                    "the vision encoder (PixelPrune, the same-budget baselines, TAR). Flags after '--' go to "
                    "'vllm serve' unchanged.",
        epilog="example: vlprune serve Qwen/Qwen3-VL-2B-Instruct --method pixelprune --opt pixelprune.tau=0.05 "
               "-- --host 127.0.0.1 --port 8000")
    p.add_argument("model", help="checkpoint folder or hub id of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 model")
    p.add_argument("--method", type=method_spec_type, default="pixelprune",
                   help="pre-ViT method, 'tar', or 'tar+<pre-ViT method>' (default: pixelprune)")
    p.add_argument("--opt", action="append", default=[], metavar="NAME.OPTION=VALUE",
                   help="a method option, e.g. pixelprune.tau=0.05 (repeatable)")
    p.add_argument("--trust-remote-code", action="store_true", help="let transformers read a custom config")
    p.add_argument("--dry-run", action="store_true", help="print the vllm serve command and exit")
    p.usage = "vlprune serve MODEL [--method METHOD] [--opt NAME.OPTION=VALUE ...] [--dry-run] [-- VLLM SERVE FLAGS]"
    p.set_defaults(func=cmd_serve, parser=p, vllm_flags=[])


def cmd_serve(args: argparse.Namespace) -> int:
    from vlprune import compat
    from vlprune.serving.launch import model_architecture, serve_argv, vllm_cli_works
    from vlprune.serving.plan import ServingError, ServingPlan

    parser = args.parser
    options = opt_flags(args)
    try:
        plan = ServingPlan.create(args.method, options)
    except (ValueError, TypeError) as exc:
        usage_error(parser, exc)
    if importlib.util.find_spec("vllm") is None:
        parser.error("vLLM is not installed in this Python; make a venv with scripts/vllm-env (CPU) or "
                     "'pip install vllm' (GPU), then install vlprune there (docs/serving.md)")
    from vlprune.serving import probe

    try:
        probe.check()
        compat.require("vlprune serve")
        argv = serve_argv(args.model, plan, model_architecture(args.model, args.trust_remote_code)[0],
                          args.vllm_flags, cli=vllm_cli_works())
    except (ServingError, probe.VllmHookError, compat.UnsupportedTransformers) as exc:
        parser.error(str(exc))
    if args.dry_run:
        print(shlex.join(argv))
        return 0
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 0  # not reached

"""Check vlprune.flops against torch's FLOP counter on REAL-SIZE architectures.

Builds each named shape (vlprune.shapes) on the meta device -- no weights, no memory -- runs the vision
tower and the decoder under ``torch.utils.flop_counter.FlopCounterMode`` (pruned runs emulated as in
``vlprune.flopcount``) and prints analytic vs counted FLOPs for full and pruned inputs at several sizes.
``--table4`` prints our count of PixelPrune's Table 4 row (Qwen3-VL-2B, ScreenSpot-Pro Scientific).

    python benchmarks/flops_check.py                 # all default shapes, markdown table
    python benchmarks/flops_check.py --shapes qwen3-vl-2b --json out.json
    python benchmarks/flops_check.py --table4 --text-tokens 80
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date

from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vlprune import flopcount, flops
from vlprune.flops import ImageTokens, LLMPrune, Prompt
from vlprune.shapes import build_config, get_shape, list_shapes

DEFAULT_SHAPES = ["qwen3-vl-2b", "qwen2-vl-2b", "qwen2.5-vl-3b", "qwen2.5-vl-7b", "qwen3.5-0.8b"]
# (name, height, width): a laptop screenshot, the Table-4 mean ScreenSpot-Pro Scientific screenshot, a phone
# screenshot (AITW-like, GUIPruner's setting) and a document page.
SIZES = [("screen-1280x720", 720, 1280), ("sspro-sci-2716x1616", 1616, 2716), ("phone-1080x2400", 2400, 1080),
         ("page-1240x1754", 1754, 1240)]  # fmt: skip
TEXT_TOKENS = 61  # odd on purpose: the prune-hook emulation needs sequence lengths unlike any model dimension


def _kept(grid, retain: float, seed: int = 0) -> np.ndarray:
    t, h, w = grid
    n = t * (h // 2) * (w // 2)
    return np.sort(np.random.default_rng(seed).choice(n, max(1, round(retain * n)), replace=False))


def _tar_history(family: str, height: int, width: int, frames: int = 3, lam: float = 0.4, gamma: float = 0.2):
    """Current frame at full size + ``frames - 1`` history frames resized by TAR quotas (GUIPruner §3.2)."""
    full = flops.image_tokens_for_size(height, width, family)
    n_hist = frames - 1
    blocks = full.grid_thw[1] * full.grid_thw[2] // 4
    weights = [gamma + (1 - gamma) * (n_hist - k) / max(n_hist - 1, 1) for k in range(1, n_hist + 1)]
    budget = lam * n_hist * blocks
    images = [full]
    for w in weights:
        s = (budget * w / sum(weights) / blocks) ** 0.5
        images.append(flops.image_tokens_for_size(max(1, int(height * s)), max(1, int(width * s)), family))
    return images


def cases(family: str, height: int, width: int) -> list[tuple[str, Prompt]]:
    im = flops.image_tokens_for_size(height, width, family)
    g = im.grid_thw
    visual = g[1] * g[2] // 4
    return [
        ("full", Prompt([im], TEXT_TOKENS)),
        ("pre-ViT 50%", Prompt([ImageTokens(g, kept=_kept(g, 0.5))], TEXT_TOKENS)),
        ("pre-ViT 26.2%", Prompt([ImageTokens(g, kept=_kept(g, 0.262))], TEXT_TOKENS)),
        ("LLM K=2 keep 25%", Prompt([im], TEXT_TOKENS, llm_prune=LLMPrune(2, visual // 4))),
        ("TAR 3 frames", Prompt(_tar_history(family, height, width), TEXT_TOKENS)),
    ]


def check_shape(name: str, sizes=SIZES, decode: bool = True) -> list[dict]:
    config = build_config(name)
    model = flopcount.build_model(config, device="meta", attn_implementation="sdpa")
    family = get_shape(name).family
    rows = []
    for size_name, h, w in sizes:
        for case, prompt in cases(family, h, w):
            t0 = time.perf_counter()
            measured = flopcount.count_prefill(model, prompt)
            est = flops.prefill_flops(config, prompt)
            rows.append(_row(name, size_name, case, "prefill", est.total, measured.total, prompt, config, t0))
            print(f"  {name} {size_name} {case}: {100 * rows[-1]['rel_err']:+.4f}% ({rows[-1]['seconds']} s)", file=sys.stderr)
            if decode and prompt.llm_prune is None and case in ("full", "pre-ViT 26.2%"):
                t0 = time.perf_counter()
                measured = flopcount.count_decode_step(model, prompt)
                est = flops.decode_flops(config, prompt)
                # HF's recurrent gated-delta step is elementwise; torch's counter does not see it (docs/flops.md)
                rows.append(_row(name, size_name, case, "decode step", est.total - est.llm_state, measured.total, prompt,
                                 config, t0, state=est.llm_state))  # fmt: skip
    return rows


def _row(shape, size, case, phase, analytic, counted, prompt, config, t0, state=0) -> dict:
    est = flops.estimate(config, prompt)
    return dict(shape=shape, size=size, case=case, phase=phase, vit_patches=est.vit_patches,
                llm_tokens=est.llm_tokens[-1], analytic=analytic, counted=counted,
                rel_err=(analytic - counted) / counted, state_not_counted=state,
                seconds=round(time.perf_counter() - t0, 2))  # fmt: skip


def table4(text_tokens: int = 64, retain: float = 0.262) -> dict:
    """Our count of PixelPrune Table 4 (Qwen3-VL-2B, ScreenSpot-Pro Scientific: mean 2716x1616 px, 26.2%
    retained): full vs pruned prefill TFLOPs, by stage, under a few counting conventions."""
    config = build_config("qwen3-vl-2b")
    full = flops.image_tokens_for_size(1616, 2716, "qwen3-vl")
    pruned = flops.image_tokens_for_size(1616, 2716, "qwen3-vl", retain=retain)
    out = {"grid_thw": full.grid_thw, "blocks": full.grid_thw[1] * full.grid_thw[2] // 4, "kept": pruned.kept,
           "text_tokens": text_tokens, "conventions": {}}  # fmt: skip
    conventions = {
        "default (last logit, dense attention)": dict(logits_to_keep=1, count_masked=True),
        "all logits (plain forward)": dict(logits_to_keep=0, count_masked=True),
        "causal pairs only (flash)": dict(logits_to_keep=1, count_masked=False),
    }
    for label, kw in conventions.items():
        f = flops.prefill_flops(config, Prompt([full], text_tokens), **kw)
        p = flops.prefill_flops(config, Prompt([pruned], text_tokens), **kw)
        out["conventions"][label] = {"full": f.as_dict(1e12), "pruned": p.as_dict(1e12), "ratio": f.total / p.total}
    kv_f = flops.kv_cache_bytes(config, Prompt([full], text_tokens), dtype="bfloat16")
    kv_p = flops.kv_cache_bytes(config, Prompt([pruned], text_tokens), dtype="bfloat16")
    out["kv_gb"] = {"full": kv_f.total_bytes / 1e9, "pruned": kv_p.total_bytes / 1e9}
    # Attention is quadratic in the patch count, so the mean FLOPs over screenshots of mixed sizes exceed the
    # FLOPs of the mean-size screenshot; this is the single-image size whose full count equals the paper's 70.
    out["size_for_70_tflops"] = _size_for(config, 70e12, text_tokens)
    return out


def _size_for(config, target: float, text_tokens: int) -> tuple[int, int]:
    """Smallest 16:10-ish size (scaled from 2716x1616) whose full prefill reaches ``target`` FLOPs."""
    for s in np.arange(1.0, 3.0, 0.01):
        h, w = int(1616 * s), int(2716 * s)
        if flops.prefill_flops(config, Prompt([flops.image_tokens_for_size(h, w, "qwen3-vl")], text_tokens)).total >= target:
            return h, w
    return (0, 0)


def _print_rows(rows):
    print("| shape | image | input | phase | ViT patches | LLM tokens | analytic TFLOPs | counted TFLOPs | error |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['shape']} | {r['size']} | {r['case']} | {r['phase']} | {r['vit_patches']} | {r['llm_tokens']} | "
              f"{r['analytic'] / 1e12:.4f} | {r['counted'] / 1e12:.4f} | {100 * r['rel_err']:+.4f}% |")  # fmt: skip


def _print_table4(t4):
    print(f"\nTable 4 (Qwen3-VL-2B, SS-Pro Scientific): grid_thw {t4['grid_thw']}, {t4['blocks']} tokens, "
          f"kept {t4['kept']}, text {t4['text_tokens']}")  # fmt: skip
    keys = ["patch_embed", "vit_linear", "vit_attn", "merger", "llm_linear", "llm_attn", "lm_head", "total"]
    print("| convention | input | " + " | ".join(keys) + " |")
    print("|---|---|" + "---:|" * len(keys))
    for label, c in t4["conventions"].items():
        for which in ("full", "pruned"):
            print(f"| {label} | {which} | " + " | ".join(f"{c[which][k]:.2f}" for k in keys) + " |")
        print(f"| {label} | full / pruned | {c['ratio']:.2f}x |" + " |" * (len(keys) - 1))
    print(f"KV cache (bf16): full {t4['kv_gb']['full']:.3f} GB, pruned {t4['kv_gb']['pruned']:.3f} GB")
    print(f"single screenshot size whose full prefill is 70 TFLOPs: {t4['size_for_70_tflops']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help=f"named shapes ({', '.join(list_shapes())})")
    ap.add_argument("--no-decode", action="store_true", help="skip the decode-step check")
    ap.add_argument("--table4", action="store_true", help="only print the Table 4 comparison")
    ap.add_argument("--text-tokens", type=int, default=64, help="text tokens of the Table 4 prompt")
    ap.add_argument("--json", help="also write all rows to this JSON file")
    args = ap.parse_args(argv)
    print(f"# {date.today()} {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}")
    t4 = table4(args.text_tokens)
    out = {"table4": t4}
    if not args.table4:
        rows = [r for name in args.shapes for r in check_shape(name, decode=not args.no_decode)]
        _print_rows(rows)
        worst = max(abs(r["rel_err"]) for r in rows)
        print(f"\nworst |error| {100 * worst:.4f}% over {len(rows)} checks")
        out["rows"] = rows
    _print_table4(t4)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    return 0


if __name__ == "__main__":
    sys.exit(main())

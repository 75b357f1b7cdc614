"""Bench results: per image and method the measured samples and analytic numbers, aggregates over
images (:class:`BenchResult`), and the table / JSON / plot outputs."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: measured per pass (:class:`Sample` fields), reported as median / min / max / IQR
SAMPLE_FIELDS = ("vit_ms", "plan_ms", "post_ms", "llm_ms", "select_ms", "prefill_ms", "decode_tok_s", "peak_mem_mb")


@dataclass
class Sample:
    """One timed pass of one method on one image. ``plan_ms`` (input + pre-ViT selection and index
    bookkeeping before the ViT), ``post_ms`` (post-ViT selection + building the LLM sequence) and
    ``llm_ms`` (in-LLM scoring + selection) are the runtime's own timers and parts of ``prefill_ms``.
    ``select_ms``: the selection itself -- every stage's selector time (``ImageStats.stage_ms``, with a
    post-ViT method's attention rows and instruction embeddings) plus the in-LLM stage (``llm_ms``)."""

    vit_ms: float
    prefill_ms: float
    decode_tok_s: float
    peak_mem_mb: float
    plan_ms: float = 0.0
    post_ms: float = 0.0
    llm_ms: float = 0.0
    select_ms: float = 0.0


@dataclass
class ImageRun:
    """One method on one image: token counts, analytic numbers, and the measured samples.

    image_tokens: tokens the processor made; kept_tokens: tokens that reach the LLM's last layer;
    tokens_by_stage: ``{"raw": image_tokens, <stage>: tokens after it, ...}`` for the stages that ran;
    llm_tokens / llm_tokens_final: the sequence entering the LLM / from ``llm_layer`` on; the FLOPs and
    analytic KV come from :func:`vlprune.flops.estimate` of the prompt of what ran
    (``CallStats.flops_prompts()``; the unpruned prompt for ``full``).
    """

    path: str
    grid_thw: tuple[int, int, int]
    image_tokens: int
    kept_tokens: int
    prompt_tokens: int
    llm_tokens: int
    flops_prefill: float
    flops_vit: float
    flops_decode_step: float
    kv_bytes_analytic: int
    kv_bytes_measured: int = 0
    first_token: int = -1
    tokens_by_stage: dict = field(default_factory=dict)
    llm_tokens_final: int = 0
    llm_layer: int | None = None
    flops_llm_scoring: float = 0.0
    attn_implementation: str = ""
    samples: list[Sample] = field(default_factory=list)

    @property
    def retain(self) -> float:
        return self.kept_tokens / max(1, self.image_tokens)


def stats(values: list[float]) -> dict:
    """median, min, max, IQR and count of ``values`` (None for an empty list)."""
    if not values:
        return {"median": None, "min": None, "max": None, "iqr": None, "n": 0}
    v = sorted(values)
    q = np.percentile(v, [25, 75]) if len(v) > 1 else (v[0], v[0])
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "iqr": float(q[1] - q[0]), "n": len(v)}


def _share(part: dict, whole: dict):
    return part["median"] / whole["median"] if part["median"] is not None and whole["median"] else None


@dataclass
class BenchResult:
    config: dict
    shape: str
    family: str
    reduced: bool
    dtype: str
    device: str
    machine: dict
    memory_estimate: dict
    memory_method: str
    timing_method: str
    runs: dict  # method -> list[ImageRun]
    build_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    pipelines: dict = field(default_factory=dict)  # method -> the pipeline it ran, described
    partial: bool = False  # stopped by the time budget before every pass ran

    # --- per-method aggregates over all images (one repeat = one pass over every image)
    def _n_rep(self, method: str) -> int:
        runs = self.runs[method]
        return min(len(r.samples) for r in runs) if runs else 0

    def summary(self, method: str) -> dict:
        runs = self.runs[method]
        n_rep = self._n_rep(method)

        def per_repeat(attr):
            return [sum(getattr(r.samples[k], attr) for r in runs) for k in range(n_rep)]

        def total(attr):
            return sum(getattr(r, attr) for r in runs)

        dec = [statistics.median([r.samples[k].decode_tok_s for r in runs]) for k in range(n_rep)]
        by_stage: dict = {}
        for r in runs:
            for k, v in r.tokens_by_stage.items():
                by_stage[k] = by_stage.get(k, 0) + v
        out = {
            "method": method,
            "pipeline": self.pipelines.get(method, method),
            "images": len(runs),
            "image_tokens": total("image_tokens"),
            "kept_tokens": total("kept_tokens"),
            "retain": total("kept_tokens") / max(1, total("image_tokens")),
            "tokens_by_stage": by_stage,
            "llm_tokens": total("llm_tokens"),
            "llm_tokens_final": total("llm_tokens_final"),
            "llm_layer": runs[0].llm_layer if runs else None,
            "attn_implementation": ",".join(sorted({r.attn_implementation for r in runs})),
            "flops_prefill": total("flops_prefill"),
            "flops_vit": total("flops_vit"),
            "flops_llm_scoring": total("flops_llm_scoring"),
            "flops_decode_step": total("flops_decode_step") / max(1, len(runs)),
            "kv_bytes_analytic": total("kv_bytes_analytic"),
            "kv_bytes_measured": total("kv_bytes_measured"),
            **{a: stats(per_repeat(a)) for a in ("vit_ms", "plan_ms", "post_ms", "llm_ms", "select_ms", "prefill_ms")},
            "decode_tok_s": stats(dec),
            "peak_mem_mb": stats([max(r.samples[k].peak_mem_mb for r in runs) for k in range(n_rep)]),
        }
        # of this method's (pruned) prefill; None without an llm-stage method
        out["llm_ms_share"] = None if out["llm_layer"] is None else _share(out["llm_ms"], out["prefill_ms"])
        # the selection itself (every stage, scoring included) as a share of the prefill; None for full
        out["select_ms_share"] = None if method == "full" else _share(out["select_ms"], out["prefill_ms"])
        fb = sum(r.flops_prefill for r in self.runs["full"])
        out["flops_ratio"] = out["flops_prefill"] / fb if fb else None
        bp = self.summary_prefill_median("full")
        mp = out["prefill_ms"]["median"]
        out["prefill_ratio"] = (mp / bp) if (bp and mp) else None
        out["prefill_speedup"] = (bp / mp) if (bp and mp) else None
        bmin = self._prefill_total("full", min)
        mmin = self._prefill_total(method, min)
        # best-of-repeats: interference from other jobs only adds time, so min is the least disturbed
        out["prefill_speedup_min"] = (bmin / mmin) if (bmin and mmin) else None
        if out["prefill_speedup_min"] and out["flops_ratio"]:
            out["speedup_efficiency_min"] = out["prefill_speedup_min"] * out["flops_ratio"]
        if out["prefill_speedup"] and out["flops_ratio"]:
            # measured speedup / analytic speedup (1 / FLOPs ratio): 1.0 = time falls exactly as FLOPs do
            out["speedup_efficiency"] = out["prefill_speedup"] * out["flops_ratio"]
        return out

    def summary_prefill_median(self, method: str):
        return self._prefill_total(method, statistics.median)

    def _prefill_total(self, method: str, reduce):
        """``reduce`` over repeats of the prefill ms summed over images."""
        runs = self.runs[method]
        n_rep = self._n_rep(method)
        if not n_rep:
            return None
        return reduce([sum(r.samples[k].prefill_ms for r in runs) for k in range(n_rep)])

    def to_dict(self) -> dict:
        per_image = {}
        for m, runs in self.runs.items():
            per_image[m] = []
            for r in runs:
                d = {k: v for k, v in dataclasses.asdict(r).items() if k != "samples"}
                d["retain"] = r.retain
                for attr in SAMPLE_FIELDS:
                    d[attr] = stats([getattr(s, attr) for s in r.samples])
                d["llm_ms_share"] = None if r.llm_layer is None else _share(d["llm_ms"], d["prefill_ms"])
                d["select_ms_share"] = None if m == "full" else _share(d["select_ms"], d["prefill_ms"])
                d["prefill_ms_passes"] = [s.prefill_ms for s in r.samples]  # in pass order, to see drift
                per_image[m].append(d)
        return {
            "shape": self.shape, "family": self.family, "reduced_depth": self.reduced, "dtype": self.dtype,
            "device": self.device, "machine": self.machine, "config": self.config,
            "memory_estimate": self.memory_estimate, "memory_method": self.memory_method,
            "timing_method": self.timing_method, "build_s": self.build_s, "notes": self.notes,
            "partial": self.partial, "methods": [self.summary(m) for m in self.runs], "per_image": per_image,
        }


# ---------------------------------------------------------------------------------------------- output
def _fmt_stat(s: dict, fmt: str = "{:.0f}") -> str:
    if s["median"] is None or (isinstance(s["median"], float) and math.isnan(s["median"])):
        return "-"
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}-{fmt.format(s['max'])}]"


def _num(x, fmt: str) -> str:
    return format(x if x is not None else float("nan"), fmt)


def format_table(res: BenchResult) -> str:
    d = res.to_dict()
    lines = []
    depth = "REDUCED DEPTH (not the real model's latency)" if res.reduced else "full depth"
    m = res.machine
    lines.append(f"{res.shape} ({res.family}), random weights, {depth}; {res.dtype} on {res.device} "
                 f"({m.get('gpu') or m['cpu']}, {m['threads']} threads); {len(res.runs['full'])} image(s); "
                 f"median [min-max] of {res.config['repeats']} repeat(s) after {res.config['warmup']} warm-up; "
                 f"times summed over images{'; PARTIAL (time budget ran out)' if res.partial else ''}")
    w = max([11] + [len(m) for m in res.runs])
    hdr = (f"{'method':<{w}} {'kept/tokens':>13} {'retain':>7} {'TFLOPs':>8} {'FLOPs x':>8} {'ViT ms':>19} "
           f"{'prefill ms':>21} {'speedup':>7} {'eff':>5} {'best-of':>8} {'decode tok/s':>16} {'peak MiB':>16} {'KV MiB':>13}")
    lines.append(hdr)
    for s in d["methods"]:
        kvm = s["kv_bytes_measured"] / 2**20
        kva = s["kv_bytes_analytic"] / 2**20
        lines.append(
            f"{s['method']:<{w}} {str(s['kept_tokens']) + '/' + str(s['image_tokens']):>13} {s['retain']:>7.1%} "
            f"{s['flops_prefill'] / 1e12:>8.3f} {_num(s['flops_ratio'], '>8.3f')} {_fmt_stat(s['vit_ms']):>19} "
            f"{_fmt_stat(s['prefill_ms']):>21} {_num(s['prefill_speedup'], '>6.2f')}x "
            f"{_num(s.get('speedup_efficiency'), '>5.2f')} {_num(s.get('prefill_speedup_min'), '>7.2f')}x "
            f"{_fmt_stat(s['decode_tok_s'], '{:.1f}'):>16} {_fmt_stat(s['peak_mem_mb']):>16} {kvm:>6.1f}/{kva:<6.1f}"
        )
    lines.append("FLOPs x = analytic prefill FLOPs / full; speedup = full prefill ms / method prefill ms (medians); "
                 "eff = speedup x FLOPs ratio (1.0: time falls as FLOPs do); best-of = the speedup of the fastest "
                 "repeats; KV MiB = measured/analytic")
    lines.append(f"\n{'method':<{w}} {'tokens by stage (summed over images)':<44} {'K':>3} {'attention':<18} "
                 f"{'plan ms':>8} {'post ms':>8} {'LLM-stage ms':>13} {'of prefill':>10} {'select ms':>10} "
                 f"{'of prefill':>10}")
    for s in d["methods"]:
        stages = " -> ".join(f"{k} {v}" for k, v in s["tokens_by_stage"].items())
        share = "-" if s["llm_ms_share"] is None else f"{s['llm_ms_share']:.2%}"
        sel = "-" if s["select_ms_share"] is None else f"{s['select_ms_share']:.2%}"
        lines.append(f"{s['method']:<{w}} {stages:<44} {s['llm_layer'] if s['llm_layer'] is not None else '-':>3} "
                     f"{s['attn_implementation']:<18} {_num(s['plan_ms']['median'], '>8.1f')} "
                     f"{_num(s['post_ms']['median'], '>8.1f')} {_num(s['llm_ms']['median'], '>13.1f')} {share:>10} "
                     f"{_num(s['select_ms']['median'], '>10.1f')} {sel:>10}")
    lines.append("K = first decoder layer that runs pruned; LLM-stage ms = in-LLM scoring + selection (host timer), "
                 "also as a share of that method's prefill; select ms = every stage's selection, its scoring included "
                 "(post-ViT attention rows, in-LLM stage)")
    for name, desc in res.pipelines.items():
        lines.append(f"{name}: {desc}")
    lines.append(f"peak memory: {res.memory_method}; timing: {res.timing_method}")
    for n in res.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def save_plot(res: BenchResult, path: str) -> None:
    """Bar plot: ViT / prefill / decode time and FLOPs ratio per method (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = res.to_dict()["methods"]
    names = [s["method"] for s in d]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    vit = [s["vit_ms"]["median"] or 0 for s in d]
    pre = [s["prefill_ms"]["median"] or 0 for s in d]
    err = [[p - (s["prefill_ms"]["min"] or 0) for p, s in zip(pre, d)], [(s["prefill_ms"]["max"] or 0) - p for p, s in zip(pre, d)]]
    axes[0].bar(x, pre, color="#4c72b0", label="prefill (TTFT)", yerr=err, capsize=3)
    axes[0].bar(x, vit, color="#dd8452", label="of which ViT")
    axes[0].set_ylabel("ms (sum over images)")
    axes[0].legend(fontsize=8)
    axes[1].bar(x - 0.2, [s["flops_ratio"] for s in d], 0.4, label="analytic FLOPs ratio", color="#55a868")
    axes[1].bar(x + 0.2, [s["prefill_ratio"] or 0 for s in d], 0.4, label="measured prefill ratio", color="#4c72b0")
    axes[1].set_ylabel("vs full")
    axes[1].legend(fontsize=8)
    axes[2].bar(x, [s["decode_tok_s"]["median"] or 0 for s in d], color="#8172b3")
    axes[2].set_ylabel("decode tokens/s")
    for ax in axes:
        ax.set_xticks(x, names, rotation=20)
    depth = " REDUCED DEPTH" if res.reduced else ""
    fig.suptitle(f"{res.shape}{depth}, {res.dtype} on {res.device} ({res.machine.get('gpu') or res.machine['cpu']})",
                 fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(res: BenchResult, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(res.to_dict(), indent=1, default=float))

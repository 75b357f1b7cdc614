"""``summary.json`` per method, and the comparison across methods (``comparison.md`` / ``.json`` / ``.png``).

Efficiency aggregates over the samples that ran (failed ones excluded):

* ``retain``: dataset-level share of visual tokens the LLM held, Σ kept / Σ raw (PixelPrune §4.1:
  large images weigh by their tokens); ``retain_mean``: mean of the per-sample shares;
* ``tokens``: mean visual tokens per sample at each stage;
* ``tflops``: mean analytic prefill TFLOPs (ViT, merger, LLM, total) of what ran (:mod:`vlprune.flops`);
* ``time_ms``: mean and median of each timing (``engine`` module) over the timed samples; a process's
  first call of each method (warm-up: kernel loading, allocator growth) is left out when others exist.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from pathlib import Path

from vlprune.eval.records import write_atomic, write_json

NUMBER = (int, float)


def _num(v) -> bool:
    return isinstance(v, NUMBER) and not isinstance(v, bool) and math.isfinite(v)


def efficiency(records: list[dict]) -> dict:
    ok = [r for r in records if not r["failed"] and r.get("tokens")]
    out: dict = {"samples": len(ok)}
    if not ok:
        return out
    stages: dict[str, list[int]] = {}
    for r in ok:
        for k, v in r["tokens"].items():
            stages.setdefault(k, []).append(v)
    raw = sum(stages.get("raw", []))
    final = sum(list(r["tokens"].values())[-1] for r in ok)
    shares = [r["retain"] for r in ok if _num(r.get("retain"))]
    out["retain"] = final / raw if raw else None
    out["retain_mean"] = statistics.fmean(shares) if shares else None
    out["tokens"] = {k: statistics.fmean(v) for k, v in stages.items()}
    fl = [r["flops"] for r in ok if r.get("flops")]
    if fl:
        out["tflops"] = {k: statistics.fmean(f[k] for f in fl) for k in fl[0]}
    warm = [r for r in ok if r.get("time_ms") and not r.get("cold")]
    timed = warm or [r for r in ok if r.get("time_ms")]
    if timed:
        out["timed_samples"] = len(timed)
        out["timing_excludes_warmup"] = bool(warm) and len(warm) < len(ok)
        out["batch_size"] = max(r.get("batch_size") or 1 for r in timed)
        out["time_ms"] = {
            k: {"mean": statistics.fmean(v), "median": statistics.median(v)}
            for k in timed[0]["time_ms"]
            for v in [[r["time_ms"][k] for r in timed]]
        }
    return out


def run_metadata(**fields) -> dict:
    """Run facts for ``summary.json``: versions, date, machine (as ``vlprune bench`` reports it), plus
    ``fields`` (model, methods, ...)."""
    import torch

    from vlprune import __version__
    from vlprune.bench import machine_info

    machine = machine_info(str(fields.get("device") or "cpu"), torch.get_num_threads())
    machine["host"] = platform.node()
    return {**fields, "vlprune": __version__, "transformers": machine.pop("transformers", None),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine}


def method_summary(ds, method: str, records: list[dict], run: dict, skipped: int = 0) -> dict:
    """summary.json of one method: counts, the dataset's ``summarize`` output, efficiency, run metadata."""
    failed = sum(1 for r in records if r["failed"])
    fmt = sum(1 for r in records if r["format_error"] and not r["failed"])
    return {
        "dataset": ds.name, "method": method, "n": len(records), "n_failed": failed, "n_format_error": fmt,
        "n_skipped_by_evaluator": skipped, "metrics": ds.summarize(records), "efficiency": efficiency(records),
        "run": run,
    }


# ---------------------------------------------------------------------------------------------- comparison
def top_metrics(metrics: dict) -> dict[str, float]:
    """The top-level numeric entries of a ``summarize`` output (nested breakdowns left out)."""
    return {k: float(v) for k, v in metrics.items() if _num(v)}


def primary_metric(ds, metrics: dict) -> str | None:
    """The dataset's headline metric: its ``primary_metric`` attribute, else its first top-level number."""
    name = getattr(ds, "primary_metric", None)
    if name:
        return name
    return next(iter(top_metrics(metrics)), None)


def comparison(ds, summaries: list[dict], title: str = "") -> dict:
    """Rows per method: metrics and their change vs ``full``, retained tokens, FLOPs, times."""
    full = next((s for s in summaries if s["method"] == "full"), summaries[0])
    base = top_metrics(full["metrics"])
    rows = []
    for s in summaries:
        m = top_metrics(s["metrics"])
        e = s["efficiency"]
        t = e.get("time_ms", {})
        rows.append({
            "method": s["method"], "n": s["n"], "n_failed": s["n_failed"], "metrics": m,
            "delta_vs_full": {k: v - base[k] for k, v in m.items() if k in base},
            "retain": e.get("retain"), "tokens_final": list(e["tokens"].values())[-1] if e.get("tokens") else None,
            "tflops": e.get("tflops"), "prefill_ms": t.get("prefill", {}).get("mean"),
            "ttft_ms": t.get("ttft", {}).get("mean"), "vit_ms": t.get("vit", {}).get("mean"),
        })
    return {"dataset": ds.name, "title": title or ds.name, "primary_metric": primary_metric(ds, full["metrics"]),
            "rows": rows}


def _fmt(v, spec: str = ".4g", signed: bool = False) -> str:
    if v is None:
        return "—"
    return format(v, ("+" if signed else "") + spec)


def comparison_markdown(comp: dict) -> str:
    p = comp["primary_metric"]
    head = ["method", p or "metric", "Δ vs full", "retained tokens", "visual tokens", "TFLOPs ViT", "TFLOPs LLM",
            "TFLOPs total", "prefill ms", "ViT ms", "n", "failed"]
    lines = [f"# {comp['title']}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in comp["rows"]:
        tf = r["tflops"] or {}
        lines.append("| " + " | ".join([
            r["method"], _fmt(r["metrics"].get(p)), _fmt(r["delta_vs_full"].get(p), signed=True),
            _fmt(r["retain"] * 100, ".1f") + "%" if r["retain"] is not None else "—",
            _fmt(r["tokens_final"], ".1f"), _fmt(tf.get("vit")), _fmt(tf.get("llm")), _fmt(tf.get("total")),
            _fmt(r["prefill_ms"], ".1f"), _fmt(r["vit_ms"], ".1f"), str(r["n"]), str(r["n_failed"]),
        ]) + " |")
    lines += ["", "Times: means over timed samples (warm-up call excluded); with batch > 1 a sample's times "
              "are its batch's. TFLOPs: analytic prefill FLOPs (vlprune.flops)."]
    return "\n".join(lines) + "\n"


def save_comparison_plot(path: str | Path, comp: dict) -> bool:
    """Primary metric against retained visual tokens (%), one point per method (legend). False if nothing to plot."""
    p = comp["primary_metric"]
    pts = [(r["retain"] * 100, r["metrics"][p], r["method"]) for r in comp["rows"]
           if r["retain"] is not None and p in r["metrics"]]
    if not pts:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = "osD^vP*Xh<>p"
    for i, (x, y, label) in enumerate(pts):  # same-budget baselines share x: a legend keeps them apart
        ax.scatter([x], [y], s=42, marker=markers[i % len(markers)], label=label, alpha=0.85)
    ax.legend(fontsize=8, loc="best")
    ax.set_xlabel("retained visual tokens (Σ kept / Σ raw, %)")
    ax.set_ylabel(p)
    ax.set_xlim(0, 105)
    ax.grid(alpha=0.3)
    ax.set_title(comp["title"], fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_comparison(out: str | Path, ds, summaries: list[dict], title: str = "") -> dict:
    out = Path(out)
    comp = comparison(ds, summaries, title)
    write_json(out / "comparison.json", comp)
    write_atomic(out / "comparison.md", comparison_markdown(comp))
    save_comparison_plot(out / "comparison.png", comp)
    return comp

"""The papers' tables as :class:`~vlprune.eval.suite_spec.Suite` data (what ``eval suite`` runs).

Main tables:

* ``pixelprune-docs`` -- PixelPrune Table 1 (training-free documents): OCRBench, DocVQA, InfoVQA, ChartQA,
  AI2D, MMLongBench-Doc, olmOCR-bench and their Avg.
* ``pixelprune-gui`` -- PixelPrune Table 2, training-free rows (ScreenSpot-v2, ScreenSpot-Pro).
* ``guipruner-agents`` -- GUIPruner's main comparison (settings I / II / III) on GUI-Odyssey,
  AndroidControl, AITW and Mind2Web, every step with its last 4 history screenshots.

Ablations (each in the paper's layout):

* ``pixelprune-orders`` (Table 6: Raster / Serpentine / Pred-2D), ``pixelprune-tau`` (Table 8: MAE and Max
  at τ = 0.005 .. 0.1), ``pixelprune-efficiency`` (Table 4: selector time, retention, FLOPs, ViT and TTFT
  times, speedups on MMLongBench-Doc and ScreenSpot-Pro Scientific), ``pixelprune-depth`` (Table 7: the
  same keep set before the ViT, after ViT block 0 / 4 / 17, after the ViT);
* ``guipruner-layer`` (pruning layer K), ``guipruner-fill`` (SSP's grid fill vs a random fill, and no
  background stratum, ρ = 0), ``guipruner-allocation`` (TAR's linear decay vs uniform allocation).

Protocols. PixelPrune §4.1 and the authors' evaluation code (their bundled VLMEvalKit with its Qwen3-VL
prompts): Qwen3-VL default resolution (min 256², max 4096² px; OCRBench min 10·10·32² = 102,400 px, as the
authors' Qwen3-VL wrapper sets it), greedy, batch 1, ``max_new_tokens`` 512 (olmOCR-bench 16,384), exact
matching (τ = 0), baselines at PixelPrune's per-image budget. GUIPruner §4: γ = 0.2, ρ = 0.3 (the method's
defaults), base models fine-tuned per benchmark; 4 history screenshots per step (the public reproduction's
setting; the paper states no number). Rows are data: more baselines are added as more :class:`Row` s.
"""

from __future__ import annotations

from vlprune.eval.suite_spec import Benchmark, Column, Row, Suite, register_suite

PIXELPRUNE_LIMITS = dict(min_pixels=256 * 256, max_pixels=4096 * 4096)
PIXELPRUNE_NEW_TOKENS = 512
#: the PixelPrune authors' Qwen3-VL wrapper raises OCRBench's min_pixels to 10 x 10 blocks of 32 px
OCRBENCH_MIN_PIXELS = 10 * 10 * 32 * 32
#: PixelPrune Tables 1-2 rows: full, then the same-budget baselines, then PixelPrune (exact, Pred-2D)
PIXELPRUNE_ROWS = (
    Row("full", "Full", "full"),
    Row("resize", "Resize", "resize"),
    Row("random", "Random", "random"),
    Row("conncomp", "ConnComp", "conncomp"),
    Row("pixelprune", "PixelPrune", "pixelprune"),
)
#: dataset options of the authors' protocol (prompts of their Qwen3-VL wrapper; VLMEvalKit's metrics: its
#: ANLS on the stripped response -- vlprune's ``lmms-eval`` variant -- and its relaxed accuracy since 2025-09)
AUTHORS = {
    "docvqa": {"prompt": "qwen3-vl", "anls_variant": "lmms-eval"},
    "infovqa": {"prompt": "qwen3-vl", "anls_variant": "lmms-eval"},
    "chartqa": {"prompt": "qwen3-vl", "relaxed_variant": "vlmevalkit"},
    "ocrbench": {"match_variant": "multimodalocr"},
    "ai2d": {"prompt": "qwen3-vl"},
    "mmlongbench-doc": {"f1_variant": "vlmevalkit"},
    "olmocr-bench": {},
    "screenspot-v2": {},
    "screenspot-pro": {},
}


def _bench(key: str, dataset: str | None = None, label: str = "", **extra) -> Benchmark:
    """A PixelPrune benchmark with the authors' protocol."""
    dataset = dataset or key
    new_tokens = 16384 if dataset == "olmocr-bench" else PIXELPRUNE_NEW_TOKENS
    options = {**AUTHORS[dataset], **extra}
    return Benchmark(key, dataset, dataset, options, new_tokens,
                     min_pixels=OCRBENCH_MIN_PIXELS if dataset == "ocrbench" else None, label=label)


DOCS = ("OCRBench", "DocVQA", "InfoVQA", "ChartQA", "AI2D", "MML-Doc", "olmOCR")
register_suite(Suite(
    name="pixelprune-docs",
    title="PixelPrune Table 1: training-free document understanding",
    families=("qwen3-vl", "qwen3.5"),
    models="Qwen3-VL-2B / 4B / 8B (Appendix C: Qwen3.5)",
    benchmarks=tuple(_bench(k) for k in ("ocrbench", "docvqa", "infovqa", "chartqa", "ai2d", "mmlongbench-doc",
                                         "olmocr-bench")),
    rows=PIXELPRUNE_ROWS,
    columns=(
        Column("OCRBench", "ocrbench", "score", scale=0.1),  # score out of 1000 -> %
        Column("DocVQA", "docvqa", "anls"),
        Column("InfoVQA", "infovqa", "anls"),
        Column("ChartQA", "chartqa", "relaxed_overall"),
        Column("AI2D", "ai2d", "accuracy"),
        Column("MML-Doc", "mmlongbench-doc", "accuracy"),
        Column("olmOCR", "olmocr-bench", "overall"),
        Column("Avg", mean_of=DOCS),
    ),
    retention_row="pixelprune",
    notes=("Avg: unweighted mean of the seven columns (as the paper's Avg).",
           "OCRBench: the score out of 1,000 / 10. MML-Doc: accuracy of the response itself (the published "
           "evaluators first extract the answer with GPT-4o; vlprune runs no external model).",
           "olmOCR: math tests run the exact-equation check only (no KaTeX rendering), a lower bound.",
           "Retained: Σ kept / Σ raw visual tokens of the PixelPrune row (the baselines keep the same count)."),
    **PIXELPRUNE_LIMITS,
))


_V2 = ("web", "mobile", "desktop")
_PRO = (("Dev.", "Dev"), ("Creative", "Creative"), ("CAD", "CAD"), ("Sci.", "Scientific"), ("Office", "Office"),
        ("OS", "OS"))

register_suite(Suite(
    name="pixelprune-gui",
    title="PixelPrune Table 2: GUI grounding, training-free",
    families=("qwen3-vl",),
    models="Qwen3-VL-2B",
    benchmarks=(_bench("screenspot-v2"), _bench("screenspot-pro")),
    rows=PIXELPRUNE_ROWS,
    columns=(
        *(Column(s.capitalize(), "screenspot-v2", f"{s}_accuracy", where={"split": s}, group="V2") for s in _V2),
        Column("Avg", "screenspot-v2", mean_of=tuple(f"V2 {s.capitalize()}" for s in _V2), group="V2"),
        *(Column(label, "screenspot-pro", f"{g.lower()}_accuracy", where={"group": g}, group="Pro")
          for label, g in _PRO),
        Column("Avg", "screenspot-pro", mean_of=tuple(f"Pro {label}" for label, _ in _PRO), group="Pro"),
    ),
    retention_row="pixelprune",
    notes=("Avg: unweighted mean of the group's columns (as the paper's Avg columns are).",
           "The paper's PixelPrune (+KD) row needs a distilled checkpoint: run this suite with it as --model."),
    **PIXELPRUNE_LIMITS,
))


# ---------------------------------------------------------------------------------------------- PixelPrune ablations
#: Tables 6-8 benchmarks: three document benchmarks and ScreenSpot-v2's splits
ABLATION_BENCHES = (_bench("docvqa"), _bench("infovqa"), _bench("chartqa"), _bench("screenspot-v2"))
_ABL = (("DocVQA", "docvqa", "anls", {}), ("InfoVQA", "infovqa", "anls", {}),
        ("ChartQA", "chartqa", "relaxed_overall", {}),
        *((s.capitalize(), "screenspot-v2", f"{s}_accuracy", {"split": s}) for s in _V2))


def _ret_acc() -> tuple[Column, ...]:
    """Tables 6 and 8: a Ret. (%) and an Acc. column per benchmark."""
    return tuple(col for label, bench, metric, where in _ABL
                 for col in (Column("Ret.", bench, source="retain", where=where, group=label),
                             Column("Acc.", bench, metric, group=label)))


register_suite(Suite(
    name="pixelprune-orders",
    title="PixelPrune Table 6: prediction strategies (retain % and accuracy)",
    families=("qwen3-vl",), models="Qwen3-VL-2B (GUI columns: fine-tuned at a smaller scale, Appendix B)",
    benchmarks=ABLATION_BENCHES,
    rows=tuple(Row(f"pixelprune-{o}", label, "pixelprune", {"pixelprune": {"order": o}})
               for o, label in (("raster", "Raster"), ("serpentine", "Serpentine"), ("pred2d", "Pred-2D"))),
    columns=_ret_acc(),
    notes=("Ret.: Σ kept / Σ raw visual tokens of the row over the column's samples.",),
    **PIXELPRUNE_LIMITS,
))

TAUS = (0.005, 0.02, 0.05, 0.1)
register_suite(Suite(
    name="pixelprune-tau",
    title="PixelPrune Table 8: matching threshold τ and distance (retain % and accuracy)",
    families=("qwen3-vl",), models="Qwen3-VL-2B",
    benchmarks=ABLATION_BENCHES,
    rows=(Row("full", "Full (100%)", "full"), Row("exact", "Exact (τ=0)", "pixelprune"),
          *(Row(f"{m}-{t}", f"{t:.3f}", "pixelprune", {"pixelprune": {"metric": m, "tau": t}}, m.upper()
                if m == "mae" else "Max") for m in ("mae", "max") for t in TAUS)),
    columns=_ret_acc(),
    notes=("Rows under MAE / Max: τ with that distance (pixel values in [0, 1]), anchored near-exact matching.",),
    group_label="Distance",
    **PIXELPRUNE_LIMITS,
))

register_suite(Suite(
    name="pixelprune-efficiency",
    title="PixelPrune Table 4: prefill efficiency (batch 1)",
    families=("qwen3-vl",), models="Qwen3-VL-2B on 8 NVIDIA H20 GPUs",
    benchmarks=(_bench("mmlongbench-doc", label="MML-Doc"),
                _bench("screenspot-pro-sci", "screenspot-pro", "SS-Pro Sci.", only_groups="Scientific")),
    rows=(Row("full", "Full", "full"), Row("pixelprune", "PixelPrune", "pixelprune")),
    columns=(
        Column("Selector (ms)", metric="time_ms.select.mean", source="efficiency", scale=1),
        Column("Retain (%)", metric="retain", source="efficiency"),
        Column("FLOPs (TFLOPs)", metric="tflops.total", source="efficiency", scale=1, fmt=".4g"),
        Column("ViT Lat. (ms)", metric="time_ms.vit.mean", source="efficiency", scale=1),
        Column("TTFT (ms)", metric="time_ms.ttft.mean", source="efficiency", scale=1),
        Column("KV Cache (GB)", source="unmeasured"),
        Column("FLOPs Speedup", speedup_of=("FLOPs (TFLOPs)", "full"), fmt=".2f"),
        Column("TTFT Speedup", speedup_of=("TTFT (ms)", "full"), fmt=".2f"),
    ),
    layout="by_benchmark", group_label="Dataset",
    notes=("Times: means over the timed samples of `eval run` (the first call of each method left out, as the "
           "paper discards each GPU's first sample); FLOPs: analytic prefill TFLOPs of what ran.",
           "KV Cache: not measured by `vlprune eval` ('—').",
           "Speedup: the Full row's value over this row's."),
    **PIXELPRUNE_LIMITS,
))

DEPTHS = (("after-vit", "After ViT", -1), ("after-17", "After 17th", 17), ("after-4", "After 4th", 4),
          ("after-0", "After 0th", 0), ("before-vit", "Before ViT", None))
register_suite(Suite(
    name="pixelprune-depth",
    title="PixelPrune Table 7: where the same keep set is applied (accuracy)",
    families=("qwen3-vl",), models="Qwen3-VL-2B (24 ViT blocks; DeepStack at 5, 11, 17)",
    benchmarks=ABLATION_BENCHES,
    rows=tuple(Row(key, label, "pixelprune", {"pixelprune": {"after_block": k}} if k is not None else {})
               for key, label, k in DEPTHS),
    columns=(Column("Doc", "docvqa", "anls", group="Doc."), Column("Info", "infovqa", "anls", group="Doc."),
             Column("Chart", "chartqa", "relaxed_overall", group="Doc."),
             *(Column(label, "screenspot-v2", f"{s}_accuracy", group="GUI")
               for s, label in (("web", "Web"), ("mobile", "Mob."), ("desktop", "Desk.")))),
    notes=("After k-th: the vision encoder runs on every block up to ViT block k (0-based) and on the kept blocks "
           "after it; a row whose block the model lacks is refused before anything runs.",
           "FLOPs of in-ViT rows count the ViT on every block (an upper bound).",),
    **PIXELPRUNE_LIMITS,
))


# ---------------------------------------------------------------------------------------------- GUIPruner
#: GUIPruner settings: name -> history retain (the current screenshot keeps 75 %)
GUIPRUNER_SETTINGS = {"I": 0.4, "II": 0.2, "III": 0.1}
GUIPRUNER_CURRENT = 0.75
#: history screenshots per step (the public GUIPruner reproduction's; the paper gives no number)
HISTORY_IMAGES = 4
AGENT_BENCHES = (
    Benchmark("gui-odyssey", "gui-odyssey", "gui-odyssey", {"history_images": HISTORY_IMAGES}),
    Benchmark("androidcontrol", "androidcontrol", "androidcontrol", {"history_images": HISTORY_IMAGES}),
    Benchmark("aitw", "aitw", "aitw", {"history_images": HISTORY_IMAGES}),
    *(Benchmark(f"mind2web-{s}", "mind2web", "mind2web", {"split": s, "history_images": HISTORY_IMAGES})
      for s in ("task", "website", "domain")),
)
AGENT_COLUMNS = (
    Column("GUI-Odyssey", "gui-odyssey", "action_matching_score"),
    Column("AndroidControl", "androidcontrol", "step_accuracy"),
    Column("AITW", "aitw", "step_accuracy"),
    *(Column(s.capitalize(), f"mind2web-{s}", "step_success_rate", group="Mind2Web")
      for s in ("task", "website", "domain")),
)
_AGENT_NOTES = ("Every step shows its last 4 history screenshots (history_images; --dataset-opt history_images=N "
                "changes it) and the last 4 actions.",
                "Accuracy depends on the checkpoint: the paper fine-tunes each base model per benchmark.")


def _setting(name: str) -> str:
    return f"{name} ({GUIPRUNER_SETTINGS[name]:.0%} / {GUIPRUNER_CURRENT:.0%})"


def _guipruner_rows() -> tuple[Row, ...]:
    rows = [Row("full", "Full", "full")]
    for name, hist in GUIPRUNER_SETTINGS.items():
        group = _setting(name)
        budget = {"retain": GUIPRUNER_CURRENT, "history_retain": hist}
        rows += [
            Row(f"divprune-{name}", "DivPrune", "divprune", {"divprune": budget}, group),
            Row(f"cdpruner-{name}", "CDPruner", "cdpruner", {"cdpruner": budget}, group),
            Row(f"fastv-{name}", "FastV", "fastv", {"fastv": budget}, group),
            Row(f"mob-{name}", "MoB", "mob", {"mob": budget}, group),
            Row(f"guipruner-{name}", "GUIPruner", "guipruner", {"guipruner": {"preset": name}}, group),
            Row(f"pixelprune+guipruner-{name}", "PixelPrune + GUIPruner", "pixelprune+guipruner",
                {"guipruner": {"preset": name}}, group),
        ]
    return tuple(rows)


def _agent_suite(name: str, title: str, rows: tuple[Row, ...], notes: tuple[str, ...]) -> Suite:
    return register_suite(Suite(
        name=name, title=title, families=("qwen2-vl", "qwen2.5-vl"),
        models="Qwen2-VL-2B and Qwen2.5-VL-7B, each fine-tuned per benchmark before pruning",
        benchmarks=AGENT_BENCHES, rows=rows, columns=AGENT_COLUMNS, notes=notes + _AGENT_NOTES,
    ))


_agent_suite("guipruner-agents",
             "GUIPruner: GUI agent benchmarks under settings I / II / III (history / current retain)",
             _guipruner_rows(),
             ("Setting (history / current): visual tokens kept of the history screenshots / of the current one.",
              "Baselines run at the setting's budget through their retain (current) and history_retain options."))

#: pruning layers K (0-based count of full layers; the paper's default K = 2) of the layer ablation
LAYERS = (1, 2, 3, 4, 6, 8)
_agent_suite("guipruner-layer", "GUIPruner ablation: the LLM layer K from which SSP prunes (setting II)",
             (Row("full", "Full", "full"),
              *(Row(f"guipruner-k{k}", f"K = {k}", "guipruner", {"guipruner": {"preset": "II", "layer": k}},
                    _setting("II")) for k in LAYERS)),
             ("Layers 0 .. K-1 see every token; importance is read at layer K - 1. A K the model cannot use "
              "(too deep; on Qwen3.5 a linear-attention scoring layer) is refused before anything runs.",))


def _ablation_rows(variants: tuple[tuple[str, str, dict], ...]) -> tuple[Row, ...]:
    rows = [Row("full", "Full", "full")]
    for name in GUIPRUNER_SETTINGS:
        rows += [Row(f"{key}-{name}", label, "guipruner", {"guipruner": {"preset": name, **opts}}, _setting(name))
                 for key, label, opts in variants]
    return tuple(rows)


_agent_suite("guipruner-fill", "GUIPruner ablation: SSP's structure stratum and background stratum",
             _ablation_rows((("grid", "Grid fill (SSP)", {}), ("random", "Random fill", {"fill": "random"}),
                             ("no-background", "No background stratum (ρ = 0)", {"rho": 0.0}))),
             ("Random fill: the tokens left after the foreground and background strata are drawn at random "
              "(seeded) instead of by uniform grid sampling.",))
_agent_suite("guipruner-allocation", "GUIPruner ablation: TAR's history budget allocation",
             _ablation_rows((("linear", "Linear decay (γ = 0.2)", {}),
                             ("uniform", "Uniform", {"allocation": "uniform"}))),
             ("Uniform: every history frame keeps λ of its tokens (for frames of one size the same as γ = 1).",))

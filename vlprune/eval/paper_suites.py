"""The papers' main tables as :class:`~vlprune.eval.suites.Suite` data (what ``eval suite`` runs).

* ``pixelprune-docs`` -- PixelPrune Table 1 (training-free document understanding), the four benchmarks
  vlprune ships (OCRBench, DocVQA, InfoVQA, ChartQA; the paper's Avg also covers AI2D, MMLongBench-Doc
  and olmOCRBench, so "Avg (4)" is not comparable with it).
* ``pixelprune-gui`` -- PixelPrune Table 2, training-free rows (ScreenSpot-v2, ScreenSpot-Pro; "Avg" is
  the unweighted mean of the group columns, which reproduces the paper's Avg columns from its cells).
* ``guipruner-agents`` -- GUIPruner's main comparison: settings I / II / III (history / current
  retain 40 / 75 %, 20 / 75 %, 10 / 75 %) for GUIPruner, DivPrune and FastV at the same budgets, and
  PixelPrune in front of GUIPruner, on GUI-Odyssey, AndroidControl, AITW and Mind2Web.

Settings: PixelPrune §4.1 -- Qwen3-VL default resolution (min 256², max 4096² pixels), greedy, batch 1,
``max_new_tokens`` 512, VLMEvalKit prompts, exact matching (tau 0), baselines at PixelPrune's per-image
budget. GUIPruner §4 -- gamma 0.2, rho 0.3 (the method's defaults), base models fine-tuned per benchmark.
"""

from __future__ import annotations

from vlprune.eval.suites import Benchmark, Column, Row, Suite, register_suite

PIXELPRUNE_LIMITS = dict(min_pixels=256 * 256, max_pixels=4096 * 4096)
PIXELPRUNE_NEW_TOKENS = 512
#: PixelPrune Tables 1-2 rows: full, then the same-budget baselines, then PixelPrune (exact, Pred-2D)
PIXELPRUNE_ROWS = (
    Row("full", "Full", "full"),
    Row("resize", "Resize", "resize"),
    Row("random", "Random", "random"),
    Row("conncomp", "ConnComp", "conncomp"),
    Row("pixelprune", "PixelPrune", "pixelprune"),
)


def _vqa(key: str, **options) -> Benchmark:
    return Benchmark(key, key, key, options, PIXELPRUNE_NEW_TOKENS)


register_suite(Suite(
    name="pixelprune-docs",
    title="PixelPrune Table 1: training-free document understanding",
    families=("qwen3-vl", "qwen3.5"),
    models="Qwen3-VL-2B / 4B / 8B (Appendix C: Qwen3.5)",
    benchmarks=(_vqa("ocrbench"), _vqa("docvqa", prompt="vlmevalkit"), _vqa("infovqa", prompt="vlmevalkit"),
                _vqa("chartqa", prompt="vlmevalkit")),
    rows=PIXELPRUNE_ROWS,
    columns=(
        Column("OCRBench", "ocrbench", "score", scale=0.1),  # score out of 1000 -> %
        Column("DocVQA", "docvqa", "anls"),
        Column("InfoVQA", "infovqa", "anls"),
        Column("ChartQA", "chartqa", "relaxed_overall"),
        Column("Avg (4)", mean_of=("OCRBench", "DocVQA", "InfoVQA", "ChartQA")),
    ),
    retention_row="pixelprune",
    notes=("Avg (4) averages these four benchmarks; the paper's Avg also covers AI2D, MMLongBench-Doc, olmOCRBench.",
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
    benchmarks=(Benchmark("screenspot-v2", "screenspot-v2", "screenspot-v2", {}, PIXELPRUNE_NEW_TOKENS),
                Benchmark("screenspot-pro", "screenspot-pro", "screenspot-pro", {}, PIXELPRUNE_NEW_TOKENS)),
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


#: GUIPruner settings: name -> history retain (the current screenshot keeps 75 %)
GUIPRUNER_SETTINGS = {"I": 0.4, "II": 0.2, "III": 0.1}
GUIPRUNER_CURRENT = 0.75


def _guipruner_rows() -> tuple[Row, ...]:
    rows = [Row("full", "Full", "full")]
    for name, hist in GUIPRUNER_SETTINGS.items():
        group = f"{name} ({hist:.0%} / {GUIPRUNER_CURRENT:.0%})"
        budget = {"retain": GUIPRUNER_CURRENT, "history_retain": hist}
        rows += [
            Row(f"divprune-{name}", "DivPrune", "divprune", {"divprune": budget}, group),
            Row(f"fastv-{name}", "FastV", "fastv", {"fastv": budget}, group),
            Row(f"guipruner-{name}", "GUIPruner", "guipruner", {"guipruner": {"preset": name}}, group),
            Row(f"pixelprune+guipruner-{name}", "PixelPrune + GUIPruner", "pixelprune+guipruner",
                {"guipruner": {"preset": name}}, group),
        ]
    return tuple(rows)


register_suite(Suite(
    name="guipruner-agents",
    title="GUIPruner: GUI agent benchmarks under settings I / II / III (history / current retain)",
    families=("qwen2-vl", "qwen2.5-vl"),
    models="Qwen2-VL-2B and Qwen2.5-VL-7B, each fine-tuned per benchmark before pruning",
    benchmarks=(
        Benchmark("gui-odyssey", "gui-odyssey", "gui-odyssey"),
        Benchmark("androidcontrol", "androidcontrol", "androidcontrol"),
        Benchmark("aitw", "aitw", "aitw"),
        *(Benchmark(f"mind2web-{s}", "mind2web", "mind2web", {"split": s}) for s in ("task", "website", "domain")),
    ),
    rows=_guipruner_rows(),
    columns=(
        Column("GUI-Odyssey", "gui-odyssey", "action_matching_score"),
        Column("AndroidControl", "androidcontrol", "step_accuracy"),
        Column("AITW", "aitw", "step_accuracy"),
        *(Column(s.capitalize(), f"mind2web-{s}", "step_success_rate", group="Mind2Web")
          for s in ("task", "website", "domain")),
    ),
    notes=("Setting (history / current): visual tokens kept of the history screenshots / of the current one.",
           "Baselines run at the setting's budget through their retain (current) and history_retain options.",
           "Accuracy depends on the checkpoint: the paper fine-tunes each base model per benchmark."),
))

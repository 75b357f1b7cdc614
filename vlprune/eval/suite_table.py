"""A suite's table from its output folder: measured cells (None where nothing was measured) and the
Markdown in the paper's layout ('—' for unmeasured cells; never a number from the paper).

A cell of row ``r`` and column ``c`` reads ``OUT/<benchmark>/<r.key>/summary.json``:
``c.source = "metrics"`` (the dataset's metric ``c.metric``, a dotted path), ``"efficiency"`` (tokens,
TFLOPs, times, ``efficiency.<path>``), ``"retain"`` (Σ kept / Σ raw visual tokens of the row's records
matching ``c.where``, from ``predictions.jsonl``), or ``"unmeasured"`` (a paper column vlprune does not
measure: always '—'). ``c.mean_of`` averages other columns of the row; ``c.speedup_of = (column, row)``
divides that row's cell of ``column`` by this row's. Benchmark = ``c.bench``; in the ``by_benchmark``
layout every benchmark is a block of rows and columns read the block's benchmark.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from vlprune.eval.config import EvalUsageError

if TYPE_CHECKING:
    from vlprune.eval.suite_spec import Column, Suite


def _metric(summary: dict, path: str, where: str, source: str = "metrics"):
    node = summary.get(source, {})
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if source != "metrics":
                return None  # an efficiency entry the run did not record (e.g. no timed samples)
            keys = ", ".join(k for k, v in summary["metrics"].items() if not isinstance(v, dict))
            raise EvalUsageError(f"{where}: no metric {path!r} in its summary (top-level metrics: {keys})")
        node = node[part]
    return node


def _retention(folder: Path, where: dict) -> float | None:
    """Σ final / Σ raw visual tokens over the records of ``folder`` matching the meta filter ``where``."""
    file = folder / "predictions.jsonl"
    if not file.exists():
        return None
    raw = final = 0
    for line in file.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("failed") or not r.get("tokens") or any((r.get("meta") or {}).get(k) != v for k, v in where.items()):
            continue
        raw += r["tokens"]["raw"]
        final += list(r["tokens"].values())[-1]
    return final / raw if raw else None


def _number(v) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        return None
    return float(v)


def _cell(c: "Column", out: Path, bench: str, key: str, cells: dict, done: dict) -> float | None:
    if c.mean_of:
        vals = [cells[h] for h in c.mean_of]
        return statistics.fmean(vals) if all(v is not None for v in vals) else None
    if c.speedup_of:
        col, ref_row = c.speedup_of
        ref, mine = (done.get((bench, ref_row)) or {}).get(col), cells.get(col)
        return ref / mine if ref is not None and mine else None
    if c.source == "unmeasured":
        return None
    folder = out / bench / key
    if c.source == "retain":
        v = _retention(folder, c.where)
        return None if v is None else v * c.scale
    f = folder / "summary.json"
    if not f.exists():
        return None
    v = _number(_metric(json.loads(f.read_text(encoding="utf-8")), c.metric, str(f), c.source))
    return None if v is None else v * c.scale


def collect(suite: "Suite", out: Path) -> dict:
    """Measured cells (None where nothing is measured), the retention row and the protocol, from ``out``."""
    blocks = [(b.key, b.label or b.key) for b in suite.benchmarks] if suite.layout == "by_benchmark" else [("", "")]
    done: dict[tuple[str, str], dict] = {}
    rows = []
    for bench, blabel in blocks:
        for r in suite.rows:
            cells: dict[str, float | None] = {}
            for c in suite.columns:
                cells[c.header] = _cell(c, out, bench or c.bench, r.key, cells, done)
            done[(bench, r.key)] = cells
            rows.append({"key": f"{bench}/{r.key}" if bench else r.key, "label": r.label,
                         "group": blabel or r.group, "method": r.method, "options": r.options, "cells": cells})
    retention = None
    if suite.retention_row:
        retention = {c.header: _retention(out / c.bench / suite.retention_row, c.where) if c.bench else None
                     for c in suite.columns}
    return {"suite": suite.name, "title": suite.title, "columns": [c.header for c in suite.columns], "rows": rows,
            "retention_row": suite.retention_row, "retention": retention,
            "protocol": [b.protocol(suite) for b in suite.benchmarks]}


def render(suite: "Suite", data: dict) -> str:
    """The table in the paper's layout: Markdown, '—' for cells not measured, then the notes and the protocol."""
    cols = data["columns"]
    fmt = {c.header: c.fmt for c in suite.columns}
    grouped = any(r["group"] for r in data["rows"])
    head = ([suite.group_label] if grouped else []) + ["Method"] + cols
    weights = " (random weights: accuracy is meaningless)" if data.get("random_weights") else ""
    lines = [f"## {suite.title}", "", f"Model: {data.get('model')} ({data.get('family')}){weights}. "
             f"Paper: {suite.models}.", ""]
    if data.get("overrides"):
        lines += ["Settings changed from the paper's: " + ", ".join(f"{k}={v}" for k, v in data["overrides"].items()), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if data.get("retention"):
        label = next(r["label"] for r in data["rows"] if r["key"] == data["retention_row"])
        ret = [f"({v * 100:.1f}%)" if v is not None else "" for v in (data["retention"][c] for c in cols)]
        lines.append("| " + " | ".join(([""] if grouped else []) + [f"retained ({label})"] + ret) + " |")
    last_group = None
    for r in data["rows"]:
        group = r["group"] if r["group"] != last_group else ""
        last_group = r["group"]
        cells = [format(r["cells"][c], fmt[c]) if r["cells"][c] is not None else "—" for c in cols]
        lines.append("| " + " | ".join(([group] if grouped else []) + [r["label"]] + cells) + " |")
    lines += [""] + [f"- {n}" for n in suite.notes]
    lines += ["", "Protocol (per benchmark: dataset, options, pixel bounds, max new tokens):", ""]
    for p in data.get("protocol") or []:
        opts = ", ".join(f"{k}={v!r}" for k, v in p["options"].items()) or "dataset defaults"
        pixels = (f"pixels {p['min_pixels'] or 'model'}..{p['max_pixels'] or 'model'}"
                  if p["min_pixels"] or p["max_pixels"] else "the model's pixel bounds")
        lines.append(f"- {p['benchmark']}: {p['dataset']} ({opts}); {pixels}; max_new_tokens {p['max_new_tokens']}")
    return "\n".join(lines).rstrip() + "\n"

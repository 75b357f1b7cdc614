"""AI2D (Kembhavi et al., ECCV 2016) diagram multiple choice, test split (3,088 questions), accuracy.

Layouts read (``--data`` = the folder, or one file in it):

* VLMEvalKit ``AI2D_TEST.tsv`` (or ``AI2D_TEST_NO_MASK.tsv``): columns ``index``, ``question``, one column
  per option ``A``, ``B``, ... (empty when absent), ``answer`` (the letter), ``image`` (base64), optional
  ``category`` / ``hint``. Ids: ``index``.
* Hub parquet ``lmms-lab/ai2d``: ``data/test-*.parquet`` with ``question``, ``options`` (list), ``answer``
  (the 0-based option index as text, or the letter), ``image``. Ids: ``<file stem>:<index>``.

Prompt (``prompt``): ``"qwen3-vl"`` (default) is the PixelPrune authors' Qwen3-VL prompt of their bundled
VLMEvalKit (``vlmeval/vlm/qwen3_vl/prompt.py``): ``"Question: {q}\\nOptions:\\nA. ..\\nB. ..Please select
the correct answer from the options above."`` -- the last option runs into the instruction there, and is
kept so; ``"vlmevalkit"``: VLMEvalKit's generic multiple-choice prompt (``ImageMCQDataset.build_prompt``:
``Hint``, ``Question``, one option per line, then the instruction and " \\n").

Metric: ``accuracy`` (fraction), ``<category>_accuracy`` when the file has categories, ``n_uninferred``;
the answer is read with VLMEvalKit's matching rule (:mod:`vlprune.eval.metrics.choice`), without its
LLM-judge fallback (its ``exact_matching`` policy): an answer the rule cannot read scores 0.
"""

from __future__ import annotations

import string
from pathlib import Path

from vlprune.eval.base import LoadResult, Parsed, PromptContext, Sample, register_dataset
from vlprune.eval.datasets._common import (
    Collector,
    RecordError,
    TextVQA,
    base64_image,
    choose,
    counts,
    image_cell,
    is_load_problem,
    need,
    parquet_records,
    tsv_records,
    user_turn,
    value,
)
from vlprune.eval.metrics.aggregate import group, micro
from vlprune.eval.metrics.choice import infer_choice

TSV_NAMES = ("AI2D_TEST.tsv", "AI2D_TEST_NO_MASK.tsv")
LETTERS = string.ascii_uppercase


def _qwen3_vl(question: str, options: dict[str, str], hint: str | None) -> str:
    listed = "Options:\n" + "\n".join(f"{k}. {v}" for k, v in options.items())
    return f"Question: {question}\n{listed}Please select the correct answer from the options above."


def _vlmevalkit(question: str, options: dict[str, str], hint: str | None) -> str:
    text = f"Hint: {hint}\n" if hint else ""
    text += f"Question: {question}\n"
    if options:
        text += "Options:\n" + "".join(f"{k}. {v}\n" for k, v in options.items())
        text += "Please select the correct answer from the options above. \n"
    return text


PROMPTS = {"qwen3-vl": _qwen3_vl, "vlmevalkit": _vlmevalkit}


def _letter(answer: str, n_options: int) -> str:
    a = answer.strip()
    if a.isdigit() and int(a) < n_options:
        return LETTERS[int(a)]
    if len(a) == 1 and a in LETTERS[:n_options]:
        return a
    raise RecordError(f"answer {answer!r} is neither an option letter nor an option index (0..{n_options - 1})")


@register_dataset("ai2d")
class AI2D(TextVQA):
    kind = "vqa"
    max_new_tokens = 512
    primary_metric = "accuracy"
    hub_id = "lmms-lab/ai2d"
    hub_patterns = ("data/test-*",)
    layout = "AI2D_TEST.tsv (VLMEvalKit), or lmms-lab/ai2d parquet (data/test-*.parquet)"

    def __init__(self, prompt: str = "qwen3-vl"):
        self.prompt = choose(prompt, PROMPTS, "prompt")

    # ------------------------------------------------------------------------------------------ loading
    def read(self, path: Path) -> LoadResult:
        files = self.find_files(path, lambda f: f.suffix in (".tsv", ".parquet"),
                                ([path / n] for n in TSV_NAMES), ("data/test-*.parquet", "test-*.parquet"))
        col = Collector(self.name)
        for file in files:
            tsv = file.suffix == ".tsv"
            for i, rec in enumerate(tsv_records(file) if tsv else parquet_records(file)):
                with col.record(file, i) as slot:
                    slot.id = str(need(rec, "index", str)) if tsv else f"{file.stem}:{i}"
                    origin = f"{file} [record {i}]"
                    if tsv:
                        options = {c: rec[c] for c in LETTERS if rec.get(c) not in (None, "")}
                        image = base64_image(rec.get("image"), "image", origin)
                    else:
                        listed = need(rec, "options", list)
                        options = {LETTERS[k]: str(v) for k, v in enumerate(listed)}
                        image = image_cell(rec.get("image"), "image", origin)
                    if len(options) < 2:
                        raise RecordError(f"{len(options)} option(s); a multiple-choice question needs at least 2")
                    answer = _letter(str(need(rec, "answer", (str, int))), len(options))
                    meta = {k: rec[k] for k in ("category", "hint") if rec.get(k) not in (None, "")}
                    target = {"options": options, "answer": answer}
                    col.add(Sample(slot.id, [image], need(rec, "question", str), target, meta), file, i)
        return col.result(path)

    # ------------------------------------------------------------------------------------------ scoring
    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        text = PROMPTS[self.prompt](sample.question, sample.target["options"], sample.meta.get("hint"))
        return user_turn(len(sample.images), text)

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if parsed.format_error:
            return {"correct": 0.0, "inferred": 0.0}
        choice = infer_choice(parsed.answer, sample.target["options"])
        return {"correct": float(choice == sample.target["answer"]), "inferred": float(choice is not None)}

    def summarize(self, records: list[dict]) -> dict:
        by_cat = group(((r.get("meta") or {}).get("category"), value(r, "correct")) for r in records)
        out = {"accuracy": micro(value(r, "correct") for r in records)}
        out.update({f"{c}_accuracy": micro(v) for c, v in by_cat.items() if c is not None})
        ran = [r for r in records if not (r.get("failed") or r.get("format_error") or is_load_problem(r))]
        out["n_uninferred"] = sum(1 for r in ran if not value(r, "inferred"))
        return {**out, **counts(records),
                "variants": {"accuracy": "VLMEvalKit can_infer (letter, then option text), no LLM judge",
                             "prompt": self.prompt}}

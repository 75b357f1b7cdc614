"""DocVQA (single page, task 1) and InfographicVQA, scored with ANLS.

Layouts read (``--data`` = the folder, or one file in it):

* DocVQA, RRC release: ``val_v1.0.json`` (or ``val_v1.0_withQT.json``) = ``{"data": [...]}`` with
  records ``questionId``, ``question``, ``image`` ("documents/<name>.png", relative to the JSON's
  folder), ``answers``; images under ``documents/``.
* InfographicVQA, RRC release: ``infographicsVQA_val_v1.0.json`` (or ``..._withQT.json``) with
  records ``questionId``, ``question``, ``image_local_name`` (a file in ``images/`` beside the JSON),
  ``answers``.
* Hub parquet (``lmms-lab/DocVQA``, configs ``DocVQA`` / ``InfographicVQA``): the snapshot folder
  (``<config>/validation-*.parquet``), the config folder (``validation-*.parquet``) or one shard;
  the image is a ``{"bytes", "path"}`` struct. The whole split is held in memory (encoded).

Test files (answers withheld; scored by the RRC server) are refused: every record needs ``answers``.

Ids: ``questionId`` (as a string). Prompt: lmms-eval's default for these tasks (the one its Qwen2-VL /
Qwen2.5-VL runs use): the question, then "\\nAnswer the question using a single word or phrase."
(``prompt="vlmevalkit"``: VLMEvalKit's Qwen2-VL VQA suffix). Generation: ``max_new_tokens`` of the
lmms-eval task yamls (DocVQA 128, InfographicVQA 32).

Metric ``anls`` (mean over questions, a fraction); variant ``lmms-eval`` by default, see
:mod:`vlprune.eval.metrics.vqa`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

from vlprune.eval.base import DatasetError, ImageRef, LoadResult, Parsed, Sample, register_dataset
from vlprune.eval.datasets._common import (
    Collector,
    ShortAnswerVQA,
    choose,
    counts,
    image_cell,
    image_file,
    json_records,
    need,
    parquet_records,
    str_list,
    value,
)
from vlprune.eval.metrics import vqa
from vlprune.eval.metrics.aggregate import micro


@dataclass(frozen=True)
class _Release:
    """Where one benchmark keeps its files."""

    json_names: tuple[str, ...]  # the validation JSON, in order of preference
    image_key: str               # record field naming the image file
    image_dir: str               # folder of the images, relative to the JSON's folder
    hub_config: str              # lmms-lab/DocVQA config (a folder of the snapshot)
    meta_keys: tuple[str, ...]   # record fields kept in Sample.meta


class _DocumentVQA(ShortAnswerVQA):
    hub_id = "lmms-lab/DocVQA"
    release: ClassVar[_Release]

    def __init__(self, prompt: str = "lmms-eval", anls_variant: str = "lmms-eval"):
        super().__init__(prompt)
        self.anls_variant = choose(anls_variant, vqa.ANLS_VARIANTS, "ANLS variant")

    # ------------------------------------------------------------------------------------------ loading
    def _files(self, path: Path) -> list[Path]:
        cfg = self.release.hub_config
        return self.find_files(path, lambda f: f.suffix in (".json", ".parquet"),
                               ([path / name] for name in self.release.json_names),
                               (f"{cfg}/validation-*.parquet", "validation-*.parquet"))

    def read(self, path: Path) -> LoadResult:
        col = Collector(self.name)
        for file in self._files(path):
            if file.suffix == ".parquet":
                self._add_all(col, file, parquet_records(file), lambda rec, origin: image_cell(rec.get("image"), "image", origin))
            else:
                records = json_records(file, "data")
                if records and not any(isinstance(r, dict) and "answers" in r for r in records):
                    raise DatasetError(f"{file}: no record has 'answers' (test split answers are withheld; "
                                       "score test predictions on the RRC server)")
                folder = file.parent / self.release.image_dir
                self._add_all(col, file, records,
                              lambda rec, origin: image_file(folder, need(rec, self.release.image_key, str), origin))
        return col.result(path)

    def _add_all(self, col: Collector, file: Path, records: list, image: Callable[[dict, str], ImageRef]) -> None:
        for i, rec in enumerate(records):
            with col.record(file, i) as slot:
                slot.id = str(need(rec, "questionId", (int, str)))
                question = need(rec, "question", str)
                answers = str_list(rec, "answers")
                meta = {k: rec[k] for k in self.release.meta_keys if rec.get(k) is not None}
                sample = Sample(slot.id, [image(rec, f"{file} [record {i}]")], question, {"answers": answers}, meta)
                col.add(sample, file, i)

    # ------------------------------------------------------------------------------------------ scoring
    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if parsed.format_error:
            return {"anls": 0.0}
        return {"anls": vqa.anls(parsed.answer, sample.target["answers"], self.anls_variant)}

    def summarize(self, records: list[dict]) -> dict:
        return {"anls": micro(value(r, "anls") for r in records), **counts(records),
                "variants": {"anls": self.anls_variant, "prompt": self.prompt}}


@register_dataset("docvqa")
class DocVQA(_DocumentVQA):
    max_new_tokens = 128
    hub_patterns = ("DocVQA/validation-*",)
    layout = "val_v1.0.json (+ documents/), or lmms-lab/DocVQA parquet (DocVQA/validation-*.parquet)"
    release = _Release(("val_v1.0.json", "val_v1.0_withQT.json"), "image", "", "DocVQA", ("question_types", "docId"))


@register_dataset("infovqa")
class InfographicVQA(_DocumentVQA):
    max_new_tokens = 32
    hub_patterns = ("InfographicVQA/validation-*",)
    layout = ("infographicsVQA_val_v1.0.json (+ images/), or lmms-lab/DocVQA parquet "
              "(InfographicVQA/validation-*.parquet)")
    release = _Release(
        ("infographicsVQA_val_v1.0.json", "infographicsVQA_val_v1.0_withQT.json"),
        "image_local_name", "images", "InfographicVQA", ("answer_type", "operation/reasoning"),
    )

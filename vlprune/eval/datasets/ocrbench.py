"""OCRBench (v1, 1,000 items), scored by substring matching; final score out of 1,000.

Layouts read (``--data`` = the folder, or one file in it):

* Yuliang-Liu/MultimodalOCR release: ``OCRBench.json`` (a list of records ``dataset_name``, ``id``,
  ``image_path``, ``question``, ``answers`` (string or list), ``type``) and the image folder
  ``OCRBench_Images/`` (``image_path`` is relative to it). The repository moved the JSON from
  ``OCRBench/json_files/`` to ``OCRBench/OCRBench/``, and the images come as a separate download, so
  the JSON is looked for in the folder, ``json_files/`` and ``OCRBench/``, and ``OCRBench_Images/``
  beside the JSON or in the folder.
* Hub parquet ``echo840/OCRBench``: ``data/test-*.parquet`` (or the shard files) with columns
  ``dataset``, ``question``, ``question_type``, ``answer``, ``image``.

Ids: ``id`` of the release (as a string); ``<file stem>:<0-based index>`` for parquet rows (no id
column). Prompt: the question as is (MultimodalOCR ``scripts/qwenvl.py``; lmms-eval
``tasks/ocrbench/utils.py``); ``max_new_tokens`` 128 (lmms-eval ``ocrbench.yaml``).

Metrics: ``score`` = number of correct items (integer; out of 1,000 on the full benchmark -- on a
subset it is a count, read it with ``n``), and the five reported categories as fractions correct of
the items of that category present (``text_recognition`` -- six types, 300 items --,
``scene_text_centric_vqa``, ``doc_oriented_vqa``, ``key_information_extraction``,
``handwritten_mathematical_expression_recognition``; None when a category has no item). On the full
benchmark each fraction is the published category count divided by its total. Matching variant
``multimodalocr`` by default, see :mod:`vlprune.eval.metrics.vqa`.
"""

from __future__ import annotations

from pathlib import Path

from vlprune.eval.base import DatasetError, LoadResult, Parsed, PromptContext, Sample, register_dataset
from vlprune.eval.datasets._common import (
    Collector,
    RecordError,
    TextVQA,
    choose,
    counts,
    image_cell,
    image_file,
    json_records,
    need,
    parquet_records,
    str_list,
    user_turn,
    value,
)
from vlprune.eval.metrics import vqa

JSON_PLACES = ("OCRBench.json", "json_files/OCRBench.json", "OCRBench/OCRBench.json")
IMAGE_DIR = "OCRBench_Images"
#: record fields (release JSON, Hub parquet) -> (id, source dataset, type, answers, image)
FIELDS = {
    ".json": ("id", "dataset_name", "type", "answers", "image_path"),
    ".parquet": (None, "dataset", "question_type", "answer", "image"),
}


@register_dataset("ocrbench")
class OCRBench(TextVQA):
    max_new_tokens = 128
    hub_id = "echo840/OCRBench"
    hub_patterns = ("data/test-*",)
    layout = (f"OCRBench.json (in the folder, json_files/ or OCRBench/) + {IMAGE_DIR}/, "
              "or echo840/OCRBench parquet (data/test-*.parquet)")

    def __init__(self, match_variant: str = "multimodalocr"):
        self.match_variant = choose(match_variant, vqa.OCRBENCH_VARIANTS, "OCRBench matching variant")

    # ------------------------------------------------------------------------------------------ loading
    def _files(self, path: Path) -> list[Path]:
        return self.find_files(path, lambda f: f.suffix in (".json", ".parquet"),
                               ([path / rel] for rel in JSON_PLACES), ("data/test-*.parquet", "test-*.parquet"))

    def _image_dir(self, json_file: Path, root: Path) -> Path:
        for folder in (json_file.parent / IMAGE_DIR, root / IMAGE_DIR):
            if folder.is_dir():
                return folder
        raise DatasetError(f"{self.name}: no {IMAGE_DIR}/ beside {json_file} or in {root}; "
                           f"expected {self.layout}")

    def read(self, path: Path) -> LoadResult:
        col = Collector(self.name)
        root = path if path.is_dir() else path.parent
        for file in self._files(path):
            id_key, src_key, type_key, ans_key, img_key = FIELDS[file.suffix]
            if file.suffix == ".json":
                records, folder = json_records(file), self._image_dir(file, root)
            else:
                records, folder = parquet_records(file), None
            for i, rec in enumerate(records):
                with col.record(file, i) as slot:
                    slot.id = str(need(rec, id_key, (int, str))) if id_key else f"{file.stem}:{i}"
                    origin = f"{file} [record {i}]"
                    qtype = need(rec, type_key, str)
                    if qtype not in vqa.OCRBENCH_CATEGORIES:
                        raise RecordError(f"field {type_key!r} is not an OCRBench type: {qtype!r}")
                    source = need(rec, src_key, str)
                    image = (image_file(folder, need(rec, img_key, str), origin) if folder is not None
                             else image_cell(rec.get(img_key), img_key, origin))
                    target = {"answers": str_list(rec, ans_key), "dataset_name": source}
                    meta = {"type": qtype, "dataset_name": source}
                    col.add(Sample(slot.id, [image], need(rec, "question", str), target, meta), file, i)
        return col.result(path)

    # ------------------------------------------------------------------------------------------ scoring
    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        return user_turn(len(sample.images), sample.question.strip())

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if parsed.format_error:
            return {"correct": 0.0}
        t = sample.target
        return {"correct": vqa.ocrbench_match(parsed.answer, t["answers"], t["dataset_name"], self.match_variant)}

    def summarize(self, records: list[dict]) -> dict:
        typed = [(r["meta"]["type"], value(r, "correct")) for r in records if (r.get("meta") or {}).get("type")]
        cats = vqa.ocrbench_category_counts(typed)
        return {
            "score": int(sum(value(r, "correct") for r in records)),
            **{c: (k / n if n else None) for c, (k, n) in cats.items()},
            **counts(records),
            "variants": {"score": self.match_variant},
        }

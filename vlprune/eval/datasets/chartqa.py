"""ChartQA test set (human + augmented splits), scored with relaxed accuracy.

Layouts read (``--data`` = the folder, or one file in it; a folder must hold both splits, a file
gives one split):

* vis-nlp release: ``test/test_human.json`` and ``test/test_augmented.json`` (records ``imgname``,
  ``query``, ``label``) with images in ``test/png/``; ``--data`` may be the release root or ``test/``.
* jsonl ports (Qwen-VL / InternVL evaluation data): ``test_human.jsonl`` and ``test_augmented.jsonl``,
  one record per line with ``image`` / ``imgname``, ``question`` / ``query``, ``answer`` / ``label``.
  The ports store image paths relative to their own repositories, so an image is looked up as given
  (relative to the jsonl folder), then by file name in ``png/`` and ``test/png/`` beside it.
* Hub parquet ``lmms-lab/ChartQA``: ``data/test-*.parquet`` (or the shard files) with columns ``type``
  ("human_test" / "augmented_test"), ``question``, ``answer``, ``image``.

Ids: ``<file stem>:<0-based index>`` (``test_human:0``). Prompt: lmms-eval ``chartqa.yaml`` default:
the question, then "\\nAnswer the question using a single word or phrase." (``prompt="vlmevalkit"``:
VLMEvalKit's Qwen2-VL VQA suffix); ``max_new_tokens`` 16 as there.

Metrics (lmms-eval names, fractions): ``relaxed_overall`` (pooled over both splits),
``relaxed_human_split``, ``relaxed_augmented_split``; variant ``lmms-eval`` (prediction, target) by
default, ``qwen-vl`` swaps the arguments -- see :mod:`vlprune.eval.metrics.vqa`.
"""

from __future__ import annotations

from pathlib import Path

from vlprune.eval.base import ImageRef, LoadResult, Parsed, Sample, register_dataset
from vlprune.eval.datasets._common import (
    Collector,
    RecordError,
    ShortAnswerVQA,
    choose,
    counts,
    first_key,
    image_cell,
    image_file,
    json_records,
    jsonl_records,
    need,
    parquet_records,
    str_list,
    value,
)
from vlprune.eval.metrics import vqa
from vlprune.eval.metrics.aggregate import group, micro

SPLITS = ("human", "augmented")
#: Hub ``type`` column -> split
HUB_TYPES = {"human_test": "human", "augmented_test": "augmented"}


def _split_of(file: Path) -> str | None:
    stem = file.stem
    return stem[len("test_"):] if stem in ("test_human", "test_augmented") else None


def _port_image(folder: Path, rel: str, origin: str) -> ImageRef:
    for cand in (folder / rel, folder / "png" / Path(rel).name, folder / "test" / "png" / Path(rel).name):
        if cand.is_file():
            return ImageRef(path=str(cand), origin=origin)
    raise RecordError(f"image {rel!r} not found under {folder} (as given, in png/ or in test/png/)")


@register_dataset("chartqa")
class ChartQA(ShortAnswerVQA):
    max_new_tokens = 16
    hub_id = "lmms-lab/ChartQA"
    hub_patterns = ("data/test-*",)
    layout = ("test/test_human.json + test/test_augmented.json (+ test/png/), test_human.jsonl + "
              "test_augmented.jsonl, or lmms-lab/ChartQA parquet (data/test-*.parquet)")

    def __init__(self, prompt: str = "lmms-eval", relaxed_variant: str = "lmms-eval"):
        super().__init__(prompt)
        self.relaxed_variant = choose(relaxed_variant, vqa.RELAXED_VARIANTS, "relaxed-accuracy variant")

    # ------------------------------------------------------------------------------------------ loading
    def _files(self, path: Path) -> list[Path]:
        def ok(f: Path) -> bool:
            return f.suffix == ".parquet" or (f.suffix in (".json", ".jsonl") and _split_of(f) is not None)

        layouts = ((path / "test", ".json"), (path, ".json"), (path, ".jsonl"))
        return self.find_files(path, ok, ([d / f"test_{s}{ext}" for s in SPLITS] for d, ext in layouts),
                               ("data/test-*.parquet", "test-*.parquet"))

    def read(self, path: Path) -> LoadResult:
        col = Collector(self.name)
        for file in self._files(path):
            if file.suffix == ".parquet":
                records = parquet_records(file)
            else:
                records = json_records(file) if file.suffix == ".json" else jsonl_records(file)
            for i, rec in enumerate(records):
                with col.record(file, i) as slot:
                    slot.id = f"{file.stem}:{i}"
                    origin = f"{file} [record {i}]"
                    if file.suffix == ".parquet":
                        kind = need(rec, "type", str)
                        if kind not in HUB_TYPES:
                            raise RecordError(f"field 'type' must be one of {', '.join(HUB_TYPES)}, got {kind!r}")
                        split, image = HUB_TYPES[kind], image_cell(rec.get("image"), "image", origin)
                    elif file.suffix == ".json":
                        split = _split_of(file)
                        image = image_file(file.parent / "png", need(rec, "imgname", str), origin)
                    else:
                        split = _split_of(file)
                        image = _port_image(file.parent, need(rec, first_key(rec, ("image", "imgname")), str), origin)
                    question = need(rec, first_key(rec, ("question", "query")), str)
                    answers = str_list(rec, first_key(rec, ("answer", "label")))
                    col.add(Sample(slot.id, [image], question, {"answers": answers}, {"split": split}), file, i)
        return col.result(path)

    # ------------------------------------------------------------------------------------------ scoring
    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        if parsed.format_error:
            return {"relaxed": 0.0}
        return {"relaxed": vqa.relaxed_accuracy(parsed.answer, sample.target["answers"], self.relaxed_variant)}

    def summarize(self, records: list[dict]) -> dict:
        by_split = group(((r.get("meta") or {}).get("split"), value(r, "relaxed")) for r in records)
        return {
            "relaxed_overall": micro(value(r, "relaxed") for r in records),
            **{f"relaxed_{s}_split": micro(by_split.get(s, ())) for s in SPLITS},
            **counts(records),
            "variants": {"relaxed_overall": self.relaxed_variant, "prompt": self.prompt},
        }

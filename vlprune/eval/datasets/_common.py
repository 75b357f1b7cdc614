"""Shared plumbing of the file-based benchmarks: reading JSON / JSONL / parquet records, checking
fields, turning bad records into :class:`LoadProblem` entries, unique ids, Hub snapshots, summary counts.

A loader walks the records of a file inside ``with collector.record(file, index) as slot:``; a
:class:`RecordError` raised in the block becomes a counted LoadProblem for that file and index (the
record stays in the denominator, scored 0), anything else propagates.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator

from vlprune.eval.base import DatasetError, EvalDataset, ImageRef, LoadProblem, LoadResult, Parsed, PromptContext, Sample


class RecordError(ValueError):
    """One record cannot be used (missing field, wrong type, missing image); names the field."""


# ---------------------------------------------------------------------------------------------- reading
def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); JSON files are UTF-8") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None


def json_records(path: Path, key: str | None = None) -> list:
    """The record list of a JSON file: the top-level list, or ``data[key]`` when ``key`` is given."""
    data = read_json(path)
    if key is not None:
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: expected a JSON object with a {key!r} list of records")
        return data[key]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def jsonl_records(path: Path) -> list:
    """One value per non-empty line; a line that is not JSON becomes a :class:`RecordError` in its place."""
    out: list = []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    for k, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError as exc:
            out.append(RecordError(f"line {k} is not UTF-8 text ({exc.reason})"))
        except json.JSONDecodeError as exc:
            out.append(RecordError(f"line is not valid JSON ({exc.msg})"))
    return out


def tsv_records(path: Path) -> list[dict]:
    """Rows of a VLMEvalKit TSV (``pandas.to_csv(sep="\\t")``: a header line, minimal quoting) as dicts of strings."""
    import csv
    import sys

    csv.field_size_limit(sys.maxsize)  # base64 images and PDFs sit in single cells
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if not reader.fieldnames:
                raise DatasetError(f"{path}: empty TSV (no header line)")
            return [dict(r) for r in reader]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable TSV ({exc})") from None


def base64_image(text: Any, column: str, origin: str) -> ImageRef:
    """An image stored base64-encoded in a TSV cell (VLMEvalKit's layout)."""
    import base64
    import binascii

    if not isinstance(text, str) or not text.strip():
        raise RecordError(f"column {column!r} holds no base64 image")
    try:
        return ImageRef(data=base64.b64decode(text, validate=False), origin=origin)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"column {column!r} is not base64 ({exc})") from None


def parquet_records(path: Path) -> list[dict]:
    """Rows of a parquet file as dicts (image columns are ``{"bytes": ..., "path": ...}`` structs)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a damaged or foreign file
        raise DatasetError(f"{path}: cannot read as parquet ({exc})") from None


# ---------------------------------------------------------------------------------------------- fields
def need(rec: Any, key: str, types: type | tuple[type, ...]) -> Any:
    """``rec[key]`` checked against ``types`` (bool is never accepted as a number)."""
    if isinstance(rec, RecordError):
        raise rec
    if not isinstance(rec, dict):
        raise RecordError(f"record is a {type(rec).__name__}, not an object")
    if key not in rec or rec[key] is None:
        raise RecordError(f"field {key!r} is missing")
    value = rec[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        names = "/".join(t.__name__ for t in _as_tuple(types))
        raise RecordError(f"field {key!r} must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def first_key(rec: Any, keys: tuple[str, ...]) -> str:
    """The first of ``keys`` present in ``rec`` (alternative field names of the published ports)."""
    if isinstance(rec, RecordError):
        raise rec
    for k in keys:
        if isinstance(rec, dict) and rec.get(k) is not None:
            return k
    raise RecordError(f"none of the fields {', '.join(map(repr, keys))} is present")


def str_list(rec: Any, key: str) -> list[str]:
    """A field holding one string or a non-empty list of strings, as a list."""
    value = need(rec, key, (str, list))
    out = [value] if isinstance(value, str) else value
    if not out or not all(isinstance(v, str) for v in out):
        raise RecordError(f"field {key!r} must be a string or a non-empty list of strings, got {value!r:.60}")
    return out


def numbers(rec: Any, key: str, n: int) -> list[float]:
    value = need(rec, key, list)
    if len(value) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise RecordError(f"field {key!r} must be a list of {n} numbers, got {value!r:.60}")
    return [float(v) for v in value]


def image_file(folder: Path, rel: str, origin: str) -> ImageRef:
    path = folder / rel
    if not path.is_file():
        raise RecordError(f"image file not found: {path}")
    return ImageRef(path=str(path), origin=origin)


def image_cell(cell: Any, column: str, origin: str) -> ImageRef:
    """An image stored in a parquet cell (``{"bytes": ..., "path": ...}``)."""
    if not isinstance(cell, dict) or not isinstance(cell.get("bytes"), (bytes, bytearray)) or not cell["bytes"]:
        raise RecordError(f"column {column!r} holds no encoded image bytes")
    return ImageRef(data=bytes(cell["bytes"]), origin=origin)


# ---------------------------------------------------------------------------------------------- collecting
@dataclass
class _Slot:
    id: str | None = None


@dataclass
class Collector:
    """Samples and problems of one load; raises DatasetError on a duplicate id, naming both records."""

    dataset: str
    samples: list[Sample] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    _seen: dict[str, str] = field(default_factory=dict)

    def _claim(self, sid: str, where: str) -> None:
        if sid in self._seen:
            raise DatasetError(f"{self.dataset}: duplicate sample id {sid!r} in {self._seen[sid]} and {where}")
        self._seen[sid] = where

    @contextmanager
    def record(self, file: Path | str, index: int) -> Iterator[_Slot]:
        """Set ``slot.id`` as soon as the id is known, then :meth:`add` the sample."""
        slot = _Slot()
        try:
            yield slot
        except RecordError as exc:
            where = f"{file} [record {index}]"
            if slot.id is not None:
                self._claim(slot.id, where)
            self.problems.append(LoadProblem(str(file), index, str(exc), True, slot.id, position=len(self.samples)))

    def add(self, sample: Sample, file: Path | str, index: int) -> None:
        self._claim(sample.id, f"{file} [record {index}]")
        self.samples.append(sample)

    def result(self, source: Path) -> LoadResult:
        if not self.samples and not self.problems:
            raise DatasetError(f"{self.dataset}: {source} holds no records")
        return LoadResult(self.samples, self.problems)


# ---------------------------------------------------------------------------------------------- datasets
class FileDataset(EvalDataset):
    """A benchmark read from local files; ``load(None)`` / ``load("hub")`` fetches ``hub_id`` first."""

    #: files of the Hub repository that :meth:`load` needs (``allow_patterns`` of ``snapshot_download``)
    hub_patterns: ClassVar[tuple[str, ...] | None] = None
    #: one line naming the layouts ``read`` accepts, for error messages
    layout: ClassVar[str] = ""

    def load(self, path: str | Path | None) -> LoadResult:
        if path is None or str(path) == "hub":
            path = self.prepare_hub(hub_snapshot(self.hub_id, self.hub_patterns))
        path = Path(path).expanduser()
        if not path.exists():
            raise DatasetError(f"{self.name}: {path} does not exist; expected {self.layout}")
        return self.read(path)

    def read(self, path: Path) -> LoadResult:
        raise NotImplementedError

    def prepare_hub(self, root: Path) -> Path:
        """Post-download step (e.g. unpacking an image archive); the folder to read."""
        return root

    def no_layout(self, path: Path) -> DatasetError:
        return DatasetError(f"{self.name}: {path} is not in a known layout; expected {self.layout}")

    def find_files(
        self,
        path: Path,
        file_ok: Callable[[Path], bool],
        file_sets: Iterable[list[Path]] = (),
        shards: tuple[str, ...] = (),
    ) -> list[Path]:
        """The files to read: ``path`` itself when it is a file ``file_ok`` accepts; else the first of
        ``file_sets`` whose files all exist; else the parquet shards of the first matching pattern."""
        if path.is_file():
            if file_ok(path):
                return [path]
            raise self.no_layout(path)
        for files in file_sets:
            if files and all(f.is_file() for f in files):
                return list(files)
        hits = glob_one_level(path, shards)
        if hits:
            return hits
        raise self.no_layout(path)


def hub_snapshot(repo_id: str | None, allow_patterns=None) -> Path:
    """Local folder of a Hugging Face Hub dataset repository (downloaded once, then cached).

    Needs network access; ``huggingface_hub`` comes with transformers.
    """
    if repo_id is None:
        raise DatasetError("this dataset has no Hub mirror; pass a local folder")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo_id, repo_type="dataset", allow_patterns=allow_patterns))


def glob_one_level(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Files matching the first pattern that matches anything, sorted (shards in order)."""
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if hits:
            return hits
    return []


# ---------------------------------------------------------------------------------------------- summaries
def is_load_problem(rec: dict) -> bool:
    """A record standing in for a counted LoadProblem (the runner puts ``"load_problem"`` in its meta)."""
    return bool(rec.get("load_problem") or (rec.get("meta") or {}).get("load_problem"))


def value(rec: dict, key: str) -> float:
    """A record's score ``key``; 0 for a format error, a failed sample or a load problem."""
    if rec.get("format_error") or rec.get("failed") or is_load_problem(rec):
        return 0.0
    return float((rec.get("scores") or {})[key])


def counts(records: list[dict]) -> dict:
    """``n`` (every record, load problems included) and how many of them are ``format_errors``
    (unparseable outputs), ``failed`` (samples that could not run) and ``load_problems``."""
    problems = [is_load_problem(r) for r in records]
    failed = [bool(r.get("failed")) and not p for r, p in zip(records, problems)]
    errors = sum(bool(r.get("format_error")) and not f and not p for r, f, p in zip(records, failed, problems))
    return {"n": len(records), "format_errors": errors, "failed": sum(failed), "load_problems": sum(problems)}


# ---------------------------------------------------------------------------------------------- prompts
def user_turn(n_images: int, text: str) -> list[dict]:
    """One user message: ``n_images`` image entries, then the text."""
    return [{"role": "user", "content": [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]}]


def choose(option: str, table, what: str) -> str:
    """``option`` if ``table`` (a mapping or a sequence of names) has it; ValueError listing them."""
    if option not in table:
        raise ValueError(f"unknown {what} {option!r}; expected one of: {', '.join(table)}")
    return option


#: short-answer instruction appended to the question (DocVQA, InfographicVQA, ChartQA), by evaluator:
#: lmms-eval task yamls (``post_prompt`` of the default model), VLMEvalKit ``vlmeval/vlm/qwen2_vl/prompt.py``,
#: and the PixelPrune authors' Qwen3-VL prompt (their bundled VLMEvalKit, ``vlmeval/vlm/qwen3_vl/prompt.py``)
SHORT_ANSWER_PROMPTS: dict[str, str] = {
    "lmms-eval": "\nAnswer the question using a single word or phrase.",
    "vlmevalkit": "\nPlease try to answer the question with short words or phrases if possible.",
    "qwen3-vl": "\nAnswer the question using a single word or phrase.",
}


class TextVQA(FileDataset):
    """A benchmark answered in free text: the raw output is the answer (no format errors)."""

    kind = "vqa"

    def parse(self, text: str, sample: Sample, ctx: PromptContext) -> Parsed:
        return Parsed(answer=text)


class ShortAnswerVQA(TextVQA):
    """Question + a short-answer instruction (``SHORT_ANSWER_PROMPTS[prompt]``)."""

    def __init__(self, prompt: str = "lmms-eval"):
        self.prompt = choose(prompt, SHORT_ANSWER_PROMPTS, "prompt")

    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        return user_turn(len(sample.images), sample.question + SHORT_ANSWER_PROMPTS[self.prompt])

"""Per-sample records: the JSON Lines files ``eval run`` / ``eval score`` write, read back, repair and merge.

One line per sample, appended, flushed and ``fsync``'ed as soon as the sample is done, so a run that is
killed keeps every finished sample. The only damage a crash can leave is a last line without its
newline (the write was cut); :func:`read_records` with ``repair=True`` truncates it away and that sample
runs again. Any other unreadable line is an error naming the file and line: nothing is skipped.

Record (keys always present; ``null`` where a value does not apply)::

    id, index          the dataset's sample id; its 0-based position in the dataset's sample order
    method             method spec (``full``, ``pixelprune``, ``pixelprune+fastv``); null for ``eval score``
    prediction         the raw model text (special tokens skipped)
    answer             the dataset parser's answer (JSON)
    format_error       why the output could not be parsed (the sample then scores 0)
    scores             the dataset's per-sample numbers
    meta               the sample's meta (aggregation keys for ``summarize``)
    failed, error      the sample could not run (missing image, model error ...): error text; scored 0
    sizes, canvas      per image: original (W, H); (W_r, H_r) the model saw
    tokens             visual LLM tokens of the sample per stage: {"raw": n, "<stage>": n, ...}
    retain             last stage / raw
    prompt_tokens      unpadded prompt length before pruning; new_tokens: generated tokens (eos included)
    time_ms            {select, plan, vit, prefill, ttft, decode, total} of the model call (the batch's)
    batch_size, cold   samples in that call; True for a process's first call of a method (warm-up)
    flops              analytic prefill TFLOPs {vit, llm, total} of what ran (vlprune.flops)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

RECORD_KEYS = (
    "id", "index", "method", "prediction", "answer", "format_error", "scores", "meta", "failed", "error",
    "sizes", "canvas", "tokens", "retain", "prompt_tokens", "new_tokens", "time_ms", "batch_size", "cold",
    "flops",
)  # fmt: skip


class RecordError(ValueError):
    """A records / predictions file that cannot be used; the message names the file and line."""


def new_record(**fields) -> dict:
    """A record with every key of :data:`RECORD_KEYS` (unknown keys are refused)."""
    unknown = sorted(set(fields) - set(RECORD_KEYS))
    if unknown:
        raise KeyError(f"unknown record field(s): {', '.join(unknown)}")
    rec = dict.fromkeys(RECORD_KEYS)
    rec["failed"] = False
    rec.update(fields)
    return rec


@dataclass(frozen=True)
class Line:
    """One record and where it came from (1-based line number)."""

    file: str
    lineno: int
    record: dict

    @property
    def where(self) -> str:
        return f"{self.file}, line {self.lineno}"


def read_jsonl(path: str | Path, *, repair: bool = False, require: tuple[str, ...] = ("id",)) -> list[Line]:
    """Objects of a JSON Lines file, in file order.

    A last line without its newline: with ``repair=True`` a cut write (not a whole JSON object) is
    truncated away (that sample runs again) and a whole object gets its newline; without ``repair`` it
    is read like any other line. Blank lines are
    skipped; a line that is not a JSON object, or lacks a key of ``require``, raises :class:`RecordError`.
    """
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise RecordError(f"{path}: is a folder, not a JSON Lines file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror or exc})") from None
    body, sep, tail = data.rpartition(b"\n")
    if not sep:
        body, tail = b"", data
    if tail.strip() and repair:
        if _is_object(tail):  # complete record, only its newline missing: add it
            with open(path, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
        else:  # a cut write: drop it (that sample runs again)
            with open(path, "r+b") as f:
                f.truncate(len(body) + len(sep))
                f.flush()
                os.fsync(f.fileno())
            data = body + sep
    out = []
    for i, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordError(f"{path}, line {i}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise RecordError(f"{path}, line {i}: expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in require if k not in obj]
        if missing:
            raise RecordError(f"{path}, line {i}: missing key(s) {', '.join(missing)}")
        obj["id"] = str(obj["id"]) if "id" in obj else None
        out.append(Line(str(path), i, obj))
    return out


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def index_by_id(lines: Iterable[Line]) -> dict[str, Line]:
    """id -> line; a second line with the same id raises :class:`RecordError` naming both places."""
    seen: dict[str, Line] = {}
    for ln in lines:
        rid = ln.record["id"]
        if rid in seen:
            raise RecordError(f"{ln.where}: duplicate id {rid!r} (first at {seen[rid].where})")
        seen[rid] = ln
    return seen


def check_known_ids(lines: Iterable[Line], known: dict[str, int], what: str = "the dataset") -> None:
    """Every line's id is one of ``known``, else :class:`RecordError` naming the first unknown one."""
    for ln in lines:
        if ln.record["id"] not in known:
            raise RecordError(f"{ln.where}: id {ln.record['id']!r} is not a sample of {what}")


class RecordWriter:
    """Appends records to a JSON Lines file; each line is flushed and fsync'ed before ``write`` returns."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
        self._f.write(line + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file + ``os.replace`` (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: str | Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_records(path: str | Path, records: Iterable[dict]) -> None:
    """Replace ``path`` by ``records`` (one JSON line each), atomically."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records))

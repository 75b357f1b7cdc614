"""Where ``eval run`` / ``eval score`` may write, checked before any dataset is read or model built.

Nothing an evaluation command writes may replace one of its inputs or another command's results:

* ``eval run --out DIR``: ``DIR`` is a folder (or can be made); ``DIR/<method>`` is a folder whose
  records were written by ``eval run`` (a ``run.json`` beside them) or holds no records yet; the files
  the run writes there (``predictions.jsonl``, ``summary.json``, ``run.json``, ``comparison.*``) are not
  folders.
* ``eval score --out DIR``: ``DIR`` is not an ``eval run`` output folder or the folder of one of its
  methods (whose records hold the run's measurements), does not hold the ``--predictions`` file, and holds no ``predictions.jsonl`` /
  ``summary.json`` other than an earlier ``eval score`` output (which it replaces).

Every refusal is an :class:`~vlprune.eval.config.EvalUsageError` (exit 2) naming the flag and the path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vlprune.eval.config import EvalUsageError

PREDICTIONS, SUMMARY, RUN, SHARDS = "predictions.jsonl", "summary.json", "run.json", "shards"
COMPARISON = ("comparison.md", "comparison.json", "comparison.png")
#: ``summary.json["run"]["command"]`` of the files ``eval score`` writes
SCORE_COMMAND = "eval score"


def _creatable(flag: str, path: Path) -> None:
    """``path`` is a folder, or its first existing ancestor is a writable folder."""
    if path.exists():
        if not path.is_dir():
            raise EvalUsageError(f"{flag} {path}: is a file, not a folder; give a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise EvalUsageError(f"{flag} {path}: the folder is not writable")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EvalUsageError(f"{flag} {path}: cannot make the folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EvalUsageError(f"{flag} {path}: cannot make the folder: {parent} is not writable")


def _files_not_folders(flag: str, folder: Path, names) -> None:
    for name in names:
        if (folder / name).is_dir():
            raise EvalUsageError(f"{flag} {folder}: {folder / name} is a folder; the run writes a file there")


def check_run_out(out: str | Path, keys: list[str], flag: str = "--out") -> Path:
    """``eval run``'s output folder for the method folders ``keys`` (see module docstring)."""
    out = Path(out)
    _creatable(flag, out)
    _files_not_folders(flag, out, COMPARISON)
    for key in keys:
        folder = out / key
        _creatable(flag, folder)
        _files_not_folders(flag, folder, (PREDICTIONS, SUMMARY, RUN))
        records = [folder / PREDICTIONS, *sorted((folder / SHARDS).glob("rank*.jsonl"))] if folder.is_dir() else []
        if any(f.is_file() for f in records) and not (folder / RUN).is_file():
            raise EvalUsageError(f"{flag} {out}: {folder} holds records without a run.json, so they were not "
                                 f"written by 'eval run' and cannot be resumed; give another --out")
    return out


def _is_score_output(folder: Path) -> bool:
    try:
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    run = summary.get("run") if isinstance(summary, dict) else None
    return isinstance(run, dict) and run.get("command") == SCORE_COMMAND


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_predictions_file(path: str | Path, flag: str = "--predictions") -> Path:
    """A predictions file to read: an existing regular file (its content is checked when it is read)."""
    path = Path(path)
    if not path.exists():
        raise EvalUsageError(f"{flag} {path}: no such file")
    if path.is_dir():
        hint = f" (e.g. {path / PREDICTIONS})" if (path / PREDICTIONS).is_file() else ""
        raise EvalUsageError(f"{flag} {path}: is a folder; give the JSON Lines file{hint}")
    if not os.access(path, os.R_OK):
        raise EvalUsageError(f"{flag} {path}: the file is not readable")
    return path


def check_score_out(out: str | Path, predictions: Path, flag: str = "--out") -> Path:
    """``eval score``'s output folder (see module docstring); ``predictions`` is the input file."""
    out = Path(out)
    _creatable(flag, out)
    _files_not_folders(flag, out, (PREDICTIONS, SUMMARY))
    for name in (PREDICTIONS, SUMMARY):
        if _same_file(out / name, predictions):
            raise EvalUsageError(f"{flag} {out}: {out / name} is the --predictions file; scoring would "
                                 f"replace its input; give another --out")
    if (out / RUN).exists():
        raise EvalUsageError(f"{flag} {out}: this is an 'eval run' method folder ({out / RUN}); scoring into it "
                             f"would replace the run's records and their measurements; give another --out")
    if any((out / name).exists() for name in COMPARISON):
        raise EvalUsageError(f"{flag} {out}: this is an 'eval run' output folder (it holds comparison files); "
                             f"give another --out")
    written = [out / n for n in (PREDICTIONS, SUMMARY) if (out / n).exists()]
    if written and not _is_score_output(out):
        raise EvalUsageError(f"{flag} {out}: {written[0]} exists and is not an earlier 'eval score' output; "
                             f"scoring would replace it; give another --out (or remove the file)")
    return out

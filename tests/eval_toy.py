"""Two small datasets for the evaluation-runner tests (registered on import) and their fixture writers.

``toy-vqa``: ``questions.json`` = [{"id", "image", "question", "answer"}]; exact match, accuracy = mean.
``toy-point``: ``points.json`` = [{"id", "image", "instruction", "box": [x1, y1, x2, y2] (normalised)}];
the family's point parser (vlprune.eval.coords.find_point), point-in-box accuracy.
A record without its answer / box is a counted load problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from vlprune.eval import DatasetError, EvalDataset, ImageRef, LoadProblem, LoadResult, Parsed, Sample, register_dataset


def _read(path, name: str, dataset: str) -> tuple[Path, list]:
    file = Path(path) / name
    if not file.is_file():
        raise DatasetError(f"{dataset}: {file} not found (expected {name} + images/)")
    rows = json.loads(file.read_text())
    if not isinstance(rows, list):
        raise DatasetError(f"{dataset}: {file}: expected a JSON list of records")
    return file, rows


def _load(path, name, dataset, key) -> LoadResult:
    file, rows = _read(path, name, dataset)
    samples, problems = [], []
    for i, r in enumerate(rows):
        if key not in r:
            problems.append(LoadProblem(str(file), i, f"no {key!r}", id=str(r["id"])))
            continue
        ref = ImageRef(path=str(Path(path) / r["image"]), origin=f"{file} [record {i}]")
        samples.append(Sample(str(r["id"]), [ref], r.get("question") or r.get("instruction"), r[key],
                              {"group": r.get("group", "a")}))
    return LoadResult(samples, problems)


def _turn(sample):
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": sample.question}]}]


@register_dataset("toy-vqa")
class ToyVQA(EvalDataset):
    kind = "vqa"
    max_new_tokens = 3

    def load(self, path):
        return _load(path, "questions.json", "toy-vqa", "answer")

    def messages(self, sample, ctx):
        return _turn(sample)

    def parse(self, text, sample, ctx):
        t = text.strip()
        return Parsed(t) if t else Parsed(None, "empty answer")

    def score(self, parsed, sample):
        if parsed.format_error:
            return {"exact": 0.0}
        return {"exact": float(parsed.answer.lower() == str(sample.target).lower())}

    def summarize(self, records):
        n = len(records)
        acc = sum(r["scores"]["exact"] for r in records) / n if n else None
        return {"accuracy": acc, "n": n, "variants": {"accuracy": "exact match, case-insensitive"}}


@register_dataset("toy-point")
class ToyPoint(EvalDataset):
    kind = "grounding"
    max_new_tokens = 4

    def load(self, path):
        return _load(path, "points.json", "toy-point", "box")

    def messages(self, sample, ctx):
        return _turn(sample)

    def parse(self, text, sample, ctx):
        from vlprune.eval.coords import find_point

        return Parsed(list(find_point(text, ctx.family, ctx.current_canvas)))

    def score(self, parsed, sample):
        if parsed.format_error:
            return {"correct": 0.0}
        (x, y), (x1, y1, x2, y2) = parsed.answer, sample.target
        return {"correct": float(x1 <= x <= x2 and y1 <= y <= y2)}

    def summarize(self, records):
        n = len(records)
        return {"accuracy": sum(r["scores"]["correct"] for r in records) / n if n else None, "n": n}


def _image(path: Path, w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 240, np.uint8)
    img[: h // 4] = (30, 60, 200)
    img[h // 2 :, : w // 3] = rng.integers(0, 255, (h - h // 2, w // 3, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def write_toy_vqa(folder: Path, n: int = 5, *, missing_image: int | None = None, no_answer: int | None = None) -> Path:
    """``n`` questions on small PNGs (sizes vary); optionally one whose image file is absent and one without
    an answer (a counted load problem)."""
    folder = Path(folder)
    rows = []
    for i in range(n):
        img = f"images/q{i}.png"
        if i != missing_image:
            _image(folder / img, 64 + 16 * (i % 3), 48 + 8 * (i % 2), i)
        row = {"id": f"q{i}", "image": img, "question": f"What is shown in picture {i}?", "answer": f"ans{i}",
               "group": "ab"[i % 2]}
        if i == no_answer:
            del row["answer"]
        rows.append(row)
    (folder / "questions.json").write_text(json.dumps(rows))
    return folder


def write_toy_point(folder: Path, items: list[tuple[str, tuple[int, int], list[float]]]) -> Path:
    """items: (id, (W, H), normalised box)."""
    folder = Path(folder)
    rows = []
    for i, (rid, (w, h), box) in enumerate(items):
        _image(folder / f"images/{rid}.png", w, h, i)
        rows.append({"id": rid, "image": f"images/{rid}.png", "instruction": "click the button", "box": box})
    (folder / "points.json").write_text(json.dumps(rows))
    return folder

"""What every evaluation dataset provides, and the registry the datasets add themselves to.

A dataset is one registered class (``@register_dataset("docvqa")``) that turns the benchmark's
published files into :class:`Sample` records and knows how that benchmark is prompted, parsed and
scored. The runner (model, pruning methods, timing, resume) never looks inside a sample:

    ds = create_dataset("docvqa")                         # vlprune.eval.catalog (the lookups)
    loaded = ds.load("/data/docvqa")                      # LoadResult: samples + problems
    msgs = ds.messages(sample, ctx)                       # Qwen chat messages, one image entry per image
    parsed = ds.parse(raw_text, sample, ctx)              # Parsed: answer or format error
    scores = ds.score(parsed, sample)                     # per-sample numbers
    summary = ds.summarize(records)                       # the published evaluator's metric names

Images are referenced, not decoded, at load time (:class:`ImageRef`); the runner opens them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ImageRef:
    """One image of a sample: a file path, or encoded bytes (parquet / TFRecord sources).

    ``origin`` names where it came from (file and record index) for error messages.
    """

    path: str | None = None
    data: bytes | None = None
    origin: str = ""

    def open(self) -> Image.Image:
        """Decoded image (RGB conversion is left to the processor route, as transformers does)."""
        from vlprune.grid import ImageError, load_image

        src = self.path if self.path is not None else self.data
        if src is None:
            raise ImageError(f"{self.origin or 'image'}: no path and no data")
        try:
            return load_image(src)
        except ImageError as exc:
            raise ImageError(f"{self.origin}: {exc}" if self.origin else str(exc)) from None

    def size(self) -> tuple[int, int]:
        """(width, height) without decoding the pixel data."""
        src = self.path if self.path is not None else io.BytesIO(self.data or b"")
        with Image.open(src) as im:
            return im.size


@dataclass
class Sample:
    """One scored unit of a benchmark (a question, a grounding instruction, an agent step).

    id:       the dataset's own id where it has one, else ``<file stem>:<0-based index in that file>``.
    images:   the images of the prompt in order; for agent steps the history screenshots (oldest first)
              then the current screenshot, which is always the last one.
    question: question / instruction / goal text.
    target:   what the metric needs (answers, ground-truth box, action ...), dataset-specific, JSON-able.
    meta:     fields used for aggregation and prompts (split, category, episode, step, history actions, ...).
    """

    id: str
    images: list[ImageRef]
    question: str
    target: Any
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LoadProblem:
    """A record that could not be turned into a sample: its file, its 0-based index there, the reason.

    ``counted``: True when the record still counts in the denominator (scored as wrong), False when the
    published evaluator itself skips such records (e.g. Mind2Web steps without a box). ``position``: how
    many samples the loader had read before this record, i.e. where it stands in the dataset's order
    (None: unknown; the harness then puts it after the loaded samples).
    """

    file: str
    index: int | None
    reason: str
    counted: bool = True
    id: str | None = None
    position: int | None = None

    def __str__(self) -> str:
        where = self.file if self.index is None else f"{self.file} [record {self.index}]"
        return f"{where}: {self.reason}"


@dataclass
class LoadResult:
    samples: list[Sample]
    problems: list[LoadProblem] = field(default_factory=list)


@dataclass(frozen=True)
class PromptContext:
    """What a prompt or a parser needs to know about how the model sees a sample's images.

    family:  vlprune family name (``qwen2-vl`` ...): selects the output convention.
    sizes:   per image, the original (width, height).
    canvas:  per image, the (width, height) the model saw after the processor's resize (and after any
             input-stage method that resized it): Qwen2.5-VL answers in pixels of this canvas.
    """

    family: str
    sizes: tuple[tuple[int, int], ...]
    canvas: tuple[tuple[int, int], ...]

    @property
    def current_size(self) -> tuple[int, int]:
        return self.sizes[-1]

    @property
    def current_canvas(self) -> tuple[int, int]:
        return self.canvas[-1]


@dataclass
class Parsed:
    """A parsed model output. ``answer`` is JSON-able (points are normalised (x, y) of the original
    image); ``format_error`` names why the output could not be parsed (the sample then scores 0)."""

    answer: Any = None
    format_error: str | None = None


# ---------------------------------------------------------------------------------------------- dataset
class EvalDataset:
    """Base class of the benchmarks. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str] = "?"
    #: "vqa", "grounding" or "agent"
    kind: ClassVar[str] = "?"
    #: generation length the published evaluation uses
    max_new_tokens: ClassVar[int] = 64
    #: Hugging Face Hub mirror, for users with network access (``load(None)`` / ``--data hub``)
    hub_id: ClassVar[str | None] = None

    def load(self, path: str | Path) -> LoadResult:
        """Read a local folder or file in the benchmark's published layout.

        Raises :class:`DatasetError` (naming the path and the expected layout) when nothing usable is there.
        """
        raise NotImplementedError

    def messages(self, sample: Sample, ctx: PromptContext) -> list[dict]:
        """Qwen-VL chat messages (``[{"role": ..., "content": [{"type": "image"}, {"type": "text", ...}]}]``),
        one ``{"type": "image"}`` entry per ``sample.images`` entry, in order."""
        raise NotImplementedError

    def parse(self, text: str, sample: Sample, ctx: PromptContext) -> Parsed:
        raise NotImplementedError

    def score(self, parsed: Parsed, sample: Sample) -> dict[str, float]:
        """Per-sample scores (a format error scores 0 on every number)."""
        raise NotImplementedError

    def summarize(self, records: list[dict]) -> dict:
        """Dataset metrics from per-sample records ``{"id", "meta", "scores", "format_error"}``;
        keys are the published evaluator's metric names, plus ``"variants"``: metric -> variant implemented."""
        raise NotImplementedError


class DatasetError(ValueError):
    """A dataset path in the wrong layout or with unusable content; the message names the file."""


_DATASETS: dict[str, type[EvalDataset]] = {}


def register_dataset(name: str):
    """Class decorator: register an :class:`EvalDataset` under ``name`` (looked up by name with
    :mod:`vlprune.eval.catalog`, which imports the built-in datasets first)."""

    def deco(cls):
        if name in _DATASETS and _DATASETS[name] is not cls:
            raise ValueError(f"dataset name {name!r} is already registered by {_DATASETS[name].__name__}")
        cls.name = name
        _DATASETS[name] = cls
        return cls

    return deco

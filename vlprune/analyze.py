"""Per-image analysis and the batch runner behind ``vlprune analyze`` (reusable by harnesses).

    from vlprune.analyze import AnalyzeConfig, analyze_paths
    report = analyze_paths(["/data/screens"], AnalyzeConfig(family="qwen3-vl"))
    print(report.summary.retain, [f.error for f in report.failures])

Per image: tokens (blocks of the resized grid), kept, retain = kept / tokens, duplicate ratio
(Appendix A: 1 - unique blocks / blocks, on the full grid), selector time. Dataset: retain =
Σ kept / Σ tokens, duplicate ratio = 1 - Σ unique / Σ tokens, mean / median selector time.

For the Resize baseline the kept tokens are those of the downscaled image: ``kept`` is its token
count, ``kept_grid`` its grid and ``kept_indices`` all of its blocks; ``resized`` gives its size.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from vlprune.families import get_family
from vlprune.grid import MAX_IMAGE_PIXELS, BlockGrid
from vlprune.methods import Method, PreViTMethod, create_method, list_methods
from vlprune.methods.base import get_method_class
from vlprune.methods.pixelprune import PixelPrune
from vlprune.algorithms.stats import unique_blocks
from vlprune.selection import Selection

#: File name extensions (lower case) picked up when a folder is walked.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


# ---------------------------------------------------------------------------------------- config
@dataclass
class AnalyzeConfig:
    """What to select with and how images are sized.

    order / metric / tau configure PixelPrune, and the reference PixelPrune whose per-image kept
    count sets the budget of the same-budget baselines; seed applies to the seeded baselines;
    retain (baselines only) replaces that budget by a fixed fraction of each image's blocks.
    """

    family: str = "qwen3-vl"
    method: str = "pixelprune"
    order: str = "pred2d"
    metric: str = "max"
    tau: float = 0.0
    seed: int = 0
    retain: float | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self):
        self.family = get_family(self.family).name  # also accepts config.model_type names
        pre_vit = list_methods("pre_vit")
        if self.method not in pre_vit:
            raise ValueError(f"unknown method {self.method!r}; expected one of: {', '.join(pre_vit)}")
        spec = get_family(self.family)
        lo = spec.min_pixels if self.min_pixels is None else self.min_pixels
        hi = spec.max_pixels if self.max_pixels is None else self.max_pixels
        if lo <= 0 or hi < lo:
            raise ValueError(f"min_pixels={lo} / max_pixels={hi}: need 0 < min_pixels <= max_pixels")
        if self.max_image_pixels <= 0:
            raise ValueError(f"max_image_pixels must be positive, got {self.max_image_pixels}")
        if self.retain is not None and "retain" not in self._fields():
            raise ValueError(f"retain applies only to the same-budget baselines, not to method {self.method!r}")
        self.build_method()  # validates order / metric / tau / retain

    def _fields(self) -> set[str]:
        return {f.name for f in fields(get_method_class(self.method))}

    def build_method(self) -> PreViTMethod:
        """The configured method instance (options it does not take are left out)."""
        names = self._fields()
        pp = {"order": self.order, "metric": self.metric, "tau": self.tau}
        opts: dict = {k: v for k, v in pp.items() if k in names}
        if "reference" in names:
            opts["reference"] = PixelPrune(**pp)
        if "seed" in names:
            opts["seed"] = self.seed
        if "retain" in names and self.retain is not None:
            opts["retain"] = self.retain
        return create_method(self.method, **opts)

    def options(self) -> dict:
        """The options that apply to the configured method (for reports)."""
        names = self._fields()
        out = {k: getattr(self, k) for k in ("order", "metric", "tau") if k in names or "reference" in names}
        if "seed" in names:
            out["seed"] = self.seed
        if "retain" in names:
            out["retain"] = self.retain
        return out


# ---------------------------------------------------------------------------------------- results
@dataclass
class ImageResult:
    """Analysis of one image. ``size`` is the resized (height, width) the grid was cut from."""

    path: str
    family: str
    method: str
    size: tuple[int, int]
    grid: tuple[int, int]
    tokens: int
    kept: int
    unique: int
    selector_ms: float
    kept_indices: np.ndarray
    kept_grid: tuple[int, int]
    resized: tuple[int, int] | None = None
    overlay: str | None = None

    @property
    def retain(self) -> float:
        return self.kept / self.tokens

    @property
    def duplicate_ratio(self) -> float:
        return 1.0 - self.unique / self.tokens

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "family": self.family,
            "method": self.method,
            "size": list(self.size),
            "grid": list(self.grid),
            "tokens": self.tokens,
            "kept": self.kept,
            "retain": self.retain,
            "unique": self.unique,
            "duplicate_ratio": self.duplicate_ratio,
            "selector_ms": round(self.selector_ms, 4),
            "kept_grid": list(self.kept_grid),
            "resized": None if self.resized is None else list(self.resized),
            "overlay": self.overlay,
            "kept_indices": self.kept_indices.tolist(),
        }


@dataclass
class ImageFailure:
    """An input that could not be analysed, with the reason."""

    path: str
    error: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error}


@dataclass
class Summary:
    """Dataset-level figures over the analysed images."""

    images: int
    failed: int
    tokens: int
    kept: int
    unique: int
    selector_ms_mean: float
    selector_ms_median: float
    selector_ms_total: float

    @property
    def retain(self) -> float:
        return self.kept / self.tokens if self.tokens else math.nan

    @property
    def duplicate_ratio(self) -> float:
        return 1.0 - self.unique / self.tokens if self.tokens else math.nan

    @classmethod
    def of(cls, results: Sequence[ImageResult], n_failed: int = 0) -> "Summary":
        ms = [r.selector_ms for r in results]
        return cls(
            images=len(results),
            failed=n_failed,
            tokens=sum(r.tokens for r in results),
            kept=sum(r.kept for r in results),
            unique=sum(r.unique for r in results),
            selector_ms_mean=statistics.fmean(ms) if ms else math.nan,
            selector_ms_median=statistics.median(ms) if ms else math.nan,
            selector_ms_total=sum(ms),
        )

    def to_dict(self) -> dict:
        def num(x: float):
            return None if math.isnan(x) else x

        return {
            "images": self.images,
            "failed": self.failed,
            "tokens": self.tokens,
            "kept": self.kept,
            "retain": num(self.retain),
            "unique": self.unique,
            "duplicate_ratio": num(self.duplicate_ratio),
            "selector_ms_mean": num(round(self.selector_ms_mean, 4)),
            "selector_ms_median": num(round(self.selector_ms_median, 4)),
            "selector_ms_total": round(self.selector_ms_total, 4),
        }


@dataclass
class BatchReport:
    results: list[ImageResult] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)

    @property
    def summary(self) -> Summary:
        return Summary.of(self.results, len(self.failures))


# ---------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ImageInput:
    """One file to analyse: ``path`` as the user can find it, ``name`` its path relative to the
    folder argument it was found under (its file name for a file argument)."""

    path: Path
    name: str


def collect_images(paths: Iterable[str | os.PathLike]) -> tuple[list[ImageInput], list[ImageFailure]]:
    """Expand arguments into image files, in argument order; folders are walked recursively in
    sorted order for :data:`IMAGE_EXTENSIONS` (case-insensitive), skipping hidden files and
    folders. A file named explicitly is taken whatever its extension. The same file reached twice
    is analysed once. Missing paths and folders without images come back as failures."""
    out: list[ImageInput] = []
    failures: list[ImageFailure] = []
    seen: set[str] = set()

    def add(p: Path, name: str) -> None:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(ImageInput(p, name))

    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in files:
                    if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                        found.append(Path(root, f))
            if not found:
                failures.append(ImageFailure(str(p), "no image files found in this folder"))
            for f in sorted(found, key=lambda q: q.relative_to(p).parts):
                add(f, f.relative_to(p).as_posix())
        elif p.exists():
            add(p, p.name)
        else:
            failures.append(ImageFailure(str(p), "no such file or folder"))
    return out, failures


# ---------------------------------------------------------------------------------------- analysis
def analyze_grid(grid: BlockGrid, method: Method, path: str = "") -> tuple[ImageResult, Selection]:
    """Run ``method`` on ``grid``; returns the result record and the raw selection."""
    sel = method(grid)
    result = ImageResult(
        path=path or (grid.source or ""),
        family=grid.family.name,
        method=sel.method,
        size=tuple(grid.size),
        grid=tuple(grid.shape),
        tokens=grid.n_blocks,
        kept=sel.n_kept,
        unique=unique_blocks(grid.blocks()),
        selector_ms=sel.selector_ms,
        kept_indices=sel.kept,
        kept_grid=tuple(sel.grid),
        resized=None if sel.resized is None else tuple(sel.resized),
    )
    return result, sel


def load_grid(path, config: AnalyzeConfig) -> BlockGrid:
    return BlockGrid.from_image(
        path, config.family, min_pixels=config.min_pixels, max_pixels=config.max_pixels,
        max_image_pixels=config.max_image_pixels,
    )


def analyze_image(path, config: AnalyzeConfig | None = None, method: Method | None = None) -> ImageResult:
    """Analyse one image file (or PIL image / array) with ``config``."""
    config = config or AnalyzeConfig()
    grid = load_grid(path, config)
    return analyze_grid(grid, method or config.build_method(), str(path))[0]


def warm_up(method: Method, family: str) -> None:
    """Run ``method`` once on a tiny synthetic grid so the first image's selector time does not
    include loading the compiled kernels."""
    from PIL import Image

    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[16:32, 16:48] = 255
    method(BlockGrid.from_image(Image.fromarray(rgb), family))  # same route (array flags) as files


class OverlayNames:
    """Flat, collision-free overlay file names from input names: ``web/a.png`` -> ``web__a.png``;
    a name already given in this run gets ``-2``, ``-3``, ... (case-insensitively)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __call__(self, name: str) -> str:
        stem = os.path.splitext(name)[0].replace("\\", "/").strip("/")
        stem = "__".join(part for part in stem.split("/") if part not in ("", ".", "..")) or "image"
        candidate, k = stem, 1
        while candidate.lower() in self._used:
            k += 1
            candidate = f"{stem}-{k}"
        self._used.add(candidate.lower())
        return candidate + ".png"


def iter_analyze(
    inputs: Sequence[ImageInput],
    config: AnalyzeConfig,
    overlay_dir: str | os.PathLike | None = None,
) -> Iterator[ImageResult | ImageFailure]:
    """Analyse ``inputs`` one by one, yielding a result or a failure for each (a failure never
    stops the run). With ``overlay_dir`` an overlay PNG is written per image (see
    :class:`OverlayNames`) and its path stored in ``ImageResult.overlay``."""
    from vlprune.overlay import save_overlay

    method = config.build_method()
    warm_up(method, config.family)
    names = OverlayNames()
    for item in inputs:
        try:
            grid = load_grid(item.path, config)
            result, sel = analyze_grid(grid, method, str(item.path))
            if overlay_dir is not None:
                target = Path(overlay_dir) / names(item.name)
                result.overlay = str(save_overlay(target, grid.image(), sel))
        except Exception as exc:  # one bad file must not end a long run; the error names it
            msg = str(exc)
            if msg.startswith(f"{item.path}: "):  # ImageError names the input; the record has it already
                msg = msg[len(f"{item.path}: "):]
            if not isinstance(exc, ValueError):
                msg = f"{type(exc).__name__}: {msg}"
            yield ImageFailure(str(item.path), msg)
            continue
        yield result


def analyze_paths(
    paths: Iterable[str | os.PathLike],
    config: AnalyzeConfig | None = None,
    overlay_dir: str | os.PathLike | None = None,
) -> BatchReport:
    """Walk ``paths`` and analyse every image; see :func:`collect_images` and :func:`iter_analyze`."""
    config = config or AnalyzeConfig()
    inputs, failures = collect_images(paths)
    report = BatchReport(failures=list(failures))
    for item in iter_analyze(inputs, config, overlay_dir):
        (report.failures if isinstance(item, ImageFailure) else report.results).append(item)
    return report

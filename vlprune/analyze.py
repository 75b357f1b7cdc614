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

from vlprune.algorithms.stats import unique_blocks
from vlprune.families import get_family
from vlprune.folders import IMAGE_EXTENSIONS, ImageFailure, ImageInput, collect_images  # noqa: F401  (re-exported)
from vlprune.grid import BlockGrid
from vlprune.images import ImageOptions
from vlprune.methods import Method, PreViTMethod, create_method, list_methods
from vlprune.methods.base import get_method_class
from vlprune.options import OptionError
from vlprune.methods.pixelprune import PixelPrune
from vlprune.selection import Selection



# ---------------------------------------------------------------------------------------- config
#: Options of PixelPrune that a same-budget baseline passes to its reference PixelPrune (whose
#: per-image kept count is the baseline's budget).
PIXELPRUNE_OPTIONS = ("order", "metric", "tau")


def _route_options(name: str, options: dict) -> tuple[dict, set[str]]:
    """Keyword arguments of method ``name`` from user ``options`` (None = not given), and the names
    used: a field of the method takes its option; order / metric / tau go to the ``reference``
    PixelPrune of a method that has one instead of those fields."""
    names = {f.name for f in fields(get_method_class(name))}
    given = {k: v for k, v in options.items() if v is not None}
    kwargs = {k: v for k, v in given.items() if k in names}
    ref = {k: v for k, v in given.items() if k in PIXELPRUNE_OPTIONS and k not in names}
    if ref and "reference" in names:
        kwargs["reference"] = PixelPrune(**ref)
    return kwargs, set(kwargs) - {"reference"} | (set(ref) if "reference" in names else set())


def build_methods(names: Sequence[str], options: dict, shared: dict | None = None) -> list[PreViTMethod]:
    """The pre-ViT methods ``names`` built from user ``options`` (None values = not given), with the
    rules of the Python API (each method validates its own options in ``__post_init__``).

    An option given that none of the methods can use raises :class:`OptionError` naming it, as
    :func:`vlprune.create_method` does for an unknown option. ``shared`` options (bench's ``seed``,
    which also seeds the model weights) go to the methods that take them and are not required to.
    """
    pre_vit = list_methods("pre_vit")
    built, used = [], set()
    for name in names:
        if name not in pre_vit:
            raise OptionError("method", f"unknown method {name!r}; expected one of: {', '.join(pre_vit)}")
        kwargs, u = _route_options(name, {**(shared or {}), **options})
        built.append(create_method(name, **kwargs))
        used |= u
    for key, value in options.items():
        if value is not None and key not in used:
            takers = [n for n in pre_vit if key in _route_options(n, {key: value})[1]]
            raise OptionError(key, f"option {key} does not apply to method {', '.join(names)} "
                                   f"(methods that take it: {', '.join(takers) or 'none'})")
    return built


def describe_options(method: PreViTMethod) -> dict:
    """The options of a built method by name (a reference PixelPrune's expanded), for reports."""
    out: dict = {}
    for f in fields(method):
        value = getattr(method, f.name)
        out.update(describe_options(value) if isinstance(value, PixelPrune) else {f.name: value})
    return out


@dataclass
class AnalyzeConfig:
    """What to select with and how images are loaded and sized.

    order / metric / tau configure PixelPrune, or the reference PixelPrune whose per-image kept count
    sets the budget of a same-budget baseline; seed and retain go to the baselines that take them.
    None means "not given" (the method's default); an option the method cannot use is an error.
    image: how images are loaded and sized (:class:`vlprune.images.ImageOptions`).
    """

    family: str = "qwen3-vl"
    method: str = "pixelprune"
    order: str | None = None
    metric: str | None = None
    tau: float | None = None
    seed: int | None = None
    retain: float | None = None
    image: ImageOptions = field(default_factory=ImageOptions)

    def __post_init__(self):
        self.family = get_family(self.family).name  # also accepts config.model_type names
        if not isinstance(self.image, ImageOptions):
            raise TypeError(f"image must be an ImageOptions, got {type(self.image).__name__}")
        self.image.bounds(self.family)
        self.build_method()

    def method_options(self) -> dict:
        return {"order": self.order, "metric": self.metric, "tau": self.tau, "seed": self.seed,
                "retain": self.retain}

    def build_method(self) -> PreViTMethod:
        """The configured method instance (validates its options)."""
        return build_methods([self.method], self.method_options())[0]

    def options(self) -> dict:
        """The options of the configured method, defaults included (for reports)."""
        return describe_options(self.build_method())


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
    return BlockGrid.from_image(path, config.family, config.image)


def analyze_image(path, config: AnalyzeConfig | None = None, method: Method | None = None) -> ImageResult:
    """Analyse one image file (or PIL image / array) with ``config``."""
    config = config or AnalyzeConfig()
    grid = load_grid(path, config)
    return analyze_grid(grid, method or config.build_method(), str(path))[0]


def warm_up(method: Method, family: str) -> None:
    """Run ``method`` once on tiny synthetic grids of both routes (a uint8 image, float32 processor
    rows) so that no timed call includes compiling or loading the selector kernels."""
    from PIL import Image

    spec = get_family(family)
    rgb = np.zeros((2 * spec.block, 2 * spec.block, 3), dtype=np.uint8)
    rgb[: spec.block, : spec.block] = 255
    method(BlockGrid.from_image(Image.fromarray(rgb), family, min_pixels=1))  # same route (array flags) as files
    m, t, p = spec.merge_size, spec.temporal_patch_size, spec.patch_size
    rows = np.zeros((4 * m * m, 3 * t * p * p), dtype=np.float32)
    rows[: m * m] = 1.0
    (grid,) = BlockGrid.from_pixel_values(rows, np.array([[1, 2 * m, 2 * m]]), family)
    method(grid)


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

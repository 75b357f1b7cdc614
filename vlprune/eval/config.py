"""Typed configuration of an evaluation run: which methods (names, compositions, options) and how to run.

Methods are vlprune's registered methods (``vlprune.list_methods()``) or compositions ``a+b`` of them;
options are per method name, ``{"fastv": {"retain": 0.3}}``, validated by ``vlprune.create_method``.
``full`` (nothing pruned) always runs first: every comparison is against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from vlprune.flags import literal, parse_assignment  # noqa: F401  (the shared flag parser, re-exported)

FULL = "full"
_SPEC = re.compile(r"^[A-Za-z0-9_.-]+(\+[A-Za-z0-9_.-]+)*$")


class EvalUsageError(ValueError):
    """A bad flag or option value (exit status 2); the message names the flag or option."""


@dataclass(frozen=True)
class MethodSpec:
    """One evaluated method: ``spec`` = ``name`` or ``a+b`` (stages in the order given), ``options`` per name."""

    spec: str
    options: dict = field(default_factory=dict)
    label: str = ""  # output folder / table name when one spec runs with several option sets

    def __post_init__(self):
        if not _SPEC.match(self.spec):
            raise EvalUsageError(f"--method {self.spec!r}: expected a method name or names joined by '+'")
        if len(set(self.names)) != len(self.names):
            raise EvalUsageError(f"--method {self.spec!r}: a method appears twice")
        if self.label and not re.match(r"^[A-Za-z0-9_.+-]+$", self.label):
            raise EvalUsageError(f"method label {self.label!r}: letters, digits, '_', '.', '+', '-' only")

    @property
    def key(self) -> str:
        """Name of its output folder and table row: ``label`` or the spec."""
        return self.label or self.spec

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.spec.split("+"))

    @property
    def is_full(self) -> bool:
        return self.names == (FULL,)

    def build(self) -> list:
        """The method instances, in the order given, validated as one ``vlprune.apply`` pipeline."""
        from vlprune.methods.base import create_method
        from vlprune.runtime.pipeline import resolve_pipeline

        try:
            methods = [create_method(n, **self.options.get(n, {})) for n in self.names]
            resolve_pipeline(methods)
        except (TypeError, ValueError) as exc:
            raise EvalUsageError(f"--method {self.spec}: {exc}") from None
        return methods

    def describe(self) -> dict:
        return {"key": self.key, "spec": self.spec, "options": {n: dict(self.options.get(n, {})) for n in self.names}}


def method_specs(methods: list[str] | tuple[str, ...], options: dict[str, dict] | None = None) -> list[MethodSpec]:
    """``full`` first, then ``methods`` in the order given (duplicates dropped), each validated by building it.

    ``options``: method name -> {option: value}; an option for a name no method uses is an error.
    """
    options = {k: dict(v) for k, v in (options or {}).items()}
    order = [FULL] + [m for m in methods if m != FULL]
    specs = []
    for spec in dict.fromkeys(order):
        ms = MethodSpec(spec, {n: options[n] for n in spec.split("+") if n in options})
        ms.build()
        specs.append(ms)
    used = {n for s in specs for n in s.names}
    unused = sorted(set(options) - used)
    if unused:
        raise EvalUsageError(f"--opt {unused[0]}.*: method {unused[0]!r} is not among the methods run "
                             f"({', '.join(s.spec for s in specs)})")
    return specs


@dataclass(kw_only=True)
class RunOptions:
    """How samples run (shared by ``eval run`` and ``eval suite``).

    batch_size:     samples per ``generate`` call (left padding); per-sample times are then the batch's.
    max_new_tokens: None = the dataset's published generation length.
    limit:          only the first N samples of the dataset (quick runs).
    min_pixels / max_pixels: the processor's resize limits (None = the model's / family's).
    device:         None = ``cuda`` if available, else ``cpu`` (one GPU per local rank under torchrun).
    dtype:          ``auto`` (bf16 on CUDA, fp32 on CPU), ``bf16``, ``fp16`` or ``fp32``.
    seed:           weights' seed of a ``random:`` model; with ``temperature`` > 0 also the sampling seed.
    temperature:    0 = greedy decoding (default); > 0 samples at this temperature (no top-k / top-p), seeded
                    per batch from ``seed`` and the batch's first sample index (resumable).
    retry_failed:   on resume, run samples recorded as failed again instead of keeping them.
    """

    batch_size: int = 1
    max_new_tokens: int | None = None
    limit: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    device: str | None = None
    dtype: str = "auto"
    seed: int = 0
    temperature: float = 0.0
    retry_failed: bool = False
    progress: bool = True

    def __post_init__(self):
        for name, flag in (("batch_size", "--batch-size"), ("max_new_tokens", "--max-new-tokens"),
                           ("limit", "--limit"), ("min_pixels", "--min-pixels"), ("max_pixels", "--max-pixels")):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise EvalUsageError(f"{flag} must be >= 1, got {v}")
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise EvalUsageError(f"--min-pixels {self.min_pixels} exceeds --max-pixels {self.max_pixels}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 100:
            raise EvalUsageError(f"--temperature must be a number in [0, 100] (0 = greedy), got {t!r}")
        if self.dtype not in ("auto", "bf16", "fp16", "fp32"):
            raise EvalUsageError(f"--dtype {self.dtype!r}: expected auto, bf16, fp16 or fp32")

    def run_options(self) -> dict:
        """The :class:`RunOptions` fields of this object, by name."""
        return {f.name: getattr(self, f.name) for f in fields(RunOptions)}


@dataclass
class EvalConfig(RunOptions):
    """One ``eval run``: a dataset (``data`` = its folder or file), a model (a local checkpoint folder, or
    ``random:<shape>``: random weights, offline processor) and the methods to compare on it; plus the
    :class:`RunOptions` (keyword-only)."""

    dataset: str
    data: str
    model: str
    out: str
    methods: tuple[str, ...] = (FULL,)
    method_options: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        self.methods = tuple(self.methods)

    def specs(self) -> list[MethodSpec]:
        return method_specs(self.methods, self.method_options)

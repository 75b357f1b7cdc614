"""A ``vlprune bench`` request: :class:`BenchConfig`, the named shapes it resolves, the pipelines it runs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from vlprune.images import ImageOptions
from vlprune import options as opt

#: The environment variable through which oneDNN reads its primitive-cache capacity (entries; its
#: default is 1024). oneDNN reads it once per process, when its first primitive is created.
ONEDNN_CACHE_VAR = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"

DTYPES = {"bf16": "bfloat16", "fp32": "float32", "fp16": "float16"}
#: Attention implementations the bench builds the model with (transformers' ``attn_implementation``).
ATTN = ("sdpa", "eager", "flash_attention_2")


class BenchError(ValueError):
    """A bench request that cannot run; raised before the model is built."""


def configure_onednn_cache(capacity: int | None) -> str | None:
    """Hand ``BenchConfig.onednn_cache`` to oneDNN; returns the capacity in effect for this process.

    A 2B model alternating between input sizes (full vs pruned, several images) overflows oneDNN's
    default cache, and evicted primitives and weight reorders are then paid inside timed prefills
    (docs/benchmarks.md). torch has no API for the capacity, so the typed setting is passed through
    oneDNN's own variable; it must happen before the process's first oneDNN primitive (``vlprune bench``
    does it first thing). ``None`` leaves whatever the process already has.
    """
    if capacity is not None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise BenchError(f"onednn_cache must be an integer >= 0 (0 disables oneDNN's cache), got {capacity!r}")
        os.environ[ONEDNN_CACHE_VAR] = str(capacity)
    return os.environ.get(ONEDNN_CACHE_VAR)


# ---------------------------------------------------------------------------------------------- shapes
_EXTRA_SHAPES: dict = {}


def register_shape(shape) -> None:
    """Make an extra :class:`vlprune.shapes.Shape` (e.g. a tiny test architecture) known to the bench."""
    _EXTRA_SHAPES[shape.name] = shape


def _all_shapes() -> dict:
    from vlprune.shapes import SHAPES

    return {**SHAPES, **_EXTRA_SHAPES}


def resolve_shape(shape: str, family: str | None = None):
    """``(family name, Shape)`` for a full shape name (``qwen3-vl-2b``) or an alias resolved with the
    family (``--family qwen3-vl --shape 2b``). Unknown or mismatched names raise :class:`BenchError`."""
    from vlprune.families import get_family

    fam = None
    if family is not None:
        try:
            fam = get_family(family).name
        except ValueError as exc:
            raise BenchError(str(exc)) from None
    shapes = _all_shapes()
    candidates = [shape, f"{fam}-{shape}"] if fam else [shape]
    for name in candidates:
        if name in shapes:
            s = shapes[name]
            if fam is not None and s.family != fam:
                raise BenchError(f"shape {name!r} is a {s.family} architecture, not --family {fam}")
            return s.family, s
    known = sorted(n for n in shapes if fam is None or shapes[n].family == fam)
    aliases = sorted({n[len(fam) + 1:] for n in known if n.startswith(f"{fam}-")}) if fam else []
    hint = f" (aliases for {fam}: {', '.join(aliases)})" if aliases else ""
    if fam is None:
        raise BenchError(f"unknown shape {shape!r}; give a full name or --family with an alias; "
                         f"known shapes: {', '.join(known)}")
    raise BenchError(f"unknown shape {shape!r} for family {fam}; known: {', '.join(known)}{hint}")


def shape_config(shape, layers: int | None, vision_layers: int | None):
    """HF config of ``shape`` with optionally cut LLM / ViT depth (other fields unchanged)."""
    from vlprune.shapes import shape_config as _config

    for flag, v, have in (("--layers", layers, shape.text["num_hidden_layers"]),
                          ("--vision-layers", vision_layers, shape.vision["depth"])):
        if v is not None and v > have:
            raise BenchError(f"{flag} {v} exceeds the shape's {have} {'LLM' if flag == '--layers' else 'ViT'} layers")
    return _config(shape, layers, vision_layers)


# ---------------------------------------------------------------------------------------------- config
@dataclass
class BenchConfig:
    """One ``vlprune bench`` request (``methods`` excludes ``full``, which always runs first).

    methods: pipeline specs, each a registered method or a composition (``"pixelprune+fastv"``, at
        most one method per stage; :func:`vlprune.runtime.resolve_pipeline`).
    options: the named pre-ViT options (tau, order, metric, retain; None = not given), routed to each
        spec's pre-ViT method as :func:`vlprune.analyze.build_methods` does -- one that no spec's
        pre-ViT method can use is refused.
    method_options: ``{method name: {option: value}}`` for any method of any spec (``--opt``),
        validated by :func:`vlprune.create_method`; a name that no spec runs is refused.
    seed: seeds the weights and every method that takes a seed. image: how images are loaded and
        sized (:class:`vlprune.images.ImageOptions`). budget_s: stop after this many seconds (checked
        before each pass over every method and image; the result is then marked partial).
    :func:`vlprune.bench.run.prepare` validates everything with the rules of the Python API and raises
    :class:`BenchError`, ``OptionError`` or ``FlagError`` (naming the option or flag) before the model
    is built.
    """

    images: list[str]
    shape: str = "2b"
    family: str | None = "qwen3-vl"
    methods: list[str] = field(default_factory=lambda: ["pixelprune"])
    options: dict = field(default_factory=dict)
    method_options: dict = field(default_factory=dict)
    dtype: str = "bf16"
    device: str = "cpu"
    threads: int | None = None
    warmup: int = 1
    repeats: int = 3
    decode_tokens: int = 8
    layers: int | None = None
    vision_layers: int | None = None
    image: ImageOptions = field(default_factory=ImageOptions)
    max_memory_gb: float | None = None
    prompt: str = "Describe this image."
    attn: str = "sdpa"
    seed: int = 0
    progress: bool = True
    onednn_cache: int | None = 8192  # oneDNN primitive-cache entries (CPU); None: leave the process's setting
    budget_s: float | None = None

    @property
    def reduced(self) -> bool:
        return self.layers is not None or self.vision_layers is not None

    def check(self) -> None:
        """The run settings, with the shared option rules (:mod:`vlprune.options`)."""
        for name, minimum in (("warmup", 0), ("repeats", 1), ("decode_tokens", 0)):
            opt.integer(name, getattr(self, name), minimum=minimum)
        for name in ("threads", "layers", "vision_layers"):
            if getattr(self, name) is not None:
                opt.integer(name, getattr(self, name), minimum=1)
        for name in ("max_memory_gb", "budget_s"):
            if getattr(self, name) is not None:
                opt.positive(name, getattr(self, name))
        opt.seed(self.seed)
        opt.choice("attn", self.attn, ATTN)
        if not isinstance(self.image, ImageOptions):
            raise TypeError(f"image must be an ImageOptions, got {type(self.image).__name__}")
        if not isinstance(self.prompt, str):
            raise opt.OptionError("prompt", f"option prompt must be a string, got {type(self.prompt).__name__}")
        if not isinstance(self.method_options, dict) or not all(isinstance(v, dict) for v in self.method_options.values()):
            raise TypeError("method_options must be {method name: {option: value}}")


# ---------------------------------------------------------------------------------------------- methods
def _names(spec: str) -> list[str]:
    from vlprune.flags import FlagError
    from vlprune.methods import list_methods

    names = [p.strip() for p in str(spec).split("+")]
    for n in names:
        if n not in list_methods():
            raise FlagError("--method", f"{spec!r}: unknown method {n!r}; expected one of: {', '.join(list_methods())}")
    return names


def build_pipelines(cfg: BenchConfig) -> list:
    """``[("full", None), (spec, Pipeline), ...]`` in the order given (duplicates dropped).

    The named options (tau, order, metric, retain) and the seed go to the specs' pre-ViT methods as in
    ``analyze``; ``method_options`` are applied on top to any method by name (the same option given
    both ways is refused); every method is validated by :func:`vlprune.create_method` and each
    spec by :func:`vlprune.runtime.resolve_pipeline`.
    """
    from vlprune.analyze import build_methods
    from vlprune.flags import FlagError
    from vlprune.methods.base import create_method, get_method_class, method_options
    from vlprune.runtime.pipeline import resolve_pipeline

    specs = {spec: _names(spec) for spec in dict.fromkeys("+".join(_names(s)) for s in cfg.methods if s != "full")}
    names = list(dict.fromkeys(n for ns in specs.values() for n in ns))
    pre = [n for n in names if get_method_class(n).stage == "pre_vit"]
    given = {k: v for k, v in cfg.options.items() if v is not None}
    if given and not pre:
        key = next(iter(given))
        raise opt.OptionError(key, f"option {key} applies to a pre-ViT method and none of the methods run "
                                   f"({', '.join(specs) or 'full'}) has one; give another stage's option as "
                                   f"--opt NAME.{key}=VALUE")
    built = dict(zip(pre, build_methods(pre, cfg.options, shared={"seed": cfg.seed}))) if pre else {}
    unused = [n for n in cfg.method_options if n not in names]
    if unused:
        raise FlagError("--opt", f"{unused[0]}.*: method {unused[0]!r} is not among the methods run "
                                 f"({', '.join(specs) or 'full'})")
    instances = {}
    for name in names:
        extra = dict(cfg.method_options.get(name, {}))
        twice = [k for k in extra if name in built and given.get(k) is not None]
        if twice:
            raise FlagError("--opt", f"{name}.{twice[0]}: also given as --{twice[0].replace('_', '-')}; give it once")
        if name in built and not extra:
            instances[name] = built[name]
            continue
        if name in built:
            base = {f.name: getattr(built[name], f.name) for f in fields(built[name]) if f.init}
        else:
            base = {"seed": cfg.seed} if "seed" in method_options(name) else {}
        try:
            instances[name] = create_method(name, **{**base, **extra})
        except (TypeError, ValueError) as exc:
            raise FlagError("--opt", f"{name}: {exc}") from None
    out = [("full", None)]
    for spec, ns in specs.items():
        try:
            out.append((spec, resolve_pipeline([instances[n] for n in ns])))
        except (TypeError, ValueError) as exc:
            raise FlagError("--method", f"{spec!r}: {exc}") from None
    return out

"""What differs between the transformers releases vlprune supports, each difference in one place.

Supported: transformers 5.19 (the release vLLM's CPU build pins) through 5.24; the test suite runs at
both ends. Every fact below names the releases it concerns. :func:`require` is the version probe that
``vlprune.apply`` and ``vlprune serve`` run before touching a model: an untested release, or one that
lacks an entry point vlprune relies on, gets an :class:`UnsupportedTransformers` error naming the
version, the supported range and the feature -- never a tensor-size error from inside the model.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Callable, Iterable

#: lowest and highest tested (major, minor) releases, both inclusive
SUPPORTED = ((5, 19), (5, 24))
SUPPORTED_RANGE = ">=5.19,<5.25"


class UnsupportedTransformers(RuntimeError):
    """The installed transformers cannot run a vlprune feature (the message says which and why)."""


@lru_cache(maxsize=1)
def version() -> tuple[int, int, int]:
    """(major, minor, patch) of the installed transformers (dev / rc suffixes dropped)."""
    import transformers

    parts = []
    for piece in transformers.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if not piece.isdigit() else piece
        parts.append(int(digits or 0))
    return tuple((parts + [0, 0, 0])[:3])


def version_string() -> str:
    import transformers

    return transformers.__version__


def in_supported_range(v: tuple[int, ...] | None = None) -> bool:
    v = tuple((v or version())[:2])
    return SUPPORTED[0] <= v <= SUPPORTED[1]


# ---------------------------------------------------------------------------------------------- images
def composites_transparency() -> bool:
    """5.21 and later: the image processors' ``convert_to_rgb`` composites an alpha band or a colour key
    on white, and takes 1- / 4-channel arrays; 5.19 - 5.20 use PIL's ``convert("RGB")`` (alpha dropped,
    a colour key kept as its colour) and refuse arrays that do not have 3 channels."""
    return version()[:2] >= (5, 21)


def array_channel_counts() -> tuple[int, ...]:
    """The channel counts the image processors look for at either end of a 3-d array (channels first
    when both ends fit): 1, 3, 4 from 5.21; 1, 3 on 5.19 - 5.20, whose processors then take only 3
    channels (a 1-channel array fails normalisation, "mean must have 1 elements")."""
    return (1, 3, 4) if composites_transparency() else (1, 3)


# ---------------------------------------------------------------------------------------------- cache
#: 5.24 renamed the cache argument and output field ``past_key_values`` -> ``cache`` (model forwards,
#: decoder layers, attention, mask builders, generation kwargs); 5.19 - 5.23 use ``past_key_values``.
CACHE_NAMES = ("cache", "past_key_values")


@lru_cache(maxsize=64)
def _params(fn) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return frozenset()


def cache_kwarg(fn: Callable) -> str:
    """The name ``fn`` (a transformers forward or mask builder) takes its cache under."""
    params = _params(inspect.unwrap(fn))
    for name in CACHE_NAMES:
        if name in params:
            return name
    raise UnsupportedTransformers(
        f"{getattr(fn, '__qualname__', fn)} takes neither 'cache' nor 'past_key_values' on transformers "
        f"{version_string()}; vlprune supports transformers {SUPPORTED_RANGE}")


def cache_from_kwargs(kwargs: dict):
    """The cache passed in a forward's ``kwargs`` (under either name), or None."""
    for name in CACHE_NAMES:
        if kwargs.get(name) is not None:
            return kwargs[name]
    return None


def cache_from_output(output):
    """The cache a model / language-model output carries (``cache`` or ``past_key_values``), or None."""
    for name in CACHE_NAMES:
        value = getattr(output, name, None)
        if value is not None:
            return value
    return None


def model_cache_kwarg(model) -> str:
    """The keyword a model's ``forward`` takes its cache under (``model(..., **{kw: cache})``)."""
    return cache_kwarg(type(model).forward)


# ---------------------------------------------------------------------------------------------- training
def checkpointing_replays_hooks() -> bool:
    """Whether gradient checkpointing re-runs a layer's module hooks in the backward pass: 5.19 checkpoints
    ``GradientCheckpointingLayer.__call__`` (forward hooks and pre-hooks inside the checkpoint, replayed by
    the recompute); 5.24 checkpoints ``forward`` and leaves the hooks outside. Probed, not versioned."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return "__call__" in GradientCheckpointingLayer.__dict__


# ---------------------------------------------------------------------------------------------- probe
def require(feature: str, checks: Iterable[tuple[str, Callable[[], bool]]] = (), *,
            allow_untested: bool = False) -> None:
    """Refuse ``feature`` on an untested transformers release or when an entry point is missing.

    checks: (what, predicate) pairs, each True when the entry point ``what`` is present and usable.
    allow_untested: run on a release outside :data:`SUPPORTED_RANGE` if every check passes.
    """
    v = version_string()
    for what, ok in checks:
        try:
            present = bool(ok())
        except Exception:  # an import or attribute error is a missing entry point
            present = False
        if not present:
            raise UnsupportedTransformers(
                f"{feature} needs {what}, which transformers {v} does not provide; vlprune supports "
                f"transformers {SUPPORTED_RANGE} (pip install 'transformers{SUPPORTED_RANGE}')")
    if not allow_untested and not in_supported_range():
        raise UnsupportedTransformers(
            f"{feature} is tested on transformers {SUPPORTED_RANGE}, but {v} is installed; install a "
            f"supported release (pip install 'transformers{SUPPORTED_RANGE}') or pass "
            f"allow_untested_transformers=True to try it anyway")


def params(fn: Callable) -> frozenset[str]:
    """Parameter names of ``fn`` (decorators unwrapped)."""
    return _params(inspect.unwrap(fn))


def has_params(fn: Callable, *names: str) -> bool:
    """Whether ``fn`` accepts every keyword in ``names`` (or **kwargs)."""
    try:
        sig = inspect.signature(inspect.unwrap(fn))
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return True
    return all(n in sig.parameters for n in names)


def importable(module: str, *names: str) -> Callable[[], bool]:
    """A check: ``module`` imports and has every attribute in ``names``."""

    def check() -> bool:
        import importlib

        mod = importlib.import_module(module)
        return all(hasattr(mod, n) for n in names)

    return check

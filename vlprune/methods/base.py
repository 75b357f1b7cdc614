"""Method base classes and the name registry (timm-style ``register``/``create``/``list``).

A method is a ``@dataclass`` with validated fields and one small hook for the stage where it acts:

* ``pre_vit``  -- :meth:`PreViTMethod.select` picks kept blocks from a :class:`~vlprune.grid.BlockGrid`
  before the vision encoder (PixelPrune, Random, ConnComp, Uniform, Resize, Full).
* later stages (``post_vit``, ``llm``, ``input``) get their own base class next to this one.

Adding a method = one dataclass with ``@register_method("name")`` (+ its pure selection function
and a test row if it needs one): the shared test matrix picks it up from :func:`list_methods`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from vlprune.selection import Selection

if TYPE_CHECKING:
    from vlprune.grid import BlockGrid

_REGISTRY: dict[str, type["Method"]] = {}


def register_method(name: str):
    """Class decorator: register a :class:`Method` subclass under ``name``."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _ensure_builtin_methods() -> None:
    # Importing the package registers the built-in methods (decorators run at import).
    import vlprune.methods  # noqa: F401


def list_methods(stage: str | None = None) -> list[str]:
    """Names of registered methods, optionally only those of one ``stage``."""
    _ensure_builtin_methods()
    return sorted(n for n, c in _REGISTRY.items() if stage is None or c.stage == stage)


def get_method_class(name: str) -> type["Method"]:
    _ensure_builtin_methods()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; expected one of: {', '.join(list_methods())}")
    return _REGISTRY[name]


def create_method(name: str, **options) -> "Method":
    """Instantiate a registered method; unknown options raise a ``TypeError`` naming them."""
    cls = get_method_class(name)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"method {name!r} has no option(s) {', '.join(unknown)}; its options are: {', '.join(sorted(known)) or 'none'}"
        )
    return cls(**options)


@dataclass
class Method:
    """Base of every method. ``stage`` says where in the pipeline it acts."""

    name: ClassVar[str] = "?"
    stage: ClassVar[str] = "?"


@dataclass
class PreViTMethod(Method):
    """Selects which blocks (= LLM tokens, 2x2 ViT patches each) enter the vision encoder.

    Subclasses implement :meth:`select`; calling the method wraps it with timing and checks.
    """

    stage: ClassVar[str] = "pre_vit"

    def select(self, grid: "BlockGrid") -> np.ndarray | Selection:
        """Return sorted kept block indices (raster order of the ``grid.shape`` grid), or a Selection."""
        raise NotImplementedError

    def __call__(self, grid: "BlockGrid") -> Selection:
        t0 = time.perf_counter()
        out = self.select(grid)
        ms = (time.perf_counter() - t0) * 1e3
        sel = out if isinstance(out, Selection) else Selection(kept=np.asarray(out, dtype=np.int64), grid=grid.shape)
        sel.selector_ms = ms
        sel.method = self.name
        sel.validate()
        return sel

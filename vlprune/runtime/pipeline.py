"""A pipeline: at most one method per stage, run in stage order (:data:`vlprune.methods.STAGES`).

Accepted specs: a method name (``"pixelprune"``), a composition string (``"pixelprune+fastv"``), a
:class:`~vlprune.methods.Method` instance, or a list / tuple mixing names and instances. Everything is
checked here, before anything is installed on a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vlprune.methods.base import STAGES, Method, create_method

MethodSpec = "str | Method | list[str | Method] | tuple[str | Method, ...]"


@dataclass(frozen=True)
class Pipeline:
    """Methods by stage; ``methods`` in stage order."""

    methods: tuple[Method, ...] = field(default_factory=tuple)

    def get(self, stage: str) -> Method | None:
        return next((m for m in self.methods if m.stage == stage), None)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(m.stage for m in self.methods)

    @property
    def name(self) -> str:
        """``a+b`` in stage order (what stats and tables call it)."""
        return "+".join(m.name for m in self.methods) or "full"

    def describe(self) -> str:
        return " + ".join(m.describe() for m in self.methods) or "full"


def _split(spec) -> list:
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split("+")]
        if not spec.strip() or any(not p for p in parts):
            raise ValueError(f"method spec {spec!r}: expected names joined by '+', e.g. 'pixelprune+fastv'")
        return parts
    if isinstance(spec, Method):
        return [spec]
    if isinstance(spec, (list, tuple)):
        out = []
        for item in spec:
            out.extend(_split(item) if isinstance(item, str) else [item])
        if not out:
            raise ValueError("empty method list: give at least one method (e.g. 'full')")
        return out
    raise TypeError(f"expected a method name, a vlprune method or a list of them, got {type(spec).__name__}")


def resolve_pipeline(spec, options: dict | None = None) -> Pipeline:
    """Build and validate a :class:`Pipeline`.

    options: ``{option: value}`` for a single method given by name, or ``{method_name: {option: value}}``
    for compositions. Unknown names, two methods of one stage, and options that no method takes raise
    (``ValueError`` / ``TypeError``) before anything is installed.
    """
    options = dict(options or {})
    items = _split(spec)
    names = [i for i in items if isinstance(i, str)]
    per_method = {k: options.pop(k) for k in list(options) if k in names and isinstance(options[k], dict)}
    if options:
        if len(names) != 1 or len(items) != 1:
            raise TypeError("loose options need exactly one method given by name; for compositions pass "
                            "{method_name: {option: value}}")
        per_method[names[0]] = options
    methods = []
    for item in items:
        if isinstance(item, str):
            methods.append(create_method(item, **per_method.get(item, {})))
        elif isinstance(item, Method):
            methods.append(item)
        else:
            raise TypeError(f"expected a vlprune method (see vlprune.create_method), got {type(item).__name__}")
    methods = [part for m in methods for part in m.components()]
    by_stage: dict[str, Method] = {}
    for m in methods:
        if m.stage in by_stage:
            raise ValueError(f"two methods of stage {m.stage!r}: {by_stage[m.stage].name!r} and {m.name!r}; "
                             f"a pipeline takes at most one method per stage ({' -> '.join(STAGES)})")
        by_stage[m.stage] = m
    return Pipeline(tuple(by_stage[s] for s in STAGES if s in by_stage))

"""The evaluation datasets by name: list them, look up their class and options, create one.

Every lookup first imports :mod:`vlprune.eval.datasets` (the built-in benchmarks register themselves
with :func:`vlprune.eval.base.register_dataset` when imported); a dataset registered elsewhere is found
once its module is imported. The registry itself sits in :mod:`vlprune.eval.base`, below the datasets,
so no dataset imports this module.
"""

from __future__ import annotations

import inspect

from vlprune.eval.base import _DATASETS, EvalDataset


def _builtin() -> dict[str, type[EvalDataset]]:
    import vlprune.eval.datasets  # noqa: F401  (registers the built-in datasets)

    return _DATASETS


def list_datasets(kind: str | None = None) -> list[str]:
    """Registered dataset names (``kind``: only ``"vqa"``, ``"grounding"`` or ``"agent"`` ones), sorted."""
    return sorted(n for n, c in _builtin().items() if kind is None or c.kind == kind)


def dataset_class(name: str) -> type[EvalDataset]:
    """The class registered under ``name``; ValueError naming the registered ones for an unknown name."""
    registry = _builtin()
    if name not in registry:
        raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(list_datasets())}")
    return registry[name]


def create_dataset(name: str, **options) -> EvalDataset:
    return dataset_class(name)(**options)


def dataset_options(name: str) -> list[str]:
    """The keyword options dataset ``name`` takes (``--dataset-opt KEY=VALUE``), in signature order
    (a dataset that takes ``**options`` checks them itself and lists none here)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(dataset_class(name)).parameters.values() if p.kind in kinds]

"""Evaluation harness: the papers' benchmarks in their published formats, scored as their evaluators do."""

from vlprune.eval.base import (
    DatasetError,
    EvalDataset,
    ImageRef,
    LoadProblem,
    LoadResult,
    Parsed,
    PromptContext,
    Sample,
    create_dataset,
    list_datasets,
    register_dataset,
)

__all__ = [
    "DatasetError", "EvalDataset", "ImageRef", "LoadProblem", "LoadResult", "Parsed", "PromptContext", "Sample",
    "create_dataset", "list_datasets", "register_dataset",
]

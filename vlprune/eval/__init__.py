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
    register_dataset,
)
from vlprune.eval.catalog import create_dataset, dataset_options, list_datasets

__all__ = [
    "DatasetError", "EvalDataset", "ImageRef", "LoadProblem", "LoadResult", "Parsed", "PromptContext", "Sample",
    "create_dataset", "dataset_options", "list_datasets", "register_dataset",
]

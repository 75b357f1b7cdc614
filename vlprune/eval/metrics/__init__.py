"""Pure metric functions of the evaluation harness, one module per family of benchmarks.

Each function scores plain values (strings, points, boxes) exactly as the published evaluator named in
its docstring does; where evaluators disagree, the variants are named and selectable. Datasets import
the module they need (``from vlprune.eval.metrics import vqa``); this package imports none of them.
"""

"""vLLM engine checks on a tiny Qwen3.5 checkpoint (hybrid Gated-DeltaNet LLM). vLLM's CPU backend runs
those layers in bf16 only, so the transformers reference runs in bf16 too and prompt logprobs are
compared within bf16's precision; prompt ids, M-RoPE positions and greedy tokens exactly."""

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: the serving suite runs in the venv that "
                                   "scripts/vllm-env makes")

from harness import Family  # noqa: E402
from family_checks import test_pixelprune_equals_the_transformers_runtime  # noqa: E402,F401

FAMILY = Family("qwen3.5", dtype="bfloat16", logprob_tol=0.1)

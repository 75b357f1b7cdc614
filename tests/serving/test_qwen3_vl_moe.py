"""vLLM engine checks on a tiny Qwen3-VL-MoE checkpoint (routed experts; the fused expert tensors in the
released layout vLLM loads): pruned requests equal vlprune's transformers runtime (see family_checks)."""

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: the serving suite runs in the venv that "
                                   "scripts/vllm-env makes")

from harness import Family  # noqa: E402
from family_checks import (  # noqa: E402,F401
    test_pixelprune_equals_the_transformers_runtime, test_two_images_a_mixed_batch_and_chunked_prefill,
)

FAMILY = Family("qwen3_vl_moe")

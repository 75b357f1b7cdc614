"""vLLM engine checks on a tiny Qwen3-VL checkpoint (see family_checks)."""

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: the serving suite runs in the venv that "
                                   "scripts/vllm-env makes")

from harness import Family  # noqa: E402
from family_checks import *  # noqa: E402,F401,F403

FAMILY = Family("qwen3-vl")

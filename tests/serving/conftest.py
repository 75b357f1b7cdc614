"""Fixtures of the vLLM engine suite: per test module (``FAMILY``) a tiny checkpoint, the transformers
reference on its weights, a stock engine and a plug-in engine. Modules skip with the reason where vLLM
is not installed (the plain test suite)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def fam(request):
    return request.module.FAMILY


@pytest.fixture(scope="module")
def ckpt(fam, tmp_path_factory):
    from harness import write

    return write(tmp_path_factory.mktemp(fam.name.replace(".", "_")), fam)


@pytest.fixture(scope="module")
def ref(ckpt, fam):
    from harness import Reference

    return Reference.load(ckpt, fam)


@pytest.fixture(scope="module")
def stock(ckpt, fam):
    from harness import close, engine

    llm = engine(ckpt, fam)
    yield llm
    close(llm)


@pytest.fixture(scope="module")
def plugin(ckpt, fam):  # tests that need both list ``stock`` first: one engine starts at a time
    from harness import close, engine

    llm = engine(ckpt, fam, method="pixelprune")
    yield llm
    close(llm)

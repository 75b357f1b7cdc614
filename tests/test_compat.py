"""The transformers probe: the supported range, the entry points the runtime relies on, and the cache
argument's name (``past_key_values`` up to 5.23, ``cache`` from 5.24), on the installed release."""

from __future__ import annotations

import inspect

import pytest
import torch
import transformers
from model_fixtures import FAMILIES, build_batch, synthetic_image, tiny_model

from vlprune import compat
from vlprune.api import ApplyConfig, apply


def test_installed_release_is_in_the_supported_range_stated_in_pyproject():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    pin = re.search(r'"transformers([^"]+)"', text).group(1)
    assert pin == compat.SUPPORTED_RANGE
    lo, hi = re.fullmatch(r">=(\d+)\.(\d+),<(\d+)\.(\d+)", pin).groups()[:2], re.fullmatch(
        r">=(\d+)\.(\d+),<(\d+)\.(\d+)", pin).groups()[2:]
    assert compat.SUPPORTED == ((int(lo[0]), int(lo[1])), (int(hi[0]), int(hi[1]) - 1))
    assert compat.in_supported_range()
    assert compat.version()[:2] == tuple(int(x) for x in transformers.__version__.split(".")[:2])


@pytest.mark.parametrize("v, ok", [((5, 18, 9), False), ((5, 19, 0), True), ((5, 24, 3), True), ((5, 25, 0), False),
                                   ((6, 0, 0), False)])
def test_range_ends(v, ok):
    assert compat.in_supported_range(v) is ok


def test_cache_name_matches_the_release():
    """Hand-written expectation per release: 5.24 takes ``cache``, earlier releases ``past_key_values``."""
    from transformers.masking_utils import create_causal_mask

    want = "cache" if compat.version()[:2] >= (5, 24) else "past_key_values"
    assert compat.cache_kwarg(create_causal_mask) == want
    model = tiny_model("qwen2-vl")
    assert compat.model_cache_kwarg(model) == want
    assert compat.cache_kwarg(type(model.model.language_model.layers[0]).forward) == want


def test_cache_helpers_read_either_name():
    cache = object()
    for name in compat.CACHE_NAMES:
        assert compat.cache_from_kwargs({name: cache}) is cache
        assert compat.cache_from_output(type("Out", (), {name: cache})()) is cache
    assert compat.cache_from_kwargs({}) is None and compat.cache_from_output(object()) is None

    def neither(x, y=None):
        return x

    with pytest.raises(compat.UnsupportedTransformers, match="neither 'cache' nor 'past_key_values'"):
        compat.cache_kwarg(neither)


def test_untested_release_is_refused_with_version_range_and_feature(monkeypatch):
    monkeypatch.setattr(compat, "version", lambda: (5, 30, 0))
    monkeypatch.setattr(compat, "version_string", lambda: "5.30.0")
    model = tiny_model("qwen2-vl")
    with pytest.raises(compat.UnsupportedTransformers) as exc:
        with apply(model, "pixelprune"):
            pass
    msg = str(exc.value)
    assert "5.30.0" in msg and compat.SUPPORTED_RANGE in msg and "vlprune.apply('pixelprune')" in msg
    assert not model._forward_pre_hooks  # nothing was installed
    with apply(model, "pixelprune", config=ApplyConfig(allow_untested_transformers=True)):
        pass  # every entry point is present: the user may opt in


def test_missing_entry_point_is_named(monkeypatch):
    """A release whose mask builder lost ``layer_idx`` (the in-LLM hooks' per-layer masks) is refused
    before anything is installed, naming the entry point; pre-ViT pruning does not need it."""
    import vlprune.runtime.llm as llm

    def create_causal_mask(config, inputs_embeds, attention_mask, cache=None):  # no layer_idx
        raise AssertionError("never called")

    monkeypatch.setattr(llm, "create_causal_mask", create_causal_mask)
    model = tiny_model("qwen2-vl")
    with pytest.raises(compat.UnsupportedTransformers, match=r"fastv.*create_causal_mask\(layer_idx="):
        with apply(model, "fastv"):
            pass
    assert not model._forward_pre_hooks and not model.model.language_model._forward_pre_hooks
    with apply(model, "pixelprune"):
        pass


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_passes_its_checks(family):
    from vlprune.models import get_adapter
    from vlprune.runtime.llm import transformers_checks

    ad = get_adapter(tiny_model(family))
    checks = ad.transformers_checks() + transformers_checks(ad)
    assert len(checks) >= 6
    for what, ok in checks:
        assert ok(), what


@pytest.mark.parametrize("family", FAMILIES)
def test_in_llm_generate_runs_on_the_installed_release(family):
    """The in-LLM stage with a padded batch and a few decode steps on this release (the crash a wrong
    cache name gives is a tensor-size error inside the model)."""
    model = tiny_model(family)
    b = build_batch(family, [{"images": [synthetic_image(family, 4, 6, 1)], "text": [5, 6], "after": [7, 8, 9]},
                             {"images": [synthetic_image(family, 2, 4, 2)], "text": [5], "after": [7]}])
    with torch.no_grad(), apply(model, "fastv", fastv={"retain": 0.5}) as run:
        out = model.generate(**b, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == b["input_ids"].shape[1] + 3
    assert run.last.llm_tokens_final < b["input_ids"].shape[1]

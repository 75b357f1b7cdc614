"""The engine checks every family module runs (imported there with its ``FAMILY``): keep-all through the
plug-in equals the stock model; pruned requests equal vlprune's transformers runtime on the same weights
(placeholder counts, token ids, M-RoPE positions, prompt logprobs, greedy tokens); every pre-ViT method;
two images, a mixed batch, chunked prefill, prefix and processor caches; TAR on a real episode; a bad
request fails alone."""

from __future__ import annotations

import pytest
from harness import (
    CORPUS, MAX_PIXELS, MIN_PIXELS, assert_close, corpus_image, crop_to_blocks, generate, image_token_count,
    plugin_positions, processed, selected_counts,
)

import vlprune

PAGE = "web/flask_index.png"


def _images(n: int):
    names = ["web/flask_index.png", "doc/" + next(p.name for p in sorted((CORPUS / "doc").iterdir())),
             "web/valgrind_manual_core.png"]
    return [corpus_image(x) for x in names[:n]]


def test_keep_all_through_the_plugin_equals_stock(stock, plugin, ref):
    """``full`` per request through the plug-in: the stock model's prompt, logprobs and tokens, exactly."""
    for n in (1, 2):
        text, images = ref.prompt(n), _images(n)
        want = generate(stock, text, images)
        got = generate(plugin, text, images, request_plan={"method": "full"})
        assert got["ids"] == want["ids"]
        assert got["tokens"] == want["tokens"]
        assert_close(got["logprobs"], want["logprobs"], 1e-6, "prompt logprobs, keep-all vs stock")


def test_pixelprune_equals_the_transformers_runtime(plugin, ref, fam):
    text, images = ref.prompt(1), _images(1)
    want = ref.run("pixelprune", text, images)
    got = generate(plugin, text, images)
    image_id = int(ref.model.config.image_token_id)
    assert image_token_count(got["ids"], image_id) == sum(selected_counts(ref, images)) == sum(want["kept"])
    assert got["ids"] == want["ids"]
    assert_close(got["logprobs"], want["logprobs"], fam.logprob_tol, "prompt logprobs, pixelprune vs transformers")
    assert got["tokens"] == want["tokens"]
    positions, delta = plugin_positions(plugin, processed(plugin, text, images))
    assert positions.tolist() == want["positions"].tolist()
    unpruned = ref.model.model.get_rope_index(
        want["inputs"]["input_ids"], mm_token_type_ids=want["inputs"].get("mm_token_type_ids"),
        image_grid_thw=want["inputs"]["image_grid_thw"], attention_mask=want["inputs"]["attention_mask"])
    # decoding continues from the unpruned next position
    assert len(got["ids"]) + delta == int(unpruned[0].max()) + 1


def test_placeholders_equal_vlprune_select_on_an_image_the_processor_keeps(plugin, ref, fam):
    """A crop of whole blocks inside the pixel bounds: the processor does not resample it, so the image
    route (``vlprune.select``) sees the same pixels and keeps the same blocks."""
    crop = crop_to_blocks(corpus_image(PAGE), fam.name, (10, 14))
    got = generate(plugin, ref.prompt(1), [crop], max_tokens=1)
    family = vlprune.get_family(ref.model.config.model_type).name
    sel = vlprune.select(crop, "pixelprune", family=family, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert 0 < sel.n_kept < 140
    assert image_token_count(got["ids"], int(ref.model.config.image_token_id)) == sel.n_kept


PRE_VIT = [
    ("pixelprune", {"order": "raster"}), ("pixelprune", {"order": "serpentine", "metric": "mae", "tau": 0.05}),
    ("pixelprune", {"metric": "rmse", "tau": 0.02}), ("pixelprune", {"metric": "max", "tau": 0.05}),
    ("random", {"seed": 3}), ("random", {"retain": 0.3}), ("uniform", {}), ("conncomp", {}), ("resize", {}),
]


@pytest.mark.parametrize("method, options", PRE_VIT, ids=[f"{m}-{'-'.join(map(str, o.values())) or 'default'}"
                                                          for m, o in PRE_VIT])
def test_every_pre_vit_method(plugin, ref, fam, method, options):
    text, images = ref.prompt(1), _images(1)
    want = ref.run(method, text, images, **{method: options} if options else {})
    got = generate(plugin, text, images, request_plan={"method": method, **{f"{method}.{k}": v for k, v in options.items()}})
    assert got["ids"] == want["ids"]
    assert image_token_count(got["ids"], int(ref.model.config.image_token_id)) == sum(want["kept"])
    assert_close(got["logprobs"], want["logprobs"], fam.logprob_tol, f"prompt logprobs, {method} {options}")


def test_two_images_a_mixed_batch_and_chunked_prefill(plugin, ref, fam):
    """Two images of different sizes in one prompt (longer than the engine's step budget, so its prefill
    is chunked), and a batch of prompts with different images equal to each alone."""
    from harness import STEP_TOKENS, summarize
    from vllm import SamplingParams

    text, images = ref.prompt(2), _images(2)
    want = ref.run("pixelprune", text, images)
    got = generate(plugin, text, images)
    assert len(got["ids"]) > STEP_TOKENS
    assert got["ids"] == want["ids"] and got["tokens"] == want["tokens"]
    assert_close(got["logprobs"], want["logprobs"], fam.logprob_tol, "prompt logprobs, two images")
    singles = [generate(plugin, ref.prompt(1), [im]) for im in _images(3)]
    outs = plugin.generate([{"prompt": ref.prompt(1), "multi_modal_data": {"image": im}} for im in _images(3)],
                           SamplingParams(max_tokens=6, temperature=0, prompt_logprobs=0), use_tqdm=False)
    for single, out in zip(singles, outs):
        batch = summarize(out)
        assert batch["ids"] == single["ids"] and batch["tokens"] == single["tokens"]
        assert_close(batch["logprobs"], single["logprobs"], fam.logprob_tol, "batch vs alone")


def test_prefix_and_processor_caches_stay_pruned(plugin, ref):
    """The same request again: served from the prefix cache (and the processor cache), same result; the
    same image with another plan gets its own cache entries."""
    text, images = ref.prompt(1, "Once more, in detail. " * 40), _images(1)  # > 2 KV blocks of 128
    first = generate(plugin, text, images, prompt_logprobs=False)
    again = generate(plugin, text, images, prompt_logprobs=False)
    assert again["cached"] > 0, again
    assert again["ids"] == first["ids"] and again["tokens"] == first["tokens"]
    other = generate(plugin, text, images, request_plan={"method": "random", "random.retain": 0.25},
                     prompt_logprobs=False)
    image_id = int(ref.model.config.image_token_id)
    assert image_token_count(other["ids"], image_id) != image_token_count(first["ids"], image_id)


def test_tar_with_pixelprune_on_a_real_episode(plugin, ref, fam):
    """An agent step with two history screenshots: TAR resizes them once before the processor, the
    current one untouched; PixelPrune on all three."""
    from vlprune.agent import agent_request

    family = vlprune.get_family(ref.model.config.model_type).name
    req = agent_request(CORPUS / "trajectories" / "web_flask_quickstart_routing", family, history_images=2,
                        limits=(MIN_PIXELS, MAX_PIXELS))
    text = ref.processor.apply_chat_template(req.messages, add_generation_prompt=True)
    want = ref.run("tar+pixelprune", text, req.images, before_processor=True, tar={"lam": 0.4})
    got = generate(plugin, text, req.images, request_plan={"method": "tar+pixelprune", "tar.lam": 0.4})
    assert got["ids"] == want["ids"]
    assert_close(got["logprobs"], want["logprobs"], fam.logprob_tol, "prompt logprobs, tar+pixelprune")
    assert got["tokens"] == want["tokens"]
    full = generate(plugin, text, req.images, max_tokens=1, request_plan={"method": "full"})
    assert len(got["ids"]) < len(full["ids"])


def test_a_bad_request_fails_alone(plugin, ref):
    text, images = ref.prompt(1), _images(1)
    with pytest.raises(ValueError, match="tau must be in"):
        generate(plugin, text, images, request_plan={"method": "pixelprune", "pixelprune.tau": 3})
    with pytest.raises(ValueError, match="cannot run inside vLLM"):
        generate(plugin, text, images, request_plan={"method": "fastv"})
    ok = generate(plugin, text, images, max_tokens=2)
    assert len(ok["tokens"]) == 2

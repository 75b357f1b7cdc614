"""The end-to-end generation demo of ``vlprune demo``: text + image -> the real offline processor ->
a random-weight model of the real architecture -> ``generate``, once unpruned and once pruned."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from vlprune.bench.model import random_model
from vlprune.families import get_family
from vlprune.processor import build_processor, processor_inputs


@dataclass
class DemoResult:
    """What :func:`run_generation_demo` measured (random weights: the text itself is meaningless).

    full_ms / pruned_ms: wall clock of ``generate`` after one untimed warm-up pass of each (the
    first call pays one-time costs -- compiling the selector kernels, torch's first-shape setup)."""

    family: str
    shape: str
    text_layers: int
    vision_layers: int
    method: str
    image_tokens_before: int
    image_tokens_after: int
    prompt_tokens_before: int
    prompt_tokens_after: int
    selector_ms: float
    full_ms: float
    pruned_ms: float
    full_ids: list[int] = field(default_factory=list)
    pruned_ids: list[int] = field(default_factory=list)
    text: str = ""

    def summary(self) -> str:
        r = self.image_tokens_after / max(1, self.image_tokens_before)
        same = self.full_ids == self.pruned_ids
        ids = ("the same ids" if same else
               "other ids than the full run: expected with random weights, see above")
        return (
            f"{self.family} ({self.shape}, random weights, reduced depth: {self.text_layers} LLM / "
            f"{self.vision_layers} ViT layers)\n"
            f"  image tokens {self.image_tokens_before} -> {self.image_tokens_after} ({r:.1%} kept, {self.method}); "
            f"prompt {self.prompt_tokens_before} -> {self.prompt_tokens_after} tokens\n"
            f"  selector {self.selector_ms:.1f} ms; generate {len(self.full_ids)} tokens: full {self.full_ms:.0f} ms, "
            f"pruned {self.pruned_ms:.0f} ms (after one warm-up pass each)\n"
            f"  generated ids (full):   {self.full_ids}\n  generated ids (pruned): {self.pruned_ids}  <- {ids}"
        )


#: Printed once before the per-family results of :func:`demo_generation`.
DEMO_EXPLANATION = (
    "End to end: text + image -> the real processor -> a model of the real architecture -> generate,\n"
    "once unpruned (full) and once inside vlprune.apply(model, 'pixelprune').\n"
    "* The weights are random and the depth is cut to a few layers: the ids are meaningless and the\n"
    "  times say little about a real model (see 'vlprune bench' for measured speedups).\n"
    "* Pruning changes the model's input (fewer image tokens), so the argmax over random logits may pick\n"
    "  other ids than the full run. That is expected and not an error: pruning that keeps every token is\n"
    "  bit-identical to the unpruned model, which the test suite checks for every family.\n"
    "* Times are wall clock after one untimed warm-up pass of each run (the first call compiles the\n"
    "  selector kernels and sets torch up); the selector time is part of the pruned run.\n"
    "* The model runs in fp32 on the CPU on every machine: bf16 matmuls run several times slower than\n"
    "  fp32 on CPUs without bf16 matrix units (vlprune bench picks its dtype per CPU and says why)."
)


def run_generation_demo(family: str = "qwen3-vl", image=None, prompt: str = "Describe this image.",
                        method: str = "pixelprune", shape: str = "real", reduced_layers: int | None = 2,
                        vision_layers: int | None = 2, max_new_tokens: int = 8, max_pixels: int | None = 512 * 512,
                        seed: int = 0, log=None) -> DemoResult:
    """text + image -> real processor -> random-weight model of the real architecture -> generate,
    once unpruned and once inside ``vlprune.apply(model, method)``, each timed after one untimed
    warm-up pass (selector kernels and torch set up outside the timed calls).

    ``reduced_layers`` / ``vision_layers`` cut LLM / ViT depth (None: full depth); widths are the
    real ones. The image is checked as every command checks it (:func:`vlprune.images.check_image`).
    ``log``: a callable given progress lines (``vlprune demo`` prints them to stderr).
    """
    from vlprune.analyze import warm_up
    from vlprune.api import apply
    from vlprune.images import check_image
    from vlprune.methods import create_method

    log = log or (lambda line: None)
    spec = get_family(family)
    m = create_method(method) if isinstance(method, str) else method
    if image is None:
        image = demo_image(spec)
    check_image(image, spec, max_pixels=max_pixels)
    log(f"{spec.name}: building the processor and a random-weight {shape} model")
    proc = build_processor(spec.name, max_pixels=max_pixels)
    inputs = processor_inputs(proc, image, prompt)
    model = random_model(spec.name, proc, shape, reduced_layers, vision_layers, seed)
    cfg = model.config
    gen = dict(max_new_tokens=max_new_tokens, do_sample=False)
    n_prompt = inputs["input_ids"].shape[1]
    log(f"{spec.name}: warm-up (one untimed pass of each run)")
    warm_up(m, spec.name)
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=1, do_sample=False)
        with apply(model, m, processor=proc):
            model.generate(**inputs, max_new_tokens=1, do_sample=False)
        log(f"{spec.name}: generating {max_new_tokens} tokens, full then pruned")
        t0 = time.perf_counter()
        full = model.generate(**inputs, **gen)
        t1 = time.perf_counter()
        with apply(model, m, processor=proc) as run:
            pruned = model.generate(**inputs, **gen)
        t2 = time.perf_counter()
    last = run.last
    tok = proc.tokenizer
    return DemoResult(
        spec.name, shape, cfg.get_text_config().num_hidden_layers, cfg.vision_config.depth, m.name,
        last.tokens_before, last.tokens_after, n_prompt, last.llm_tokens_after, last.selector_ms,
        (t1 - t0) * 1e3, (t2 - t1) * 1e3, full[0, n_prompt:].tolist(), pruned[0, n_prompt:].tolist(),
        tok.decode(pruned[0, n_prompt:]),
    )


def demo_image(spec):
    """A synthetic screenshot-like page (flat background, a title bar, text-like rows)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    img = np.full((448, 640, 3), 248, np.uint8)
    img[:48] = (40, 70, 160)
    for r in range(80, 440, 24):
        n = int(rng.integers(200, 600))
        img[r : r + 10, 32 : 32 + n] = rng.integers(0, 90, (10, n, 3), dtype=np.uint8)
    return Image.fromarray(img)


def demo_generation(samples: dict, out_dir=None, families=None, **kwargs) -> list[DemoResult]:
    """The end-to-end section of ``vlprune demo``: for each family, the built-in GUI sample goes
    through the real offline processor into a random-weight model of the real architecture
    (reduced depth, stated in the output) and generates once unpruned and once with PixelPrune.
    Results and the explanation go to stdout, progress to stderr; ``kwargs`` go to
    :func:`run_generation_demo`."""
    import sys

    from vlprune.families import list_families

    image = samples["gui"] if "gui" in samples else next(iter(samples.values()))
    names = list(families or list_families())
    print(DEMO_EXPLANATION)
    results = []
    for i, family in enumerate(names, 1):
        def log(line, i=i):
            print(f"demo [{i}/{len(names)}] {line}", file=sys.stderr, flush=True)

        res = run_generation_demo(family, image=image, log=log, **kwargs)
        print(res.summary(), flush=True)
        results.append(res)
    return results

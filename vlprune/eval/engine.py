"""One batch of samples through the model inside ``vlprune.apply``: prompts, ``generate``, measurements,
parsed and scored records.

Timing of one ``generate`` call (batch of B samples, left padded; every sample of the batch gets the
batch's times):

* ``select`` -- the method's selector time for this sample's images (``ImageStats.selector_ms``);
* ``plan``   -- everything ``vlprune.apply`` does before the ViT (input / pre-ViT selection, bookkeeping);
* ``vit``    -- the (pruned) vision tower;
* ``post``   -- post-ViT selection and building the LLM sequence;
* ``llm``    -- the in-LLM stage's own work (attention rows, selection), part of the prefill;
* ``ttft``   -- from calling ``generate`` to its first logits-processor call, which ``generate`` makes
  right after the prefill forward has produced the first logits (:class:`~vlprune.eval.measure.StepClock`);
* ``prefill`` -- ``ttft - plan - vit - post``: the LLM prefill (plus ``generate``'s own setup);
* ``decode`` -- from that first call to the end of ``generate`` (the remaining greedy steps);
* ``total``  -- the whole call.

On CUDA the clock synchronises at the first logits call and after ``generate``; ``vlprune.apply``
synchronises around the ViT. On CPU times are ``time.perf_counter`` wall-clock.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from vlprune.eval.base import EvalDataset, PromptContext, Sample
from vlprune.eval.measure import (
    StepClock,
    flops_prompts,
    prefill_tflops,
    prompt_context,
    resize_limits,
    retain_of,
    seen_canvas,
    tokens_by_stage,
)
from vlprune.eval.modelspec import LoadedModel
from vlprune.eval.records import new_record
from vlprune.eval.scoring import error_text, failed_record, parse_and_score


@dataclass
class Item:
    """A sample and its position in the dataset order; ``problem``: a counted load problem (no model call)."""

    index: int
    sample: Sample
    problem: str | None = None


@dataclass
class _Ready:
    item: Item
    images: list
    ctx: PromptContext
    text: str


def generation_config(model, max_new_tokens: int, temperature: float = 0.0):
    """The model's generation config with ``max_new_tokens``, one beam, and greedy decoding
    (``do_sample=False``) or, for ``temperature`` > 0, plain temperature sampling (top-k and top-p off)."""
    gen = copy.deepcopy(model.generation_config)
    gen.max_new_tokens = int(max_new_tokens)
    settings = generation_settings(temperature)
    for key in ("do_sample", "num_beams", "temperature", "top_k", "top_p"):  # greedy: sampling knobs unset
        setattr(gen, key, settings.get(key))
    return gen


def generation_settings(temperature: float = 0.0) -> dict:
    """What :func:`generation_config` decodes with, for ``summary.json``."""
    if temperature > 0:
        return {"do_sample": True, "num_beams": 1, "temperature": float(temperature), "top_k": 0, "top_p": 1.0,
                "skip_special_tokens": True}
    return {"do_sample": False, "num_beams": 1, "skip_special_tokens": True}


def _eos_ids(gen) -> set[int]:
    eos = gen.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])


class BatchEngine:
    """Runs batches of :class:`Item` through ``loaded.model`` inside one ``vlprune.apply`` session."""

    def __init__(self, ds: EvalDataset, loaded: LoadedModel, session, method: str, max_new_tokens: int,
                 temperature: float = 0.0, seed: int = 0):
        self.ds, self.loaded, self.session, self.method = ds, loaded, session, method
        self.processor = loaded.processor
        self.processor.tokenizer.padding_side = "left"
        self.limits = resize_limits(self.processor)
        self.patch = session.adapter.spec.patch_size
        self.gen = generation_config(loaded.model, max_new_tokens, temperature)
        self.seed = seed
        self.eos = _eos_ids(self.gen)
        self.cuda = loaded.device.startswith("cuda")
        self.cold = True

    def run(self, items: list[Item]) -> list[dict]:
        """Records of ``items`` (dataset order). A sample whose images or prompt fail, or whose model call
        fails (alone: a failed batch is retried one sample at a time), is recorded as failed."""
        records, ready = [], []
        for it in items:
            if it.problem is not None:
                records.append(failed_record(self.ds, it.sample, it.index, it.problem, method=self.method))
                continue
            try:
                ready.append(self._prepare(it))
            except Exception as exc:  # noqa: BLE001 -- recorded as a failed sample, the run continues
                records.append(failed_record(self.ds, it.sample, it.index, error_text(exc), method=self.method))
        if ready:
            records.extend(self._generate_or_split(ready))
        return sorted(records, key=lambda r: r["index"])

    def _prepare(self, it: Item) -> _Ready:
        images = [ref.open() for ref in it.sample.images]
        ctx = prompt_context(self.loaded.family, [im.size for im in images], self.limits)
        messages = self.ds.messages(it.sample, ctx)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return _Ready(it, images, ctx, text)

    def _generate_or_split(self, ready: list[_Ready]) -> list[dict]:
        try:
            return self._generate(ready)
        except Exception as exc:  # noqa: BLE001
            if len(ready) > 1:
                return [r for one in ready for r in self._generate_or_split([one])]
            it = ready[0].item
            return [failed_record(self.ds, it.sample, it.index, error_text(exc), method=self.method)]

    def _generate(self, ready: list[_Ready]) -> list[dict]:
        from transformers import LogitsProcessorList

        model = self.loaded.model
        # the session runs any input-stage method (GUIPruner TAR) on the raw images, then the processor
        inputs = self.session.process([r.text for r in ready], [r.images for r in ready], self.processor)
        inputs = {k: (v.to(model.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        clock = StepClock(self.cuda)
        self.session.last = self.session.last_prepared = None
        if self.gen.do_sample:  # reproducible and resumable: the seed depends on the batch, not on history
            torch.manual_seed(self.seed * 1_000_003 + ready[0].item.index)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=self.gen, logits_processor=LogitsProcessorList([clock]))
        if self.cuda:
            torch.cuda.synchronize()
        t_end = time.perf_counter()
        call = self.session.last
        cold, self.cold = self.cold, False
        n_in = inputs["input_ids"].shape[1]
        new = out[:, n_in:].tolist()
        texts = self.processor.tokenizer.batch_decode(out[:, n_in:], skip_special_tokens=True)
        mask = inputs["attention_mask"]
        ttft = ((clock.first or t_end) - t0) * 1e3
        if call is None:
            raise RuntimeError("vlprune.apply reported no call with images for this batch")
        batch_ms = {"plan": call.plan_ms, "vit": call.vit_ms, "post": call.post_ms, "llm": call.llm_ms,
                    "prefill": ttft - call.plan_ms - call.vit_ms - call.post_ms, "ttft": ttft,
                    "decode": (t_end - (clock.first or t_end)) * 1e3, "total": (t_end - t0) * 1e3}
        prompts = flops_prompts(call)
        records = []
        for row, r in enumerate(ready):
            stats = sorted((s for s in call.images if s.sample == row), key=lambda s: s.image)
            canvas = tuple(seen_canvas(s, self.patch) for s in stats)
            ctx = PromptContext(r.ctx.family, r.ctx.sizes, canvas)
            tokens = tokens_by_stage(stats)
            flops = prefill_tflops(model.config, prompts[row])
            n_new = next((i + 1 for i, t in enumerate(new[row]) if t in self.eos), len(new[row]))
            it = r.item
            try:
                scored = parse_and_score(self.ds, it.sample, texts[row], ctx)
            except Exception as exc:  # noqa: BLE001
                records.append(failed_record(self.ds, it.sample, it.index, error_text(exc), method=self.method,
                                             prediction=texts[row]))
                continue
            records.append(new_record(
                id=it.sample.id, index=it.index, method=self.method, prediction=texts[row], meta=it.sample.meta,
                sizes=[list(s) for s in ctx.sizes], canvas=[list(c) for c in ctx.canvas], tokens=tokens,
                retain=retain_of(tokens), prompt_tokens=int(mask[row].sum()), new_tokens=n_new,
                time_ms={"select": sum(s.selector_ms for s in stats), **batch_ms}, batch_size=len(ready),
                cold=cold, flops=flops, **scored,
            ))
        return records

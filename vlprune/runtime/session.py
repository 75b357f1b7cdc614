"""``vlprune.apply(model, pipeline)``: run a loaded Qwen-VL model with a pruning pipeline.

Inside the context the model's ordinary ``model(**processor_outputs)`` and ``model.generate(...)`` run
with the pipeline applied (PixelPrune §3.2.3; GUIPruner §3): per image the input / pre-ViT methods pick
what enters the vision encoder, which runs on those patch rows only with their original 2-D positions;
post-ViT methods pick among its output tokens; the LLM gets the kept tokens, each with its unpruned
M-RoPE position; an llm-stage method drops more from layer K on. Decoding continues from the unpruned
next position.

Nothing is patched globally: forward hooks and one instance attribute (``model.generate``) are installed
on entry and removed on exit (``try/finally``), and the model's ``rope_deltas`` cache is restored. Videos
pass through untouched (the model's own video encoder).
"""

from __future__ import annotations

import functools
import inspect
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from vlprune import compat
from vlprune.models.base import FamilyAdapter, get_adapter
from vlprune.runtime.labels import check_labels, pruned_labels
from vlprune.runtime.llm import LLMStage, transformers_checks
from vlprune.runtime.pipeline import Pipeline, resolve_pipeline
from vlprune.runtime.prepare import Prepared, Preparer, pixel_limits, resize_inputs
from vlprune.runtime.stats import CallStats, ImageStats
from vlprune.runtime.train_checks import refuse_untrainable

_ACTIVE: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()
_MISSING = object()
_CALL_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw",
              "pixel_values_videos", "video_grid_thw")


@dataclass(frozen=True)
class ApplyConfig:
    """Options of :func:`apply`.

    original_prompt_in_generate: ``generate`` returns the caller's unpruned ``input_ids`` followed by
        the new tokens (so ``out[:, inputs.input_ids.shape[1]:]`` keeps working); False returns the
        pruned prompt the model actually saw.
    image_mean / image_std: the processor's normalisation (default: the family's) for selection.
    sync_cuda: synchronise CUDA around the timed regions (ViT, in-LLM scoring and selection) so that
        ``vit_ms`` / ``llm_ms`` are GPU times (costs syncs; off by default).
    allow_untested_transformers: run on a transformers release outside the tested range
        (:data:`vlprune.compat.SUPPORTED_RANGE`) when every entry point the runtime relies on is present.
    """

    original_prompt_in_generate: bool = True
    image_mean: tuple[float, float, float] | None = None
    image_std: tuple[float, float, float] | None = None
    sync_cuda: bool = False
    allow_untested_transformers: bool = False


class PruningSession:
    """Yielded by :func:`apply`. ``stats`` / ``last`` describe the last call with images."""

    def __init__(self, model, pipeline: Pipeline, config: ApplyConfig, processor=None):
        self.model = model
        self.pipeline = pipeline
        self.config = config
        self.adapter: FamilyAdapter = get_adapter(model)
        llm = pipeline.get("llm")
        checks = self.adapter.transformers_checks() + (transformers_checks(self.adapter) if llm is not None else [])
        feature = f"vlprune.apply({pipeline.name!r})" + (f" (in-LLM pruning with {llm.name!r})" if llm is not None else "")
        compat.require(feature, checks, allow_untested=config.allow_untested_transformers)
        mean, std = config.image_mean, config.image_std
        limits = None
        if processor is not None:
            self.adapter.check_processor(processor)
            ip = getattr(processor, "image_processor", processor)
            mean = mean or tuple(getattr(ip, "image_mean", None) or ()) or None
            std = std or tuple(getattr(ip, "image_std", None) or ()) or None
            limits = pixel_limits(ip)
        self.processor = processor
        self.prepare = Preparer(self.adapter, pipeline, mean, std, config.sync_cuda, limits)
        self.llm = LLMStage(self.adapter, llm, config.sync_cuda) if llm is not None else None
        self.last: CallStats | None = None
        self.last_prepared: Prepared | None = None
        self._handles: list = []
        self._saved: dict = {}
        self._forward_params = [p for p in inspect.signature(type(model).forward).parameters if p != "self"]

    @property
    def method(self):
        """The pipeline's single method (when it has exactly one)."""
        return self.pipeline.methods[0] if len(self.pipeline.methods) == 1 else self.pipeline

    @property
    def llm_layer(self) -> int | None:
        """K of the llm-stage method on this model (None without one)."""
        return self.llm.k if self.llm is not None else None

    @property
    def stats(self) -> list[ImageStats]:
        """Per-image stats of the last call (empty before the first call with images)."""
        return list(self.last.images) if self.last is not None else []

    # ------------------------------------------------------------------ input stage before the processor
    def process(self, text, images, processor=None, **kwargs):
        """Run the pipeline's input stage on the raw images, then the processor: one resampling per image
        (GUIPruner TAR resizes history screenshots before the processor). Returns the processor's batch.

        text: the chat-templated prompt(s) (str or list, one per sample); images: per sample the list of
        its images in prompt order (paths, PIL images or arrays; the last one is the current screenshot).
        The next model call records each image's token count before the resize as ``raw``. Without an
        input-stage method this is just the processor. ``kwargs`` go to the processor.
        """
        processor = processor or self.processor
        if processor is None:
            raise ValueError("process() needs the processor: pass it here or to vlprune.apply(..., processor=...)")
        texts = [text] if isinstance(text, str) else list(text)
        per_sample = [list(s) for s in images]
        if len(per_sample) != len(texts):
            raise ValueError(f"images must hold one list per sample: {len(texts)} prompt(s), {len(per_sample)} list(s)")
        resized, raw, _ = resize_inputs(self.pipeline.get("input"), per_sample, self.adapter.spec,
                                     self.prepare.pixel_limits)
        batch = processor(text=texts, images=[im for s in resized for im in s] or None, return_tensors="pt",
                          padding=True, **kwargs)
        self.prepare.raw_sizes = raw
        return batch

    # ------------------------------------------------------------------ entry points
    def _run_prepare(self, call: dict, extra: dict, entry: str) -> Prepared:
        prep = self.prepare(**call, **extra, entry=entry)
        self.last, self.last_prepared = prep.stats, prep
        if self.llm is not None:
            self.llm.begin(prep)
        return prep

    def _refuse_for_llm(self, kwargs: dict) -> None:
        if self.llm is None:
            return
        name = self.llm.method.name
        if kwargs.get("labels") is not None:
            raise ValueError(f"labels cannot be used with the llm-stage method {name!r}: the sequence is shortened "
                             f"inside the LLM, so logits no longer align with labels")
        cache = compat.cache_from_kwargs(kwargs)
        if getattr(cache, "is_compileable", False) or kwargs.get("cache_implementation") in ("static", "offloaded_static"):
            raise ValueError(f"static caches cannot be used with the llm-stage method {name!r}: layers from K on "
                             f"hold fewer tokens than the layers before K")

    def _forward_pre_hook(self, module, args, kwargs):
        if args:
            kwargs = dict(kwargs)
            for name, value in zip(self._forward_params, args):
                if name in kwargs:
                    raise TypeError(f"forward() got multiple values for {name!r}")
                kwargs[name] = value
            args = ()
        if kwargs.get("pixel_values") is None:
            return (args, kwargs)
        if kwargs.get("mm_encoder_outputs") is not None:
            raise ValueError("pass either pixel_values or mm_encoder_outputs, not both")
        if kwargs.get("inputs_embeds") is not None:
            raise ValueError("pruning needs input_ids; inputs_embeds cannot be pruned")
        if kwargs.get("position_ids") is not None:
            raise ValueError("position_ids of the unpruned sequence cannot be used with pruning; omit them "
                             "(vlprune computes the unpruned M-RoPE positions itself)")
        cache = compat.cache_from_kwargs(kwargs)
        if cache is not None and cache.get_seq_length() > 0:
            raise ValueError("images with a non-empty KV cache (past_key_values / cache: a cache continuation) "
                             "are not supported")
        if module.training and torch.is_grad_enabled():
            refuse_untrainable(self.pipeline, self.adapter, self.prepare.vit_block)
        self._refuse_for_llm(kwargs)
        if kwargs.get("shift_labels") is not None:
            raise ValueError("shift_labels cannot follow pruned tokens; pass labels (vlprune carries them)")
        call = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
        labels = kwargs.get("labels")
        if labels is not None and call.get("input_ids") is not None:
            check_labels(labels, call.get("input_ids"), call.get("attention_mask"), self.adapter.image_token_id)
        extra = {k: kwargs[k] for k in self.adapter.rope_extra_keys if k in kwargs}
        prep = self._run_prepare(call, extra, "forward")
        kwargs.update(prep.kwargs)
        kwargs["position_ids"] = prep.plan.position_ids
        if labels is not None:
            kwargs["labels"] = pruned_labels(labels, call["input_ids"], call.get("attention_mask"), prep,
                                             self.adapter.image_token_id)
        self.adapter.inner.rope_deltas = prep.plan.rope_deltas
        return (args, kwargs)

    def _generate(self, orig_generate, *args, **kwargs):
        if args and isinstance(args[0], torch.Tensor):
            if "input_ids" in kwargs or "inputs" in kwargs:
                raise TypeError("generate() got input_ids twice")
            kwargs["input_ids"], args = args[0], args[1:]
        if "inputs" in kwargs:
            kwargs["input_ids"] = kwargs.pop("inputs")
        if kwargs.get("pixel_values") is None:
            return orig_generate(*args, **kwargs)  # text-only / video-only: untouched
        if kwargs.get("position_ids") is not None or kwargs.get("inputs_embeds") is not None:
            raise ValueError("generate with pruning needs input_ids and no precomputed position_ids")
        self._refuse_for_llm(kwargs)
        if self.llm is not None:
            gc = kwargs.get("generation_config") or self.model.generation_config
            if getattr(gc, "cache_implementation", None) in ("static", "offloaded_static"):
                self._refuse_for_llm({"cache_implementation": gc.cache_implementation})
        original_ids = kwargs["input_ids"]
        call = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
        extra = {k: kwargs[k] for k in self.adapter.rope_extra_keys if k in kwargs}
        prep = self._run_prepare(call, extra, "generate")
        kwargs.update(prep.kwargs)
        kwargs["position_ids"] = prep.plan.generate_position_ids()
        self.adapter.inner.rope_deltas = prep.plan.rope_deltas
        out = orig_generate(*args, **kwargs)
        if not self.config.original_prompt_in_generate:
            return out
        lp = prep.plan.input_ids.shape[1]
        seq = out if isinstance(out, torch.Tensor) else out.sequences
        n_ret = seq.shape[0] // original_ids.shape[0]
        prompt = original_ids.to(seq.device).repeat_interleave(n_ret, dim=0)
        full = torch.cat([prompt, seq[:, lp:]], dim=1)
        if isinstance(out, torch.Tensor):
            return full
        out.sequences = full
        return out

    # ------------------------------------------------------------------ install / remove
    def _install(self):
        model = self.model
        if model in _ACTIVE:
            raise ValueError("vlprune.apply is already active on this model")
        self._saved = {
            "generate": model.__dict__.get("generate", _MISSING),
            "rope_deltas": getattr(self.adapter.inner, "rope_deltas", None),
        }
        _ACTIVE.add(model)
        try:
            orig = model.generate
            self._handles.append(model.register_forward_pre_hook(self._forward_pre_hook, with_kwargs=True))
            if self.llm is not None:
                self.llm.install(self._handles)
            model.generate = functools.wraps(orig)(functools.partial(self._generate, orig))
        except BaseException:
            self._uninstall()
            raise

    def _uninstall(self):
        model = self.model
        try:
            for h in self._handles:
                h.remove()
            self._handles.clear()
            saved = self._saved.get("generate", _MISSING)
            if saved is _MISSING:
                model.__dict__.pop("generate", None)
            else:
                model.__dict__["generate"] = saved
            self.adapter.inner.rope_deltas = self._saved.get("rope_deltas")
            if self.llm is not None:
                self.llm.state = None
        finally:
            _ACTIVE.discard(model)


@contextmanager
def apply(model, method="full", *, processor=None, config: ApplyConfig | None = None,
          **options) -> Iterator[PruningSession]:
    """Context manager: run ``model`` with a pruning pipeline.

    method: a registered name (``"pixelprune"``), a composition (``"pixelprune+fastv"``), a method
    instance, or a list of names / instances (at most one per stage, run in stage order); ``options``
    go to a single named method, or ``{name: {option: value}}`` for compositions. Validates the model
    (supported family, vision tower, patch/merge sizes, the llm method's layer; ``processor`` too when
    given) and the pipeline before installing anything. Yields a :class:`PruningSession`;
    ``session.stats`` holds the last call's per-image stats. On exit the model is exactly as before.
    """
    pipeline = resolve_pipeline(method, options)
    session = PruningSession(model, pipeline, config or ApplyConfig(), processor)
    session._install()
    try:
        yield session
    finally:
        session._uninstall()

"""The plug-in's multimodal processor: pre-ViT selection in vLLM's API-server process.

Subclasses of each stock Qwen-VL processor (built in :mod:`vlprune.serving.vllm_models`) override a
few methods of vLLM's ``BaseMultiModalProcessor``:

* ``apply`` resolves the request's :class:`~vlprune.serving.plan.ServingPlan` (the deployment's
  ``mm_processor_kwargs["vlprune"]``, merged with the request's), runs the input stage (TAR resizes the
  history screenshots -- every image of the prompt but the last -- once, before anything else sees
  them) and checks every image's placeholder length against its kept count;
* the HF processor call goes through :class:`PruningContext`: the selector runs on the processor's own
  ``pixel_values`` (fp32, before vLLM casts them to the model dtype); only the kept patch rows travel
  on, with a per-image keep mask (``vlprune_keep``, a multimodal field);
* ``_get_mm_fields_config`` / ``_get_prompt_updates``: an image's pixel rows and placeholder tokens
  are its kept counts;
* ``_get_mm_hashes``: each image's cache identity includes the plan (and TAR's target size), so a
  processor, encoder or prefix cache never mixes pruned and unpruned images;
* ``get_dummy_mm_inputs`` (memory profiling, warm-up) keeps every block: the worst case.

Errors here (a bad per-request option, an image the selector refuses, image embeddings instead of
pixels) fail that request only.
"""

from __future__ import annotations

import dataclasses
import threading
from contextvars import ContextVar
from functools import lru_cache

from vllm.multimodal.hasher import MultiModalHasher
from vllm.multimodal.inputs import MultiModalFieldConfig
from vllm.multimodal.parse import ImageProcessorItems, MultiModalDataItems
from vllm.multimodal.processing import PromptReplacement
from vllm.multimodal.processing.context import InputProcessingContext

from vlprune.families import get_family
from vlprune.serving.plan import KEY, ServingError, ServingPlan
from vlprune.serving.select import keep_masks, select_rows

#: the multimodal field holding each image's keep mask
KEEP = "vlprune_keep"

_PLAN: ContextVar["_Active | None"] = ContextVar("vlprune_plan", default=None)
_PROFILE: ContextVar[bool] = ContextVar("vlprune_profile", default=False)
_FULL = ServingPlan("full")


@dataclasses.dataclass
class _Active:
    """The plan of the request being processed (set for the duration of ``apply``)."""

    plan: ServingPlan
    pipeline: object
    sizes: list | None = None  # per image TAR's target (h, w) or None


class SelectorStats:
    """Running totals of the selector in this process (benchmarks read them): images, tokens, ms."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.images = self.tokens = self.kept = 0
            self.ms = 0.0

    def add(self, kept: list[int], total: list[int], ms: float) -> None:
        with self._lock:
            self.images += len(kept)
            self.kept += sum(kept)
            self.tokens += sum(total)
            self.ms += ms


STATS = SelectorStats()


@lru_cache(maxsize=256)
def _resolved(entry: str) -> tuple[ServingPlan, object]:
    """A plan entry (JSON) -> (its validated plan, the pipeline it runs); each distinct entry once."""
    import json

    plan = ServingPlan.from_payload(json.loads(entry))
    return plan, plan.pipeline()


def _resolve(mm_config, request_kwargs) -> tuple[ServingPlan, object]:
    import json

    entry = mm_config.merge_mm_processor_kwargs(dict(request_kwargs or {})).get(KEY)
    if entry is None:
        raise ServingError(f"the vlprune architecture was selected without mm_processor_kwargs[{KEY!r}]; build the "
                           f"engine arguments with vlprune.serving.vllm_kwargs(...) or run 'vlprune serve'")
    try:
        return _resolved(json.dumps(entry, sort_keys=True))
    except TypeError as exc:  # not JSON-able
        raise ServingError(f"mm_processor_kwargs[{KEY!r}] must be JSON-able, got {entry!r}") from exc


def resolve_plan(mm_config, request_kwargs) -> ServingPlan:
    """The plan of one request: the deployment's entry merged with the request's (request wins)."""
    return _resolve(mm_config, request_kwargs)[0]


def _norm_stats(image_processor, kwargs: dict):
    """(mean, std) that map the processor's values back to 8-bit levels: the normalisation it applied
    (``do_rescale`` / ``do_normalize`` as the call's kwargs or the processor set them)."""
    scoped = dict(kwargs.get("images_kwargs") or {})
    get = lambda k: scoped.get(k, kwargs.get(k, getattr(image_processor, k, None)))  # noqa: E731
    mean = tuple(get("image_mean") or (0.0, 0.0, 0.0))
    std = tuple(get("image_std") or (1.0, 1.0, 1.0))
    if get("do_normalize") is False:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if get("do_rescale") is False:
        std = tuple(s / 255.0 for s in std)
        mean = tuple(mu / 255.0 for mu in mean)
    return mean, std


@dataclasses.dataclass(frozen=True)
class PruningContext(InputProcessingContext):
    """vLLM's processing context with two differences: vlprune's entry never reaches the HF processor,
    and an HF call that returns images is followed by the selector on its fp32 ``pixel_values``."""

    @classmethod
    def of(cls, ctx: InputProcessingContext) -> "PruningContext":
        return cls(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)})

    def get_merged_mm_kwargs(self, kwargs, **extra):
        merged = super().get_merged_mm_kwargs(kwargs, **extra)
        merged.pop(KEY, None)
        return merged

    def call_hf_processor(self, hf_processor, data, kwargs={}):  # noqa: B006  (vLLM's signature)
        active = _PLAN.get()
        if active is None:
            raise ServingError("the vlprune processor was called outside a request (no plan is active)")
        spec = get_family(self.get_hf_config().model_type)
        method = active.pipeline.get("pre_vit")

        def call(**kw):
            out = hf_processor(**kw)
            if "pixel_values" not in out:
                return out
            ip = getattr(hf_processor, "image_processor", hf_processor)
            mean, std = _norm_stats(ip, kw)
            sel = select_rows(out["pixel_values"], out["image_grid_thw"], method, spec, mean, std)
            STATS.add(sel.kept, sel.total, sel.selector_ms)
            out["pixel_values"], out["image_grid_thw"], out[KEEP] = sel.pixel_values, sel.image_grid_thw, sel.keep
            return out

        return super().call_hf_processor(call, data, kwargs)


def wrap_info(info_cls):
    """A processing-info factory for the plug-in: the stock info over a :class:`PruningContext`."""

    def factory(ctx):
        return info_cls(PruningContext.of(ctx))

    factory.__name__ = f"vlprune_{info_cls.__name__}"
    return factory


class PruningProcessor:
    """Mixin over a stock Qwen-VL ``BaseMultiModalProcessor`` subclass (see the module docstring)."""

    def __init__(self, info, dummy_inputs, *args, **kwargs):
        super().__init__(info, dummy_inputs, *args, **kwargs)
        # the deployment's plan is checked when the engine starts, not at the first request
        resolve_plan(info.ctx.model_config.get_multimodal_config(), {})

    # ------------------------------------------------------------------ request
    def apply(self, inputs, timing_ctx):
        if _PROFILE.get():
            active = _Active(*_resolved(_FULL.fingerprint()))
        else:
            active = _Active(*_resolve(self.info.ctx.model_config.get_multimodal_config(),
                                       inputs.hf_processor_mm_kwargs))
        images = inputs.mm_data_items.get("image") if "image" in inputs.mm_data_items else None
        if images is not None and not isinstance(images, ImageProcessorItems):
            raise ServingError("vlprune prunes images before the vision encoder: it needs the image's pixels, not "
                               "precomputed image embeddings")
        tar = active.pipeline.get("input")
        if tar is not None and images is not None and len(images) > 1:
            inputs, active.sizes = self._resize_history(inputs, images, tar)
        token = _PLAN.set(active)
        try:
            result = super().apply(inputs, timing_ctx)
        finally:
            _PLAN.reset(token)
        self._check_placeholders(result)
        return result

    def get_dummy_mm_inputs(self, *args, **kwargs):
        token = _PROFILE.set(True)  # profiling and warm-up: the most tokens an image can have
        try:
            return super().get_dummy_mm_inputs(*args, **kwargs)
        finally:
            _PROFILE.reset(token)

    def _resize_history(self, inputs, images, tar):
        """GUIPruner TAR before the processor: every image of the prompt but the last is resized once to
        its share of the history budget (sizes from the processor's own pixel limits)."""
        from vlprune.runtime.prepare import resize_inputs

        data = images.get_all()
        if any(im is None for im in data):
            raise ServingError("TAR needs every image's pixels to size the history, but an image of this prompt "
                               "was given by uuid only")
        spec = get_family(self.info.get_hf_config().model_type)
        scoped = self.info._merge_and_resolve_mm_processor_kwargs(inputs.hf_processor_mm_kwargs)
        size = self.info._get_vision_size(scoped.get("images_kwargs", {}),
                                          default_size=self.info.get_image_processor().size)
        limits = (int(size["shortest_edge"]), int(size["longest_edge"]))
        resized, _, sizes = resize_inputs(tar, [data], spec, limits)
        out = [new if size is not None else original for original, new, size in zip(data, resized[0], sizes)]
        items = MultiModalDataItems(dict(inputs.mm_data_items))
        items["image"] = ImageProcessorItems(out)
        return dataclasses.replace(inputs, mm_data_items=items), sizes

    def _check_placeholders(self, result) -> None:
        """Fail closed: each image's placeholder run must be exactly its kept tokens."""
        items = result["mm_kwargs"].get("image", [])
        ranges = result["mm_placeholders"].get("image", [])
        for i, (item, rng) in enumerate(zip(items, ranges)):
            if item is None:  # held by the engine's cache: checked when it was processed
                continue
            if KEEP not in item:
                raise ServingError(f"image {i} was processed without a keep mask; refusing to serve it unpruned")
            kept = int(item[KEEP].data.sum())
            if kept != rng.length:
                raise ServingError(f"image {i}: its placeholder holds {rng.length} tokens but {kept} blocks are kept")

    # ------------------------------------------------------------------ stock hooks
    def _get_mm_hashes(self, inputs):
        hashes = dict(super()._get_mm_hashes(inputs))
        active = _PLAN.get()
        if "image" in hashes and active is not None:
            algorithm = self.info.ctx.get_mm_config().mm_hasher_algorithm
            sizes = active.sizes or [None] * len(hashes["image"])
            plan = active.plan.fingerprint()
            hashes["image"] = [
                MultiModalHasher.hash_kwargs(algorithm, mm_hash=h, vlprune=plan, vlprune_size=str(sizes[i]))
                for i, h in enumerate(hashes["image"])
            ]
        return hashes

    def _get_mm_fields_config(self, hf_inputs, hf_processor_mm_kwargs):
        config = dict(super()._get_mm_fields_config(hf_inputs, hf_processor_mm_kwargs))
        if KEEP in hf_inputs:
            import torch

            m = self.info.get_hf_config().vision_config.spatial_merge_size
            masks = keep_masks(hf_inputs[KEEP], hf_inputs["image_grid_thw"], m)
            config["pixel_values"] = MultiModalFieldConfig.flat_from_sizes(
                "image", torch.tensor([int(k.sum()) * m * m for k in masks]))
            # kept on the CPU: vLLM strips every other field of an image whose prompt span the prefix cache
            # covers, and the worker still needs the mask for the request's M-RoPE positions
            config[KEEP] = MultiModalFieldConfig.flat_from_sizes("image", torch.tensor([k.size for k in masks]),
                                                                 keep_on_cpu=True)
        return config

    def _get_prompt_updates(self, mm_items, hf_processor_mm_kwargs, out_mm_kwargs):
        updates = super()._get_prompt_updates(mm_items, hf_processor_mm_kwargs, out_mm_kwargs)
        image_token = int(self.info.get_hf_config().image_token_id)

        def kept_tokens(item_idx: int):
            item = out_mm_kwargs["image"][item_idx]
            if KEEP not in item:
                raise ServingError(f"image {item_idx} has no keep mask; refusing to serve it unpruned")
            return [image_token] * int(item[KEEP].data.sum())

        return [PromptReplacement(modality="image", target=u.target, replacement=kept_tokens)
                if u.modality == "image" else u for u in updates]

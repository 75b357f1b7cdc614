"""``vlprune.apply(model, method)``: run a loaded Qwen-VL model with visual-token pruning.

Inside the context the model's ordinary ``model(**processor_outputs)`` and
``model.generate(**processor_outputs)`` run with the method applied (PixelPrune §3.2.3, SPEC.md §4):

1. per image, the method selects kept blocks (one block = 2x2 ViT patches = one LLM token);
2. the family's vision tower runs on the kept patch rows only, with their original 2-D positions;
3. the LLM gets only kept image tokens, each with its unpruned M-RoPE position; decoding continues
   from the unpruned next position.

Nothing is patched globally: one forward pre-hook on the model and one instance attribute
(``model.generate``) are installed on entry and removed on exit (``try/finally``), and the model's
``rope_deltas`` cache is restored. Videos pass through untouched (the model's own video encoder).
"""

from __future__ import annotations

import functools
import inspect
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from vlprune.methods.base import Method, create_method
from vlprune.models.base import FamilyAdapter, get_adapter, patch_rows, patchify
from vlprune.models.sequence import SequencePlan, build_sequence_plan, image_token_spans
from vlprune.selection import Selection

_ACTIVE: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()

#: stages whose methods this layer integrates today; the others get their hook here later
#: ("input": TAR resize before the processor; "post_vit": DivPrune; "llm": FastV / GUIPruner SSP).
SUPPORTED_STAGES = ("pre_vit",)


@dataclass(frozen=True)
class ApplyConfig:
    """Options of :func:`apply`.

    original_prompt_in_generate: ``generate`` returns the caller's unpruned ``input_ids`` followed by
        the new tokens (so ``out[:, inputs.input_ids.shape[1]:]`` keeps working); False returns the
        pruned prompt the model actually saw.
    image_mean / image_std: the processor's normalisation (default: the family's) for selection.
    sync_cuda: synchronise CUDA around the ViT for ``vit_ms`` (costs a sync; off by default).
    """

    original_prompt_in_generate: bool = True
    image_mean: tuple[float, float, float] | None = None
    image_std: tuple[float, float, float] | None = None
    sync_cuda: bool = False


@dataclass
class ImageStats:
    """One image of the last call: LLM tokens before/after pruning and selector time."""

    image: int
    sample: int
    grid: tuple[int, int]
    tokens_before: int
    tokens_after: int
    selector_ms: float
    method: str
    resized: tuple[int, int] | None = None

    @property
    def retain(self) -> float:
        return self.tokens_after / self.tokens_before


@dataclass
class CallStats:
    """Stats of one ``forward``/``generate`` call with images."""

    entry: str
    images: list[ImageStats] = field(default_factory=list)
    plan_ms: float = 0.0  # selection + index bookkeeping (everything before the ViT)
    vit_ms: float = 0.0
    videos_passed_through: int = 0
    llm_tokens_before: int = 0  # longest unpruned row (B, L) -> L
    llm_tokens_after: int = 0  # L'

    @property
    def tokens_before(self) -> int:
        return sum(s.tokens_before for s in self.images)

    @property
    def tokens_after(self) -> int:
        return sum(s.tokens_after for s in self.images)

    @property
    def retain(self) -> float:
        return self.tokens_after / max(1, self.tokens_before)

    @property
    def selector_ms(self) -> float:
        return sum(s.selector_ms for s in self.images)


@dataclass
class Prepared:
    """What one call turns into: kwargs for the unmodified model plus the bookkeeping behind them.

    vit_rows: (N_kept,) rows of the unpruned (virtual) ``pixel_values`` the ViT received.
    """

    kwargs: dict
    plan: SequencePlan
    stats: CallStats
    selections: list[Selection]
    vit_rows: torch.Tensor
    vision_kwargs: dict


def _resolve_methods(method, options) -> Method:
    if isinstance(method, str):
        method = create_method(method, **options)
    elif options:
        raise TypeError("options are only accepted together with a method name")
    methods = list(method) if isinstance(method, (list, tuple)) else [method]
    for m in methods:
        if not isinstance(m, Method):
            raise TypeError(f"expected a vlprune method (see vlprune.create_method), got {type(m).__name__}")
        if m.stage not in SUPPORTED_STAGES:
            raise NotImplementedError(
                f"method {m.name!r} acts at stage {m.stage!r}; vlprune.apply integrates {SUPPORTED_STAGES} so far"
            )
    if len(methods) != 1:
        raise ValueError("apply() takes exactly one pre_vit method")
    return methods[0]


class PruningSession:
    """Yielded by :func:`apply`. ``stats`` / ``last`` describe the last call with images."""

    def __init__(self, model, method: Method, config: ApplyConfig, processor=None):
        self.model = model
        self.method = method
        self.config = config
        self.adapter: FamilyAdapter = get_adapter(model)
        self.mean = config.image_mean
        self.std = config.image_std
        if processor is not None:
            self.adapter.check_processor(processor)
            ip = getattr(processor, "image_processor", processor)
            self.mean = self.mean or tuple(getattr(ip, "image_mean", None) or ()) or None
            self.std = self.std or tuple(getattr(ip, "image_std", None) or ()) or None
        self.last: CallStats | None = None
        self.last_prepared: Prepared | None = None
        self._handles: list = []
        self._saved: dict = {}
        self._forward_params = [p for p in inspect.signature(type(model).forward).parameters if p != "self"]

    @property
    def stats(self) -> list[ImageStats]:
        """Per-image stats of the last call (empty before the first call with images)."""
        return list(self.last.images) if self.last is not None else []

    # ------------------------------------------------------------------ core
    def prepare(self, *, input_ids=None, attention_mask=None, mm_token_type_ids=None, pixel_values=None,
                image_grid_thw=None, pixel_values_videos=None, video_grid_thw=None, entry: str = "forward",
                **extra) -> Prepared:
        """Select, run the pruned ViT and build the pruned LLM inputs for one batch.

        Raises ValueError on inputs it cannot prune exactly (before any model compute).
        """
        t0 = time.perf_counter()
        ad = self.adapter
        if input_ids is None:
            raise ValueError("pruning needs input_ids (inputs_embeds alone cannot be pruned)")
        if image_grid_thw is None:
            raise ValueError("pixel_values were given without image_grid_thw")
        if pixel_values.ndim != 2 or pixel_values.shape[-1] != ad.row_dim:
            raise ValueError(
                f"pixel_values rows have {tuple(pixel_values.shape)[1:]} values; the model's vision tower expects "
                f"{ad.row_dim} (3 x temporal {ad.spec.temporal_patch_size} x patch {ad.spec.patch_size}^2): "
                f"processor and model disagree on the patch size"
            )
        thw = image_grid_thw.detach().cpu().long()
        m = ad.merge
        if (thw[:, 0] != 1).any():
            raise ValueError(f"image grids must have t=1, got {thw.tolist()}")
        if (thw[:, 1] % m).any() or (thw[:, 2] % m).any():
            raise ValueError(f"image grids {thw.tolist()} are not divisible by the model's merge size {m}: "
                             f"processor and model disagree on the merge size")
        n_rows = int(thw.prod(-1).sum())
        if n_rows != pixel_values.shape[0]:
            raise ValueError(f"pixel_values has {pixel_values.shape[0]} rows, image_grid_thw {thw.tolist()} "
                             f"describes {n_rows}")
        counts = (thw.prod(-1) // (m * m)).tolist()
        spans = image_token_spans(input_ids, ad.image_token_id, counts, attention_mask)
        if mm_token_type_ids is None:
            mm_token_type_ids = (input_ids == ad.image_token_id).int() + 2 * (input_ids == ad.video_token_id).int()

        # ---- selection per image (pre-ViT stage; Resize re-patchifies the image)
        from vlprune.grid import BlockGrid

        grids = BlockGrid.from_pixel_values(pixel_values, thw, ad.spec, self.mean, self.std)
        sels, sources, new_thw, stats = [], [], [], []
        off = 0
        for i, (g, sp) in enumerate(zip(grids, spans)):
            sel = self.method(g)
            if sel.resized is not None:
                rows_i, thw_i = self._repatchify(g, sel.resized)
                if (thw_i[1] // m, thw_i[2] // m) != tuple(sel.grid):
                    raise ValueError(f"method {sel.method!r}: resized grid {sel.grid} does not match {sel.resized} px")
                sources.append((rows_i.to(pixel_values.device, pixel_values.dtype), 0))
            else:
                if tuple(sel.grid) != g.shape:
                    raise ValueError(f"method {sel.method!r} returned grid {sel.grid} for a {g.shape} image")
                thw_i = tuple(thw[i].tolist())
                sources.append((pixel_values, off))
            off += int(thw[i].prod())
            sels.append(sel)
            new_thw.append(thw_i)
            stats.append(ImageStats(i, sp.row, tuple(g.shape), sp.length, sel.n_kept, sel.selector_ms,
                                    sel.method, sel.resized))
        vthw = torch.tensor(new_thw, dtype=image_grid_thw.dtype, device=image_grid_thw.device)
        kept = [s.kept for s in sels]
        new_counts = [int(t * h * w) // (m * m) for t, h, w in new_thw]

        # ---- LLM side: pruned ids, unpruned positions
        rope_extra = {k: extra[k] for k in ad.rope_extra_keys if extra.get(k) is not None}

        def rope_fn(ids, mm, am):
            return ad.rope_index(ids, mm, am, vthw, video_grid_thw, rope_extra)

        pad_id = self._pad_id(input_ids, attention_mask)
        plan = build_sequence_plan(input_ids, attention_mask, mm_token_type_ids, spans, kept, rope_fn,
                                   ad.image_token_id, pad_id, new_counts)

        # ---- ViT inputs: kept rows (whole 2x2 groups) + precomputed positions / seqlens
        rows, vrows, voff = [], [], 0
        for (src, src_off), k, (t, h, w) in zip(sources, kept, new_thw):
            local = patch_rows(k, 0, m)
            rows.append(src[(local + src_off).to(src.device)])
            vrows.append(local + voff)
            voff += t * h * w
        pixel_rows = torch.cat(rows, 0)
        vit_rows = torch.cat(vrows, 0)
        vkw = ad.vision_kwargs(vthw, vit_rows, kept)
        t1 = time.perf_counter()
        self._sync()
        enc = ad.encode_images(pixel_rows, vthw, dict(vkw), [len(k) for k in kept])
        mm_out = {"image": enc}
        n_vid = 0
        if pixel_values_videos is not None:
            # Videos pass through untouched: the model's own encoder on all their patches.
            mm_out["video"] = ad.inner.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)
            n_vid = int(video_grid_thw.shape[0])
        self._sync()
        t2 = time.perf_counter()

        call = CallStats(entry, stats, (t1 - t0) * 1e3, (t2 - t1) * 1e3, n_vid,
                         int(input_ids.shape[1]), int(plan.input_ids.shape[1]))
        kwargs = {
            "input_ids": plan.input_ids,
            "attention_mask": plan.attention_mask,
            "mm_token_type_ids": plan.mm_token_type_ids,
            "mm_encoder_outputs": mm_out,
        }
        prep = Prepared(kwargs, plan, call, sels, vit_rows, vkw)
        self.last, self.last_prepared = call, prep
        return prep

    def _repatchify(self, grid, size: tuple[int, int]):
        """Resize baseline: the grid's image resized to ``size`` (H, W) px -> processor rows + grid."""
        h, w = int(size[0]), int(size[1])
        img = Image.fromarray(grid.image()).resize((w, h), resample=Image.Resampling.BICUBIC)
        return patchify(np.asarray(img, dtype=np.uint8), self.adapter.spec, self.mean, self.std)

    def _pad_id(self, input_ids, attention_mask) -> int:
        if attention_mask is not None and bool((attention_mask == 0).any()):
            return int(input_ids[attention_mask == 0][0])
        pad = getattr(self.adapter.config.get_text_config(), "pad_token_id", None)
        return int(pad) if pad is not None else 0

    def _sync(self):
        if self.config.sync_cuda and torch.cuda.is_available():
            torch.cuda.synchronize()

    # ------------------------------------------------------------------ entry points
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
        cache = kwargs.get("past_key_values")
        if cache is not None and cache.get_seq_length() > 0:
            raise ValueError("images with a non-empty past_key_values (cache continuation) are not supported")
        call = {k: kwargs.pop(k) for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values",
                                          "image_grid_thw", "pixel_values_videos", "video_grid_thw") if k in kwargs}
        extra = {k: kwargs[k] for k in self.adapter.rope_extra_keys if k in kwargs}
        prep = self.prepare(**call, **extra, entry="forward")
        kwargs.update(prep.kwargs)
        kwargs["position_ids"] = prep.plan.position_ids
        if kwargs.get("labels") is not None:
            kwargs["labels"] = prep.plan.gather(kwargs["labels"], -100)
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
        original_ids = kwargs["input_ids"]
        call = {k: kwargs.pop(k) for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values",
                                          "image_grid_thw", "pixel_values_videos", "video_grid_thw") if k in kwargs}
        extra = {k: kwargs[k] for k in self.adapter.rope_extra_keys if k in kwargs}
        prep = self.prepare(**call, **extra, entry="generate")
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
        orig = model.generate
        self._handles.append(model.register_forward_pre_hook(self._forward_pre_hook, with_kwargs=True))
        model.generate = functools.wraps(orig)(functools.partial(self._generate, orig))
        _ACTIVE.add(model)

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
        finally:
            _ACTIVE.discard(model)


_MISSING = object()


@contextmanager
def apply(model, method: str | Method, *, processor=None, config: ApplyConfig | None = None,
          **options) -> Iterator[PruningSession]:
    """Context manager: run ``model`` with ``method`` (a registered name + options, or an instance).

    Validates the model (supported family, vision tower, patch/merge sizes; ``processor`` too when
    given) before installing anything. Yields a :class:`PruningSession`; ``session.stats`` holds the
    last call's per-image stats. On exit the model is exactly as before.
    """
    m = _resolve_methods(method, options)
    session = PruningSession(model, m, config or ApplyConfig(), processor)
    session._install()
    try:
        yield session
    finally:
        session._uninstall()

"""One call's preparation: input and pre-ViT selection, the pruned vision encoder, post-ViT selection,
then the LLM sequence plan (PixelPrune §3.2.3: kept tokens keep their unpruned positions).

Order: grids from ``pixel_values`` -> ``input`` stage (resize per sample) -> ``pre_vit`` (blocks that enter
the ViT) -> the family's vision tower on those patch rows only -> ``post_vit`` (tokens that enter the LLM,
DeepStack features follow) -> :func:`~vlprune.models.sequence.build_sequence_plan`. A pre-ViT method whose
``vit_block()`` is ``k`` has its keep set applied inside the tower after block ``k`` instead
(:mod:`vlprune.runtime.vit_prune`). Raises ``ValueError`` on inputs it cannot prune exactly, before any
model compute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from vlprune.grid import BlockGrid
from vlprune.methods.base import ImageContext
from vlprune.models.base import FamilyAdapter, patch_rows, patchify
from vlprune.models.sequence import ImageSpan, SequencePlan, build_sequence_plan, image_token_spans
from vlprune.runtime.checks import check_inputs
from vlprune.runtime.pipeline import Pipeline
from vlprune.runtime.post_vit import PostViTStage
from vlprune.runtime.stats import CallStats, ImageStats
from vlprune.runtime.vit_prune import VitPrune, resolve_block, vit_prune_hooks
from vlprune.selection import Selection


@dataclass
class Prepared:
    """What one call turns into: kwargs for the unmodified model plus the bookkeeping behind them.

    vit_rows: (N_kept,) rows of the (virtual, after any resize) ``pixel_values`` the ViT received;
    spans: per image, its run of kept tokens in ``plan.input_ids`` (what the llm stage prunes).
    """

    kwargs: dict
    plan: SequencePlan
    stats: CallStats
    selections: list[Selection]
    vit_rows: torch.Tensor
    vision_kwargs: dict
    contexts: list[ImageContext] = field(default_factory=list)
    spans: list[ImageSpan] = field(default_factory=list)


@dataclass
class _Image:
    """Per-image working state while a call is prepared."""

    ctx: ImageContext
    span: ImageSpan
    source: tuple[torch.Tensor, int]  # (pixel rows, first row of this image)
    thw: tuple[int, int, int]
    tokens: dict[str, int]
    stage_ms: dict[str, float] = field(default_factory=dict)
    resized: tuple[int, int] | None = None
    selection: Selection | None = None


class Preparer:
    """Runs the stages before the LLM for one model (one adapter, one pipeline)."""

    def __init__(self, adapter: FamilyAdapter, pipeline: Pipeline, mean=None, std=None, sync_cuda: bool = False,
                 pixel_limits: tuple[int, int] | None = None):
        self.ad = adapter
        self.pipeline = pipeline
        self.mean, self.std = mean, std
        self.sync_cuda = sync_cuda
        self.pixel_limits = pixel_limits or (adapter.spec.min_pixels, adapter.spec.max_pixels)
        self.post_vit = PostViTStage(adapter, pipeline)
        pre = pipeline.get("pre_vit")
        block = pre.vit_block() if pre is not None else None
        #: the ViT block after which the pre-ViT keep set applies (None: before the ViT)
        self.vit_block = None if block is None else resolve_block(block, len(adapter.visual.blocks), pre.name)
        #: set by ``PruningSession.process``: per image the (height, width) before the input stage resized it
        self.raw_sizes: list[tuple[int, int]] | None = None

    def __call__(self, *, input_ids=None, attention_mask=None, mm_token_type_ids=None, pixel_values=None,
                 image_grid_thw=None, pixel_values_videos=None, video_grid_thw=None, entry: str = "forward",
                 **extra) -> Prepared:
        t0 = time.perf_counter()
        ad = self.ad
        thw = check_inputs(ad, input_ids, pixel_values, image_grid_thw)
        m = ad.merge
        counts = (thw.prod(-1) // (m * m)).tolist()
        spans = image_token_spans(input_ids, ad.image_token_id, counts, attention_mask)
        if mm_token_type_ids is None:
            mm_token_type_ids = (input_ids == ad.image_token_id).int() + 2 * (input_ids == ad.video_token_id).int()
        grids = BlockGrid.from_pixel_values(pixel_values, thw, ad.spec, self.mean, self.std)
        raw, self.raw_sizes = self.raw_sizes, None
        images = self._images(grids, spans, pixel_values, thw, raw if raw and len(raw) == len(grids) else None)
        self._input_stage(images)
        self._pre_vit_stage(images, pixel_values)
        vit_blocks = [im.ctx.kept if self.vit_block is None else np.arange(im.ctx.grid.n_blocks, dtype=np.int64)
                      for im in images]
        pixel_rows, vit_rows, vthw = self._vit_rows(images, image_grid_thw, vit_blocks)
        vkw = ad.vision_kwargs(vthw, vit_rows, vit_blocks)
        t1 = time.perf_counter()
        self._sync()
        with self.post_vit.watch(vkw, [len(im.ctx.kept) for im in images]):
            enc = self._encode(pixel_rows, vthw, vkw, images, vit_blocks)
        mm_out = {"image": enc}
        n_vid = 0
        if pixel_values_videos is not None:  # videos pass through: the model's own encoder on all patches
            mm_out["video"] = ad.inner.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)
            n_vid = int(video_grid_thw.shape[0])
        self._sync()
        t2 = time.perf_counter()
        self._post_vit_stage(images, enc, input_ids, attention_mask)

        rope_extra = {k: extra[k] for k in ad.rope_extra_keys if extra.get(k) is not None}

        def rope_fn(ids, mm, am):
            return ad.rope_index(ids, mm, am, vthw, video_grid_thw, rope_extra)

        kept = [im.ctx.kept for im in images]
        new_counts = [int(t * h * w) // (m * m) for t, h, w in (im.thw for im in images)]
        plan = build_sequence_plan(input_ids, attention_mask, mm_token_type_ids, spans, kept, rope_fn,
                                   ad.image_token_id, self._pad_id(input_ids, attention_mask), new_counts)
        plan_spans = image_token_spans(plan.input_ids, ad.image_token_id, [len(k) for k in kept],
                                       plan.attention_mask)
        t3 = time.perf_counter()
        stats = [
            ImageStats(im.ctx.image, im.ctx.sample, im.ctx.order, tuple(grids[i].shape), dict(im.tokens),
                       self.pipeline.name, tuple(im.thw), vit_blocks[i], im.ctx.kept, len(im.ctx.kept),
                       im.resized, dict(im.stage_ms))
            for i, im in enumerate(images)
        ]
        valid = plan.attention_mask.bool() if plan.attention_mask is not None else torch.ones_like(plan.input_ids, dtype=torch.bool)
        text = (valid & (plan.input_ids != ad.image_token_id)).sum(1).tolist()
        call = CallStats(entry, stats, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, 0.0, n_vid,
                         int(input_ids.shape[1]), int(plan.input_ids.shape[1]), int(plan.input_ids.shape[1]),
                         text_tokens=[int(x) for x in text], attn_implementation=ad.attn_implementation)
        kwargs = {
            "input_ids": plan.input_ids,
            "attention_mask": plan.attention_mask,
            "mm_token_type_ids": plan.mm_token_type_ids,
            "mm_encoder_outputs": mm_out,
        }
        sels = [im.selection for im in images]
        return Prepared(kwargs, plan, call, sels, vit_rows, vkw, [im.ctx for im in images], plan_spans)

    # ------------------------------------------------------------------ stages
    def _images(self, grids, spans, pixel_values, thw, raw_sizes) -> list[_Image]:
        per_row: dict[int, int] = {}
        for s in spans:
            per_row[s.row] = per_row.get(s.row, 0) + 1
        seen: dict[int, int] = {}
        out, off = [], 0
        for i, (g, s) in enumerate(zip(grids, spans)):
            order = seen.get(s.row, 0)
            seen[s.row] = order + 1
            raw = tuple(raw_sizes[i]) if raw_sizes else tuple(g.size)
            b = self.ad.spec.block
            ctx = ImageContext(i, s.row, order, per_row[s.row], g, np.arange(g.n_blocks, dtype=np.int64), raw,
                               self.ad.spec, self.pixel_limits)
            out.append(_Image(ctx, s, (pixel_values, off), tuple(thw[i].tolist()), {"raw": (raw[0] // b) * (raw[1] // b)},
                              resized=None if raw == tuple(g.size) else tuple(g.size)))
            off += int(thw[i].prod())
        return out

    def _input_stage(self, images: list[_Image]) -> None:
        method = self.pipeline.get("input")
        if method is None:
            return
        by_row: dict[int, list[_Image]] = {}
        for im in images:
            by_row.setdefault(im.ctx.sample, []).append(im)
        for row_images in by_row.values():
            t0 = time.perf_counter()
            sizes = method.sizes([im.ctx for im in row_images])
            ms = (time.perf_counter() - t0) * 1e3 / len(row_images)
            if len(sizes) != len(row_images):
                raise ValueError(f"method {method.name!r} returned {len(sizes)} sizes for {len(row_images)} images")
            for im, size in zip(row_images, sizes):
                if size is not None and tuple(size) != tuple(im.ctx.grid.size):
                    self._resize(im, size, method.name)
                im.tokens["input"] = im.ctx.grid.n_blocks
                im.stage_ms["input"] = ms

    def _pre_vit_stage(self, images: list[_Image], pixel_values) -> None:
        method = self.pipeline.get("pre_vit")
        for im in images:
            if method is None:
                continue
            sel = method(im.ctx.grid, im.ctx)
            im.stage_ms["pre_vit"] = sel.selector_ms
            if sel.resized is not None:
                self._resize(im, sel.resized, sel.method)
                if tuple(im.ctx.grid.shape) != tuple(sel.grid):
                    raise ValueError(f"method {sel.method!r}: resized grid {sel.grid} does not match {sel.resized} px")
            elif tuple(sel.grid) != im.ctx.grid.shape:
                raise ValueError(f"method {sel.method!r} returned grid {sel.grid} for a {im.ctx.grid.shape} image")
            im.ctx.kept = np.asarray(sel.kept, dtype=np.int64)
            im.selection = sel
            im.tokens["pre_vit"] = len(im.ctx.kept)

    def _post_vit_stage(self, images: list[_Image], enc, input_ids, attention_mask) -> None:
        if self.post_vit.method is None:
            return
        times = self.post_vit.run([im.ctx for im in images], [im.span for im in images], enc, input_ids,
                                  attention_mask)
        for im, ms in zip(images, times):
            im.tokens["post_vit"] = len(im.ctx.kept)
            im.stage_ms["post_vit"] = ms

    def _encode(self, pixel_rows, vthw, vkw, images: list[_Image], vit_blocks: list[np.ndarray]):
        """The vision tower on ``vit_blocks``; with an in-ViT prune, its outputs cut to each image's kept tokens."""
        sizes = [len(b) for b in vit_blocks]
        if self.vit_block is None:
            return self.ad.encode_images(pixel_rows, vthw, dict(vkw), sizes)
        prune = VitPrune(self.vit_block, [im.ctx.kept for im in images], sizes)
        with vit_prune_hooks(self.ad, prune, vthw, vkw):
            enc = self.ad.encode_images(pixel_rows, vthw, dict(vkw), sizes)
        enc.pooler_output = tuple(prune.gather(list(enc.pooler_output)))
        if getattr(enc, "deepstack_features", None):
            enc.deepstack_features = [tuple(prune.gather(list(f))) for f in enc.deepstack_features]
        return enc

    # ------------------------------------------------------------------ helpers
    def _resize(self, im: _Image, size: tuple[int, int], method: str) -> None:
        """Re-patchify one image at ``size`` (H, W) px from the processor-resized pixels (bicubic)."""
        h, w = int(size[0]), int(size[1])
        b = self.ad.spec.block
        if h <= 0 or w <= 0 or h % b or w % b:
            raise ValueError(f"method {method!r}: resized size {h}x{w} px is not a positive multiple of the "
                             f"{b}-px block")
        rows, thw = resample_rows(im.ctx.grid, (h, w), self.ad.spec, self.mean, self.std)
        src = im.source[0]
        rows = rows.to(src.device, src.dtype)
        im.source, im.thw, im.resized = (rows, 0), tuple(thw), (h, w)
        grid = BlockGrid.from_pixel_values(rows, torch.tensor([thw]), self.ad.spec, self.mean, self.std)[0]
        im.ctx.grid = grid
        im.ctx.kept = np.arange(grid.n_blocks, dtype=np.int64)

    def _vit_rows(self, images: list[_Image], image_grid_thw, blocks: list[np.ndarray]):
        m = self.ad.merge
        rows, vrows, voff = [], [], 0
        for im, b in zip(images, blocks):
            src, src_off = im.source
            local = patch_rows(b, 0, m)
            rows.append(src[(local + src_off).to(src.device)])
            vrows.append(local + voff)
            voff += int(np.prod(im.thw))
        vthw = torch.tensor([im.thw for im in images], dtype=image_grid_thw.dtype, device=image_grid_thw.device)
        return torch.cat(rows, 0), torch.cat(vrows, 0), vthw

    def _pad_id(self, input_ids, attention_mask) -> int:
        if attention_mask is not None and bool((attention_mask == 0).any()):
            return int(input_ids[attention_mask == 0][0])
        pad = getattr(self.ad.config.get_text_config(), "pad_token_id", None)
        return int(pad) if pad is not None else 0

    def _sync(self):
        if self.sync_cuda and torch.cuda.is_available():
            torch.cuda.synchronize()


def resample_rows(grid: BlockGrid, size: tuple[int, int], spec, mean=None, std=None):
    """The image of ``grid`` resized (bicubic, PIL) to ``size`` = (H, W) px, as processor rows:
    (h*w, 3*T*P*P) float32 and its grid (1, h, w) in patches (Resize baseline, input-stage resizes)."""
    img = Image.fromarray(grid.image()).resize((int(size[1]), int(size[0])), resample=Image.Resampling.BICUBIC)
    return patchify(np.asarray(img, dtype=np.uint8), spec, mean, std)


def pixel_limits(image_processor) -> tuple[int, int] | None:
    """(min_pixels, max_pixels) of a Qwen-VL image processor (or processor), or None if it does not say."""
    ip = getattr(image_processor, "image_processor", image_processor)
    size = getattr(ip, "size", None) or {}
    get = size.get if hasattr(size, "get") else (lambda k: getattr(size, k, None))
    lo = getattr(ip, "min_pixels", None) or get("shortest_edge")
    hi = getattr(ip, "max_pixels", None) or get("longest_edge")
    return (int(lo), int(hi)) if lo and hi else None


def resize_inputs(method, samples: list[list], spec, limits: tuple[int, int]):
    """The input stage before the processor: load each sample's images, let ``method`` (or nobody) choose
    sizes from the sizes the processor would make, and resize the originals once (bicubic) to them.

    Returns (images per sample as PIL RGB, per image the processor's (height, width) without the resize,
    per image the (height, width) it was resized to or None).
    """
    from vlprune.grid import load_image, smart_resize

    out, raw, resized = [], [], []
    index = 0
    for row, imgs in enumerate(samples):
        loaded = [load_image(im) for im in imgs]
        sizes = [smart_resize(im.height, im.width, spec.block, *limits) for im in loaded]
        raw += sizes
        targets = [None] * len(loaded)
        if method is not None and loaded:
            ctxs = [ImageContext(index + k, row, k, len(loaded), None, np.zeros(0, np.int64), sz, spec, limits)
                    for k, sz in enumerate(sizes)]
            targets = method.sizes(ctxs)
        index += len(loaded)
        targets = [None if t is None or tuple(t) == sz else (int(t[0]), int(t[1])) for t, sz in zip(targets, sizes)]
        out.append([im if t is None else im.resize((t[1], t[0]), Image.Resampling.BICUBIC)
                    for im, t in zip(loaded, targets)])
        resized += targets
    return out, raw, resized

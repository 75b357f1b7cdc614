"""What the runner measures around one ``generate`` call: the canvas each image was seen at, visual
tokens per stage, the analytic FLOPs input of what ran, and prefill / decode time.

Each quantity is one small function of the :class:`vlprune.api.PruningSession` state, so a change in
what ``vlprune.apply`` reports touches one place.
"""

from __future__ import annotations

import time

from vlprune.eval.base import PromptContext
from vlprune.families import get_family


# ---------------------------------------------------------------------------------------------- canvas
def resize_limits(processor) -> tuple[int, int, int]:
    """(factor, min_pixels, max_pixels) of a Qwen-VL processor's resize (factor = patch x merge)."""
    from vlprune.runtime.prepare import pixel_limits

    ip = getattr(processor, "image_processor", processor)
    limits = pixel_limits(ip)
    if limits is None:
        raise ValueError(f"the processor's size {getattr(ip, 'size', None)!r} has no shortest_edge / longest_edge "
                         f"pixel limits")
    return int(ip.patch_size) * int(ip.merge_size), *limits


def family_limits(family: str, min_pixels: int | None = None, max_pixels: int | None = None) -> tuple[int, int, int]:
    """:func:`resize_limits` of the family's processor (defaults unless overridden)."""
    spec = get_family(family)
    return spec.block, int(min_pixels or spec.min_pixels), int(max_pixels or spec.max_pixels)


def canvas_size(size: tuple[int, int], limits: tuple[int, int, int]) -> tuple[int, int]:
    """(W_r, H_r) the processor resizes a (W, H) image to (``smart_resize``)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    factor, lo, hi = limits
    h, w = smart_resize(int(size[1]), int(size[0]), factor=factor, min_pixels=lo, max_pixels=hi)
    return int(w), int(h)


def prompt_context(family: str, sizes, limits: tuple[int, int, int]) -> PromptContext:
    """The context a prompt is built with: original sizes and the processor's canvases."""
    sizes = tuple((int(w), int(h)) for w, h in sizes)
    return PromptContext(family, sizes, tuple(canvas_size(s, limits) for s in sizes))


def seen_canvas(stats, patch: int) -> tuple[int, int]:
    """(W_r, H_r) one image was seen at: its vision-encoder grid (after any input / pre-ViT resize)."""
    _, gh, gw = (int(x) for x in stats.vit_grid_thw)
    return gw * patch, gh * patch


# ---------------------------------------------------------------------------------------------- tokens
def tokens_by_stage(image_stats) -> dict[str, int]:
    """Visual LLM tokens of one sample, summed over its images: ``{"raw": n, <stage>: n, ...}`` in stage order."""
    out: dict[str, int] = {}
    for s in image_stats:
        for k, v in s.tokens_by_stage.items():
            out[k] = out.get(k, 0) + int(v)
    return out


def retain_of(tokens: dict[str, int]) -> float | None:
    """Last stage / raw (the share of visual tokens the LLM finally held)."""
    if not tokens or not tokens.get("raw"):
        return None
    return list(tokens.values())[-1] / tokens["raw"]


# ---------------------------------------------------------------------------------------------- FLOPs
def flops_prompts(call) -> list:
    """Per batch row, the :class:`vlprune.flops.Prompt` of what ran (ViT grids and blocks, LLM tokens,
    in-LLM prune), as ``vlprune.apply`` reports it."""
    return call.flops_prompts()


def prefill_tflops(config, prompt) -> dict[str, float]:
    """Analytic prefill TFLOPs: ``vit`` (patch embed + blocks), ``merger``, ``llm`` (decoder), ``total``."""
    from vlprune.flops import prefill_flops

    d = prefill_flops(config, prompt).as_dict(1e12)
    return {k: d[k] for k in ("vit", "merger", "llm", "total")}


# ---------------------------------------------------------------------------------------------- time
class StepClock:
    """A ``LogitsProcessor`` that timestamps its first call: ``generate`` calls it once per step, the
    first time right after the prefill forward has produced the first logits. On CUDA it synchronises
    at that call (once per ``generate``) so the timestamp includes the queued prefill kernels."""

    def __init__(self, cuda: bool = False):
        import torch

        self._sync = torch.cuda.synchronize if cuda else None
        self.first: float | None = None
        self.calls = 0

    def __call__(self, input_ids, scores):
        if self.first is None:
            if self._sync:
                self._sync()
            self.first = time.perf_counter()
        self.calls += 1
        return scores

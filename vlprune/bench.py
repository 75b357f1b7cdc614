"""``vlprune bench``: measured latency, memory and KV cache of a real-size random-weight model, next to
the analytic FLOPs of :mod:`vlprune.flops`, for the unpruned model and each requested method.

What is measured, per image (each image is one batch-1 request built by the real offline processor,
:func:`vlprune.processor.build_processor`), per method, per repeat:

* ``vit_ms``: the model's vision tower call (a forward pre-hook / hook pair on ``model.model.visual``,
  summed over its calls in the prefill: one per forward, whether the model calls it (full) or
  :func:`vlprune.apply` does before the LLM (pruned); nothing nested is counted twice);
* ``prefill_ms`` (= TTFT): one ``model(**inputs, use_cache=True, logits_to_keep=1)`` producing the first
  token, including selection, the ViT, the LLM and the arg-max;
* ``decode_tok_s``: ``decode_tokens`` greedy steps with the KV cache after that prefill;
* ``peak_mem_mb``: CPU -- peak resident set size during the prefill minus the RSS before it (Linux
  ``VmHWM`` reset through ``/proc/self/clear_refs``; where that is not allowed, the ``ru_maxrss`` growth,
  which only sees new peaks); CUDA -- ``torch.cuda.max_memory_allocated`` minus the allocation before;
* ``kv_bytes``: the tensors held by the cache object after prefill (and the analytic value).

Timing: CUDA events on GPU; on CPU ``time.perf_counter`` with ``torch.set_num_threads`` fixed.
Weights are random (no download); the architecture is the named real-size shape of
:mod:`vlprune.shapes` unless ``layers`` / ``vision_layers`` cut its depth, which every output labels.
Bad input (unknown family/shape, a device or dtype that cannot run, a request that would not fit in
memory, an image that cannot be read or that the processor refuses, checked as ``analyze`` checks it)
raises :class:`BenchError`, a bad option value ``OptionError``, before the model is built.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlprune.images import ImageError, ImageOptions, check_image
from vlprune.methods import options as opt

__all__ = ["BenchConfig", "BenchError", "BenchResult", "register_shape", "resolve_shape", "run_bench"]


#: The environment variable through which oneDNN reads its primitive-cache capacity (entries; its
#: default is 1024). oneDNN reads it once per process, when its first primitive is created.
ONEDNN_CACHE_VAR = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def configure_onednn_cache(capacity: int | None) -> str | None:
    """Hand ``BenchConfig.onednn_cache`` to oneDNN; returns the capacity in effect for this process.

    A 2B model alternating between input sizes (full vs pruned, several images) overflows oneDNN's
    default cache, and evicted primitives and weight reorders are then paid inside timed prefills
    (docs/benchmarks.md). torch has no API for the capacity, so the typed setting is passed through
    oneDNN's own variable; it must happen before the process's first oneDNN primitive (``vlprune bench``
    does it first thing). ``None`` leaves whatever the process already has.
    """
    if capacity is not None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise BenchError(f"onednn_cache must be an integer >= 0 (0 disables oneDNN's cache), got {capacity!r}")
        os.environ[ONEDNN_CACHE_VAR] = str(capacity)
    return os.environ.get(ONEDNN_CACHE_VAR)


class BenchError(ValueError):
    """A bench request that cannot run; raised before the model is built."""


# ---------------------------------------------------------------------------------------------- shapes
_EXTRA_SHAPES: dict = {}


def register_shape(shape) -> None:
    """Make an extra :class:`vlprune.shapes.Shape` (e.g. a tiny test architecture) known to the bench."""
    _EXTRA_SHAPES[shape.name] = shape


def _all_shapes() -> dict:
    from vlprune.shapes import SHAPES

    return {**SHAPES, **_EXTRA_SHAPES}


def resolve_shape(shape: str, family: str | None = None):
    """``(family name, Shape)`` for a full shape name (``qwen3-vl-2b``) or an alias resolved with the
    family (``--family qwen3-vl --shape 2b``). Unknown or mismatched names raise :class:`BenchError`."""
    from vlprune.families import get_family

    fam = None
    if family is not None:
        try:
            fam = get_family(family).name
        except ValueError as exc:
            raise BenchError(str(exc)) from None
    shapes = _all_shapes()
    candidates = [shape, f"{fam}-{shape}"] if fam else [shape]
    for name in candidates:
        if name in shapes:
            s = shapes[name]
            if fam is not None and s.family != fam:
                raise BenchError(f"shape {name!r} is a {s.family} architecture, not --family {fam}")
            return s.family, s
    known = sorted(n for n in shapes if fam is None or shapes[n].family == fam)
    aliases = sorted({n[len(fam) + 1:] for n in known if n.startswith(f"{fam}-")}) if fam else []
    hint = f" (aliases for {fam}: {', '.join(aliases)})" if aliases else ""
    if fam is None:
        raise BenchError(f"unknown shape {shape!r}; give a full name or --family with an alias; "
                         f"known shapes: {', '.join(known)}")
    raise BenchError(f"unknown shape {shape!r} for family {fam}; known: {', '.join(known)}{hint}")


def _shape_config(shape, layers: int | None, vision_layers: int | None):
    """HF config of ``shape`` with optionally cut LLM / ViT depth (other fields unchanged)."""
    from vlprune.shapes import shape_config

    for flag, v, have in (("--layers", layers, shape.text["num_hidden_layers"]),
                          ("--vision-layers", vision_layers, shape.vision["depth"])):
        if v is not None and v > have:
            raise BenchError(f"{flag} {v} exceeds the shape's {have} {'LLM' if flag == '--layers' else 'ViT'} layers")
    return shape_config(shape, layers, vision_layers)


# ---------------------------------------------------------------------------------------------- config
DTYPES = {"bf16": "bfloat16", "fp32": "float32", "fp16": "float16"}
ATTN = ("sdpa", "eager")


@dataclass
class BenchConfig:
    """One ``vlprune bench`` request (``methods`` excludes ``full``, which always runs first).

    ``options``: method options (tau, order, metric, retain; None = not given), routed as
    :func:`vlprune.analyze.build_methods` does -- one that none of ``methods`` can use is refused.
    ``seed`` seeds the weights and the seeded baselines. ``image``: how images are loaded and sized
    (:class:`vlprune.images.ImageOptions`). :func:`prepare` validates everything with the rules of the
    Python API and raises :class:`BenchError` or ``OptionError`` (naming the option) before the model
    is built.
    """

    images: list[str]
    shape: str = "2b"
    family: str | None = "qwen3-vl"
    methods: list[str] = field(default_factory=lambda: ["pixelprune"])
    options: dict = field(default_factory=dict)
    dtype: str = "bf16"
    device: str = "cpu"
    threads: int | None = None
    warmup: int = 1
    repeats: int = 3
    decode_tokens: int = 8
    layers: int | None = None
    vision_layers: int | None = None
    image: ImageOptions = field(default_factory=ImageOptions)
    max_memory_gb: float | None = None
    prompt: str = "Describe this image."
    attn: str = "sdpa"
    seed: int = 0
    progress: bool = True
    onednn_cache: int | None = 8192  # oneDNN primitive-cache entries (CPU); None: leave the process's setting

    @property
    def reduced(self) -> bool:
        return self.layers is not None or self.vision_layers is not None

    def check(self) -> None:
        """The run settings, with the shared option rules (:mod:`vlprune.methods.options`)."""
        for name, minimum in (("warmup", 0), ("repeats", 1), ("decode_tokens", 0)):
            opt.integer(name, getattr(self, name), minimum=minimum)
        for name in ("threads", "layers", "vision_layers"):
            if getattr(self, name) is not None:
                opt.integer(name, getattr(self, name), minimum=1)
        if self.max_memory_gb is not None:
            opt.positive("max_memory_gb", self.max_memory_gb)
        opt.seed(self.seed)
        opt.choice("attn", self.attn, ATTN)
        if not isinstance(self.image, ImageOptions):
            raise TypeError(f"image must be an ImageOptions, got {type(self.image).__name__}")
        if not isinstance(self.prompt, str):
            raise opt.OptionError("prompt", f"option prompt must be a string, got {type(self.prompt).__name__}")


# ---------------------------------------------------------------------------------------------- checks
def _check_device(device: str, dtype: str) -> str:
    """Probe that ``dtype`` runs the model's op kinds on ``device``; returns the torch dtype name."""
    import torch

    if dtype not in DTYPES:
        raise BenchError(f"unknown --dtype {dtype!r}; expected one of: {', '.join(DTYPES)}")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BenchError(f"unknown --device {device!r}; expected cpu or cuda")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BenchError(f"--device {device}: no CUDA GPU is available on this machine (use --device cpu)")
        if dtype == "bf16" and not torch.cuda.is_bf16_supported():
            raise BenchError(f"--dtype bf16: this GPU ({torch.cuda.get_device_name()}) does not support bfloat16")
    tdt = getattr(torch, DTYPES[dtype])
    try:  # the op kinds the models run: linear, conv3d (patch embed), SDPA, norms, softmax
        x = torch.randn(2, 8, 4, 16, device=device).to(tdt)
        torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True)
        torch.nn.functional.linear(x, torch.ones(16, 16, device=device, dtype=tdt))
        torch.nn.functional.conv3d(torch.ones(1, 3, 2, 4, 4, device=device, dtype=tdt),
                                   torch.ones(4, 3, 2, 2, 2, device=device, dtype=tdt), stride=2)
        torch.nn.functional.layer_norm(x, (16,))
        torch.softmax(x, -1)
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        raise BenchError(f"--dtype {dtype} cannot run on --device {device}: {exc}") from None
    return DTYPES[dtype]


def _available_memory(device: str) -> tuple[float, str]:
    """Bytes free for the model and its activations, and where the number comes from."""
    import torch

    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return float(free), "torch.cuda.mem_get_info free"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024, "/proc/meminfo MemAvailable"
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")), "sysconf available pages"


@dataclass
class MemoryEstimate:
    weights: float
    kv: float
    activations: float
    available: float
    source: str

    @property
    def total(self) -> float:
        return self.weights + self.kv + self.activations

    def to_dict(self) -> dict:
        gib = 2**30
        return {"weights_gib": self.weights / gib, "kv_gib": self.kv / gib, "activations_gib": self.activations / gib,
                "total_gib": self.total / gib, "available_gib": self.available / gib, "available_source": self.source}


def estimate_memory(config, requests: list["Request"], dtype_name: str, decode_tokens: int,
                    device: str, max_memory_gb: float | None, attn: str = "sdpa") -> MemoryEstimate:
    """Upper-bound memory of the largest request from the config alone (nothing is built).

    weights: parameter count (the model instantiated on the meta device) x dtype bytes;
    kv: :func:`vlprune.flops.kv_cache_bytes` of the unpruned prompt + decode tokens;
    activations: the largest ViT / LLM layer working set -- hidden states and MLP intermediates of every
    token plus attention scores: ``heads x n^2`` for ``attn="eager"`` (it materialises them), one head's
    ``n^2`` for SDPA (block-wise kernels hold far less; one head bounds a per-head math fallback).
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from vlprune import flops

    b = flops.DTYPE_BYTES[dtype_name]
    with torch.device("meta"):
        meta = AutoModelForImageTextToText.from_config(config)
    n_params = sum(p.numel() for p in meta.parameters())
    del meta
    vs, ts = flops.vision_shape(config), flops.text_shape(config)
    kv = act = 0.0
    for r in requests:
        prompt = r.prompt()
        kv = max(kv, flops.kv_cache_bytes(config, prompt, dtype=dtype_name, new_tokens=decode_tokens).total_bytes)
        patches = r.image_tokens * vs.merge**2
        vh, th = (vs.heads, ts.heads) if attn == "eager" else (1, 1)
        vit = patches * (4 * vs.dim + 2 * vs.mlp_dim) * b + vh * patches**2 * b
        llm = r.seq_len * (6 * ts.hidden + 3 * ts.mlp_dim) * b + th * r.seq_len**2 * b
        act = max(act, vit, llm)
    if max_memory_gb is not None:
        avail, source = max_memory_gb * 2**30, "--max-memory-gb"
    else:
        avail, source = _available_memory(device)
    return MemoryEstimate(float(n_params * b), kv, act, avail, source)


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class Request:
    """One image turned into model inputs by the real processor (batch 1)."""

    path: str
    inputs: dict
    grid_thw: tuple[int, int, int]
    image_tokens: int
    seq_len: int

    def prompt(self, kept=None):
        from vlprune.flops import ImageTokens, Prompt

        return Prompt([ImageTokens(self.grid_thw, kept)], text_tokens=self.seq_len - self.image_tokens)


_PROCESSORS: dict = {}


def build_requests(cfg: BenchConfig, family: str) -> tuple[object, list[Request]]:
    """Every image checked as ``analyze`` checks it (:func:`vlprune.images.check_image`: loadable,
    within the pixel limit and the processor's aspect ratio), then turned into a batch-1 request."""
    from vlprune.processor import build_processor, processor_inputs

    if not cfg.images:
        raise BenchError("no images given")
    options = cfg.image
    images = []
    for p in cfg.images:
        try:
            images.append((str(p), check_image(p, family, options)[0]))
        except ImageError as exc:
            raise BenchError(f"image {exc}") from None
        except OSError as exc:
            raise BenchError(f"image {p}: cannot read: {exc}") from None
    lo, hi = options.bounds(family)
    key = (family, lo, hi)
    if key not in _PROCESSORS:  # loading the tokenizer takes seconds; reuse within a process
        _PROCESSORS[key] = build_processor(family, min_pixels=lo, max_pixels=hi)
    proc = _PROCESSORS[key]
    out = []
    for path, img in images:
        inputs = dict(processor_inputs(proc, img, cfg.prompt))
        thw = tuple(int(x) for x in inputs["image_grid_thw"][0].tolist())
        n_img = int((inputs["input_ids"] == proc.image_token_id).sum())
        out.append(Request(path, inputs, thw, n_img, int(inputs["input_ids"].shape[1])))
    return proc, out


# ---------------------------------------------------------------------------------------------- model
def _fill_random(model, seed: int) -> None:
    """Random weights fast: matrices get a seeded N(0, 0.02) tile repeated over their storage (values
    do not change the compute), norm weights 1, other vectors 0. Seconds instead of minutes at 2B."""
    import torch

    g = torch.Generator().manual_seed(seed)
    tile = (torch.randn(1 << 20, generator=g) * 0.02)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                flat = p.data.view(-1)
                t = tile.to(flat.device, flat.dtype)
                for s in range(0, flat.numel(), t.numel()):
                    n = min(t.numel(), flat.numel() - s)
                    flat[s:s + n].copy_(t[:n])
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()


def build_model(config, dtype_name: str, device: str, seed: int, attn: str):
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = AutoModelForImageTextToText.from_config(config, dtype=getattr(torch, dtype_name),
                                                        attn_implementation=attn)
    model = model.to(device).eval()
    _fill_random(model, seed)
    return model


# ---------------------------------------------------------------------------------------------- timing
class _Timer:
    """CUDA events on GPU, ``perf_counter`` on CPU."""

    def __init__(self, device: str):
        import torch

        self.cuda = device.startswith("cuda")
        self.torch = torch

    def mark(self):
        if self.cuda:
            e = self.torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def ms(self, a, b) -> float:
        if self.cuda:
            b.synchronize()
            return float(a.elapsed_time(b))
        return (b - a) * 1e3


class _VisionTimer:
    """Times the vision tower's calls (pre-hook / hook pair); removed by :meth:`close`."""

    def __init__(self, visual, timer: _Timer):
        self.timer = timer
        self.spans: list = []
        self._start = None
        self.handles = [visual.register_forward_pre_hook(self._pre), visual.register_forward_hook(self._post)]

    def _pre(self, module, args):
        self._start = self.timer.mark()

    def _post(self, module, args, out):
        self.spans.append((self._start, self.timer.mark()))
        self._start = None

    def reset(self):
        self.spans = []

    def total_ms(self) -> float:
        return sum(self.timer.ms(a, b) for a, b in self.spans)

    def close(self):
        for h in self.handles:
            h.remove()


class _PeakMemory:
    """Peak memory of a code region above its starting level (see module docstring for the method)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")
        self.clear_refs = False
        if self.cuda:
            self.method = "torch.cuda.max_memory_allocated - memory_allocated before the prefill"
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self.clear_refs = self._status("VmHWM") is not None
            except OSError:
                self.clear_refs = False
            self.method = ("peak RSS (VmHWM, reset via /proc/self/clear_refs) - RSS before the prefill"
                           if self.clear_refs else
                           "ru_maxrss growth during the prefill (only new process peaks are seen)")

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def start(self):
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            self.base = self.torch.cuda.memory_allocated()
        elif self.clear_refs:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = self._status("VmRSS")
        else:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def stop(self) -> float:
        """MiB above the starting level."""
        if self.cuda:
            self.torch.cuda.synchronize()
            peak = self.torch.cuda.max_memory_allocated()
        elif self.clear_refs:
            peak = self._status("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(0, peak - self.base) / 2**20


def _cache_bytes(cache) -> int:
    """Bytes of every tensor the cache object holds (K/V, and Qwen3.5's conv/recurrent states)."""
    import torch

    seen: set[int] = set()
    total = 0

    def add(obj, depth=0):
        nonlocal total
        if isinstance(obj, torch.Tensor):
            if id(obj) not in seen and obj.device.type != "meta":
                seen.add(id(obj))
                total += obj.numel() * obj.element_size()
        elif isinstance(obj, (list, tuple)) and depth < 4:
            for o in obj:
                add(o, depth + 1)
        elif isinstance(obj, dict) and depth < 4:
            for o in obj.values():
                add(o, depth + 1)
        elif depth < 3 and hasattr(obj, "__dict__") and not isinstance(obj, type):
            for o in vars(obj).values():
                add(o, depth + 1)

    add(cache)
    return total


# ---------------------------------------------------------------------------------------------- run
@dataclass
class Sample:
    vit_ms: float
    prefill_ms: float
    decode_tok_s: float
    peak_mem_mb: float
    plan_ms: float = 0.0  # pruned: selection + index bookkeeping before the ViT (part of prefill_ms)


@dataclass
class ImageRun:
    """One method on one image: token counts, analytic numbers, and the measured samples."""

    path: str
    grid_thw: tuple[int, int, int]
    image_tokens: int
    kept_tokens: int
    prompt_tokens: int
    llm_tokens: int
    flops_prefill: float
    flops_vit: float
    flops_decode_step: float
    kv_bytes_analytic: int
    kv_bytes_measured: int = 0
    first_token: int = -1
    samples: list[Sample] = field(default_factory=list)

    @property
    def retain(self) -> float:
        return self.kept_tokens / max(1, self.image_tokens)


def _stats(values: list[float]) -> dict:
    if not values:
        return {"median": None, "min": None, "max": None, "iqr": None, "n": 0}
    v = sorted(values)
    q = np.percentile(v, [25, 75]) if len(v) > 1 else (v[0], v[0])
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "iqr": float(q[1] - q[0]), "n": len(v)}


@dataclass
class BenchResult:
    config: dict
    shape: str
    family: str
    reduced: bool
    dtype: str
    device: str
    machine: dict
    memory_estimate: dict
    memory_method: str
    timing_method: str
    runs: dict  # method -> list[ImageRun]
    build_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    # --- per-method aggregates over all images (one repeat = one pass over every image)
    def summary(self, method: str) -> dict:
        runs = self.runs[method]
        base = self.runs["full"]
        n_rep = min(len(r.samples) for r in runs) if runs else 0

        def per_repeat(attr):
            return [sum(getattr(r.samples[k], attr) for r in runs) for k in range(n_rep)]

        def total(attr):
            return sum(getattr(r, attr) for r in runs)

        dec = [statistics.median([r.samples[k].decode_tok_s for r in runs]) for k in range(n_rep)]
        out = {
            "method": method,
            "images": len(runs),
            "image_tokens": total("image_tokens"),
            "kept_tokens": total("kept_tokens"),
            "retain": total("kept_tokens") / max(1, total("image_tokens")),
            "llm_tokens": total("llm_tokens"),
            "flops_prefill": total("flops_prefill"),
            "flops_vit": total("flops_vit"),
            "flops_decode_step": total("flops_decode_step") / max(1, len(runs)),
            "kv_bytes_analytic": total("kv_bytes_analytic"),
            "kv_bytes_measured": total("kv_bytes_measured"),
            "vit_ms": _stats(per_repeat("vit_ms")),
            "plan_ms": _stats(per_repeat("plan_ms")),
            "prefill_ms": _stats(per_repeat("prefill_ms")),
            "decode_tok_s": _stats(dec),
            "peak_mem_mb": _stats([max(r.samples[k].peak_mem_mb for r in runs) for k in range(n_rep)]),
        }
        fb = sum(r.flops_prefill for r in base)
        out["flops_ratio"] = out["flops_prefill"] / fb if fb else None
        bp = self.summary_prefill_median("full")
        mp = out["prefill_ms"]["median"]
        out["prefill_ratio"] = (mp / bp) if (bp and mp) else None
        out["prefill_speedup"] = (bp / mp) if (bp and mp) else None
        bmin = self._prefill_total("full", min)
        mmin = self._prefill_total(method, min)
        # best-of-repeats: interference from other jobs only adds time, so min is the least disturbed
        out["prefill_speedup_min"] = (bmin / mmin) if (bmin and mmin) else None
        if out["prefill_speedup_min"] and out["flops_ratio"]:
            out["speedup_efficiency_min"] = out["prefill_speedup_min"] * out["flops_ratio"]
        if out["prefill_speedup"] and out["flops_ratio"]:
            # measured speedup / analytic speedup (1 / FLOPs ratio): 1.0 = time falls exactly as FLOPs do
            out["speedup_efficiency"] = out["prefill_speedup"] * out["flops_ratio"]
        return out

    def summary_prefill_median(self, method: str):
        return self._prefill_total(method, statistics.median)

    def _prefill_total(self, method: str, reduce):
        """``reduce`` over repeats of the prefill ms summed over images."""
        runs = self.runs[method]
        n_rep = min(len(r.samples) for r in runs) if runs else 0
        if not n_rep:
            return None
        return reduce([sum(r.samples[k].prefill_ms for r in runs) for k in range(n_rep)])

    def to_dict(self) -> dict:
        per_image = {}
        for m, runs in self.runs.items():
            per_image[m] = []
            for r in runs:
                d = {k: v for k, v in dataclasses.asdict(r).items() if k != "samples"}
                d["retain"] = r.retain
                for attr in ("vit_ms", "plan_ms", "prefill_ms", "decode_tok_s", "peak_mem_mb"):
                    d[attr] = _stats([getattr(s, attr) for s in r.samples])
                d["prefill_ms_passes"] = [s.prefill_ms for s in r.samples]  # in pass order, to see drift
                per_image[m].append(d)
        return {
            "shape": self.shape, "family": self.family, "reduced_depth": self.reduced, "dtype": self.dtype,
            "device": self.device, "machine": self.machine, "config": self.config,
            "memory_estimate": self.memory_estimate, "memory_method": self.memory_method,
            "timing_method": self.timing_method, "build_s": self.build_s, "notes": self.notes,
            "methods": [self.summary(m) for m in self.runs], "per_image": per_image,
        }


def _loadavg() -> tuple[float, float, float]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return (float("nan"),) * 3


def _machine(device: str, threads: int) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _methods(cfg: BenchConfig) -> list:
    """``[("full", None), (name, Method), ...]``: options routed and checked as in ``analyze``
    (:func:`vlprune.analyze.build_methods`); the seed goes to the methods that take one."""
    from vlprune.analyze import build_methods

    names = list(dict.fromkeys(n for n in cfg.methods if n != "full"))
    return [("full", None), *zip(names, build_methods(names, cfg.options, shared={"seed": cfg.seed}))]


def prepare(cfg: BenchConfig):
    """Everything that can fail on bad input, before the model is built.

    Returns ``(family, shape, config, dtype_name, processor, requests, methods, memory_estimate)``.
    """
    cfg.check()
    configure_onednn_cache(cfg.onednn_cache)
    family, shape = resolve_shape(cfg.shape, cfg.family)
    cfg.image.bounds(family)
    methods = _methods(cfg)
    dtype_name = _check_device(cfg.device, cfg.dtype)
    config = _shape_config(shape, cfg.layers, cfg.vision_layers)
    proc, requests = build_requests(cfg, family)
    from vlprune.processor import align_config_to_processor

    align_config_to_processor(config, proc)
    mem = estimate_memory(config, requests, dtype_name, cfg.decode_tokens, cfg.device, cfg.max_memory_gb, cfg.attn)
    if mem.total > mem.available:
        gib = 2**30
        big = max(requests, key=lambda r: r.seq_len)
        raise BenchError(
            f"estimated memory {mem.total / gib:.2f} GiB (weights {mem.weights / gib:.2f} + KV {mem.kv / gib:.2f} "
            f"+ activations {mem.activations / gib:.2f}; largest request {big.path}: {big.image_tokens} image "
            f"tokens, {big.seq_len} prompt tokens) exceeds the {mem.available / gib:.2f} GiB available "
            f"({mem.source}); use smaller images (--max-pixels), --dtype bf16, or fewer layers"
        )
    return family, shape, config, dtype_name, proc, requests, methods, mem


def run_bench(cfg: BenchConfig, log=None) -> BenchResult:
    """Validate (see :func:`prepare`), build the model, warm up, repeat; returns a :class:`BenchResult`."""
    import torch
    from tqdm import tqdm

    from vlprune import flops

    family, shape, config, dtype_name, proc, requests, methods, mem = prepare(cfg)
    log = log or (lambda s: print(s, file=sys.stderr))
    threads = cfg.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    load_start = _loadavg()
    t0 = time.perf_counter()
    model = build_model(config, dtype_name, cfg.device, cfg.seed, cfg.attn)
    build_s = time.perf_counter() - t0
    timer = _Timer(cfg.device)
    peak = _PeakMemory(cfg.device)
    runs: dict[str, list[ImageRun]] = {m: [] for m, _ in methods}
    for m, _ in methods:
        for r in requests:
            runs[m].append(None)

    def to_dev(inputs):
        return {k: (v.to(cfg.device) if hasattr(v, "to") else v) for k, v in inputs.items()}

    dev_inputs = [to_dev(r.inputs) for r in requests]
    from vlprune.analyze import warm_up

    for _, method in methods:  # load the compiled selector kernels outside any timed region
        if method is not None:
            warm_up(method, family)
    vt = _VisionTimer(model.model.visual, timer)
    total = (cfg.warmup + cfg.repeats) * len(methods) * len(requests)
    bar = tqdm(total=total, desc=f"bench {shape.name}", unit="prefill", file=sys.stderr, dynamic_ncols=True,
               disable=True if not cfg.progress else None)
    try:
        with torch.inference_mode(), bar:
            for rep in range(cfg.warmup + cfg.repeats):
                measured = rep >= cfg.warmup
                # rotate the method order each pass so that no method always runs right after another
                k = rep % len(methods)
                for mname, method in methods[k:] + methods[:k]:
                    for i, (req, inputs) in enumerate(zip(requests, dev_inputs)):
                        bar.set_postfix_str(f"{'run' if measured else 'warmup'} {rep + 1 - (cfg.warmup if measured else 0)} {mname} {Path(req.path).name}")
                        sample, info = _one(model, method, inputs, vt, timer, peak, cfg, proc)
                        if runs[mname][i] is None:
                            kept_idx = info["kept"]
                            est = flops.estimate(config, req.prompt(kept_idx), dtype=dtype_name)
                            ptoks = req.prompt(kept_idx)
                            dec = flops.decode_flops(config, ptoks).total
                            n_kept = req.image_tokens if kept_idx is None else len(kept_idx)
                            runs[mname][i] = ImageRun(
                                req.path, req.grid_thw, req.image_tokens, n_kept, req.seq_len,
                                req.seq_len - req.image_tokens + n_kept, float(est.prefill.total),
                                float(est.prefill.vit + est.prefill.merger), float(dec), int(est.kv.total_bytes),
                                info["kv_bytes"], info["first_token"],
                            )
                        if measured:
                            runs[mname][i].samples.append(sample)
                        bar.update(1)
    finally:
        vt.close()
    notes = []
    load_end = _loadavg()
    if not timer.cuda and max(load_start[0], load_end[0]) > threads + 0.5:
        notes.append(f"machine was shared: 1-min load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end "
                     f"with {threads} bench threads on {os.cpu_count()} cores; CPU times are inflated and noisy")
    if cfg.reduced:
        notes.append(f"REDUCED DEPTH: {config.get_text_config().num_hidden_layers} LLM layers, "
                     f"{config.vision_config.depth} ViT layers (shape {shape.name} has "
                     f"{shape.text['num_hidden_layers']} / {shape.vision['depth']}); not the real model's latency")
    notes.append("random weights; analytic FLOPs from vlprune.flops (dense attention blocks, logits_to_keep=1)")
    machine = _machine(cfg.device, threads)
    machine["loadavg_start"], machine["loadavg_end"] = load_start, load_end
    machine["onednn_primitive_cache"] = os.environ.get(ONEDNN_CACHE_VAR)
    res = BenchResult(
        config={k: v for k, v in dataclasses.asdict(cfg).items()}, shape=shape.name, family=family,
        reduced=cfg.reduced, dtype=dtype_name, device=cfg.device, machine=machine,
        memory_estimate=mem.to_dict(), memory_method=peak.method,
        timing_method=("CUDA events" if timer.cuda else f"wall clock (time.perf_counter), torch threads = {threads}"),
        runs=runs, build_s=build_s, notes=notes,
    )
    return res


def _one(model, method, inputs, vt: _VisionTimer, timer: _Timer, peak: _PeakMemory, cfg: BenchConfig, proc):
    """One prefill (+ decode steps) of one image with one method (``None`` = the unmodified model)."""
    from vlprune.api import apply

    def prefill_and_decode(session):
        vt.reset()
        peak.start()
        t0 = timer.mark()
        out = model(**inputs, use_cache=True, logits_to_keep=1)
        tok = out.logits[:, -1].argmax(-1, keepdim=True)
        t1 = timer.mark()
        mem = peak.stop()
        prefill_ms = timer.ms(t0, t1)
        vit_ms = vt.total_ms()
        cache = out.past_key_values
        kv_bytes = _cache_bytes(cache)
        first = int(tok[0, 0])
        dec_ms = 0.0
        if cfg.decode_tokens:
            d0 = timer.mark()
            for _ in range(cfg.decode_tokens):
                out = model(input_ids=tok, past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = out.past_key_values
                tok = out.logits[:, -1].argmax(-1, keepdim=True)
            d1 = timer.mark()
            dec_ms = timer.ms(d0, d1)
        kept, plan_ms = None, 0.0
        if session is not None:
            kept = np.concatenate([np.asarray(s.kept) for s in session.last_prepared.selections])
            plan_ms = float(session.last.plan_ms)
        tok_s = cfg.decode_tokens / (dec_ms / 1e3) if dec_ms > 0 else float("nan")
        return Sample(vit_ms, prefill_ms, tok_s, mem, plan_ms), {"kept": kept, "kv_bytes": kv_bytes, "first_token": first}

    inner = model.model
    saved = getattr(inner, "rope_deltas", None)
    try:
        inner.rope_deltas = None
        if method is None:
            return prefill_and_decode(None)
        with apply(model, method, processor=proc) as session:
            return prefill_and_decode(session)
    finally:
        inner.rope_deltas = saved


# ---------------------------------------------------------------------------------------------- output
def _fmt_stat(s: dict, fmt: str = "{:.0f}") -> str:
    if s["median"] is None or (isinstance(s["median"], float) and math.isnan(s["median"])):
        return "-"
    return f"{fmt.format(s['median'])} [{fmt.format(s['min'])}-{fmt.format(s['max'])}]"


def format_table(res: BenchResult) -> str:
    d = res.to_dict()
    lines = []
    depth = "REDUCED DEPTH (not the real model's latency)" if res.reduced else "full depth"
    m = res.machine
    lines.append(f"{res.shape} ({res.family}), random weights, {depth}; {res.dtype} on {res.device} "
                 f"({m.get('gpu') or m['cpu']}, {m['threads']} threads); {len(res.runs['full'])} image(s); "
                 f"median [min-max] of {res.config['repeats']} repeat(s) after {res.config['warmup']} warm-up; "
                 f"times summed over images")
    hdr = (f"{'method':<11} {'kept/tokens':>13} {'retain':>7} {'TFLOPs':>8} {'FLOPs x':>8} {'ViT ms':>19} "
           f"{'prefill ms':>21} {'speedup':>7} {'eff':>5} {'best-of':>8} {'decode tok/s':>16} {'peak MiB':>16} {'KV MiB':>13}")
    lines.append(hdr)
    for s in d["methods"]:
        kvm = s["kv_bytes_measured"] / 2**20
        kva = s["kv_bytes_analytic"] / 2**20
        lines.append(
            f"{s['method']:<11} {str(s['kept_tokens']) + '/' + str(s['image_tokens']):>13} {s['retain']:>7.1%} "
            f"{s['flops_prefill'] / 1e12:>8.3f} {s['flops_ratio']:>8.3f} {_fmt_stat(s['vit_ms']):>19} "
            f"{_fmt_stat(s['prefill_ms']):>21} {s['prefill_speedup'] or float('nan'):>6.2f}x "
            f"{s.get('speedup_efficiency') or float('nan'):>5.2f} {s.get('prefill_speedup_min') or float('nan'):>7.2f}x {_fmt_stat(s['decode_tok_s'], '{:.1f}'):>16} "
            f"{_fmt_stat(s['peak_mem_mb']):>16} {kvm:>6.1f}/{kva:<6.1f}"
        )
    lines.append("FLOPs x = analytic prefill FLOPs / full; speedup = full prefill ms / method prefill ms (medians); "
                 "eff = speedup x FLOPs ratio (1.0: time falls as FLOPs do); best-of = the speedup of the fastest "
                 "repeats; KV MiB = measured/analytic")
    lines.append(f"peak memory: {res.memory_method}; timing: {res.timing_method}")
    for n in res.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def save_plot(res: BenchResult, path: str) -> None:
    """Bar plot: ViT / prefill / decode time and FLOPs ratio per method (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = res.to_dict()["methods"]
    names = [s["method"] for s in d]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    vit = [s["vit_ms"]["median"] or 0 for s in d]
    pre = [s["prefill_ms"]["median"] or 0 for s in d]
    err = [[p - (s["prefill_ms"]["min"] or 0) for p, s in zip(pre, d)], [(s["prefill_ms"]["max"] or 0) - p for p, s in zip(pre, d)]]
    axes[0].bar(x, pre, color="#4c72b0", label="prefill (TTFT)", yerr=err, capsize=3)
    axes[0].bar(x, vit, color="#dd8452", label="of which ViT")
    axes[0].set_ylabel("ms (sum over images)")
    axes[0].legend(fontsize=8)
    axes[1].bar(x - 0.2, [s["flops_ratio"] for s in d], 0.4, label="analytic FLOPs ratio", color="#55a868")
    axes[1].bar(x + 0.2, [s["prefill_ratio"] or 0 for s in d], 0.4, label="measured prefill ratio", color="#4c72b0")
    axes[1].set_ylabel("vs full")
    axes[1].legend(fontsize=8)
    axes[2].bar(x, [s["decode_tok_s"]["median"] or 0 for s in d], color="#8172b3")
    axes[2].set_ylabel("decode tokens/s")
    for ax in axes:
        ax.set_xticks(x, names, rotation=20)
    depth = " REDUCED DEPTH" if res.reduced else ""
    fig.suptitle(f"{res.shape}{depth}, {res.dtype} on {res.device} ({res.machine.get('gpu') or res.machine['cpu']})",
                 fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(res: BenchResult, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(res.to_dict(), indent=1, default=float))

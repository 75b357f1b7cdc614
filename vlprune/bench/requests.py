"""What a bench run needs before the model is built: the requests (images through the real processor),
a device / dtype / attention check, and the memory estimate that refuses requests that cannot fit."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from vlprune.bench.config import DTYPES, BenchConfig, BenchError
from vlprune.images import ImageError, check_image


# ---------------------------------------------------------------------------------------------- checks
def check_device(device: str, dtype: str) -> str:
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


def flash_attention_status(device: str = "cuda", dtype: str = "bf16") -> str | None:
    """``None`` when ``flash_attention_2`` can run here with ``device`` / ``dtype``, else why not
    (FlashAttention-2 kernels: CUDA GPUs only, fp16 / bf16 only, the ``flash_attn`` package)."""
    if not device.startswith("cuda"):
        return f"it runs on CUDA GPUs only, not --device {device} (use --attn sdpa)"
    if dtype not in ("bf16", "fp16"):
        return f"it needs --dtype bf16 or fp16, not {dtype}"
    if importlib.util.find_spec("flash_attn") is None:
        return "the flash_attn package is not installed (pip install flash-attn --no-build-isolation)"
    from transformers.utils import is_flash_attn_2_available

    if not is_flash_attn_2_available():
        return "transformers cannot use the installed flash_attn package (is_flash_attn_2_available() is False)"
    return None


def check_attention(attn: str, device: str, dtype: str) -> None:
    if attn == "flash_attention_2":
        why = flash_attention_status(device, dtype)
        if why is not None:
            raise BenchError(f"--attn flash_attention_2: {why}")


def available_memory(device: str) -> tuple[float, str]:
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
        """The unpruned (``kept=None``) :class:`vlprune.flops.Prompt` of this request."""
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


# ---------------------------------------------------------------------------------------------- memory
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


def meta_model(config):
    """The model of ``config`` on the meta device (no memory): parameter count, pipeline checks."""
    import torch
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def estimate_memory(config, requests: list[Request], dtype_name: str, decode_tokens: int,
                    device: str, max_memory_gb: float | None, attn: str = "sdpa", n_params: int | None = None) -> MemoryEstimate:
    """Upper-bound memory of the largest request from the config alone (nothing is built).

    weights: parameter count (the model instantiated on the meta device, or ``n_params``) x dtype bytes;
    kv: :func:`vlprune.flops.kv_cache_bytes` of the unpruned prompt + decode tokens;
    activations: the largest ViT / LLM layer working set -- hidden states and MLP intermediates of every
    token plus attention scores: ``heads x n^2`` for ``attn="eager"`` (it materialises them), one head's
    ``n^2`` for SDPA / FlashAttention (block-wise kernels hold far less; one head bounds a per-head math
    fallback).
    """
    from vlprune import flops

    b = flops.DTYPE_BYTES[dtype_name]
    if n_params is None:
        n_params = sum(p.numel() for p in meta_model(config).parameters())
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
        avail, source = available_memory(device)
    return MemoryEstimate(float(n_params * b), kv, act, avail, source)

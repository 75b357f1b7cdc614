"""What the FLOPs model returns: FLOPs by stage, the KV cache, and both together."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class FlopsBreakdown:
    """FLOPs by stage (multiply-add = 2). ``llm_state`` is the gated-delta-rule state math of Qwen3.5's
    linear-attention layers (0 for the other families)."""

    patch_embed: int = 0
    vit_linear: int = 0
    vit_attn: int = 0
    merger: int = 0
    llm_linear: int = 0
    llm_attn: int = 0
    llm_state: int = 0
    llm_scoring: int = 0
    lm_head: int = 0

    @property
    def vit(self) -> int:
        return self.patch_embed + self.vit_linear + self.vit_attn

    @property
    def llm(self) -> int:
        return self.llm_linear + self.llm_attn + self.llm_state + self.llm_scoring

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    @property
    def tflops(self) -> float:
        return self.total / 1e12

    def __add__(self, other: FlopsBreakdown) -> FlopsBreakdown:
        return FlopsBreakdown(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self, unit: float = 1.0) -> dict[str, float]:
        """Every field plus ``vit``, ``llm`` and ``total``, divided by ``unit`` (``1e12`` for TFLOPs)."""
        out = {f.name: getattr(self, f.name) / unit for f in fields(self)}
        out.update(vit=self.vit / unit, llm=self.llm / unit, total=self.total / unit)
        return out


@dataclass(frozen=True)
class KVCache:
    """Cache size after prefill (+ ``new_tokens`` decoded): attention K/V, and Qwen3.5's fixed-size
    linear-attention state (recurrent state + conv state), which does not grow with the sequence."""

    kv_bytes: int
    state_bytes: int
    tokens_per_layer: tuple[int, ...]

    @property
    def total_bytes(self) -> int:
        return self.kv_bytes + self.state_bytes

    @property
    def gib(self) -> float:
        return self.total_bytes / 2**30


@dataclass(frozen=True)
class Estimate:
    """Everything :func:`estimate` computes for one :class:`Prompt`."""

    prefill: FlopsBreakdown
    decode: FlopsBreakdown  # all ``decode_tokens`` steps together
    kv: KVCache
    vit_patches: int  # patches entering the ViT (all images)
    visual_tokens: int  # visual tokens entering the LLM, before any in-LLM prune
    llm_tokens: tuple[int, ...]  # prefill sequence length of each decoder layer
    notes: tuple[str, ...] = field(default=())

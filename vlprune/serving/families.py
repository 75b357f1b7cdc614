"""The Qwen-VL architectures vLLM serves with vlprune, keyed by the checkpoint's architecture name.

Each row: the stock vLLM class (module under ``vllm.model_executor.models``), the plug-in's own name
(``Vlprune`` + stock name, selected per deployment with ``hf_overrides``) and the kind of vision tower,
which decides how encoder metadata is rebuilt for the kept blocks (:mod:`vlprune.serving.encoder`).
The stock architectures stay registered and untouched. No vLLM import here.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "Vlprune"


@dataclass(frozen=True)
class ServedArchitecture:
    """stock: vLLM / transformers architecture name; module: its vLLM module; encoder: ``rope2d``
    (Qwen2-VL), ``windows`` (Qwen2.5-VL) or ``interpolated`` (Qwen3-VL, Qwen3.5); model_type: the
    config's ``model_type``."""

    stock: str
    module: str
    encoder: str
    model_type: str

    @property
    def name(self) -> str:
        return PREFIX + self.stock

    @property
    def target(self) -> str:
        """``module:Class`` of the plug-in class (registered lazily with vLLM)."""
        return f"vlprune.serving.vllm_models:{self.name}"


ARCHITECTURES: dict[str, ServedArchitecture] = {a.stock: a for a in (
    ServedArchitecture("Qwen2VLForConditionalGeneration", "qwen2_vl", "rope2d", "qwen2_vl"),
    ServedArchitecture("Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl", "windows", "qwen2_5_vl"),
    ServedArchitecture("Qwen3VLForConditionalGeneration", "qwen3_vl", "interpolated", "qwen3_vl"),
    ServedArchitecture("Qwen3VLMoeForConditionalGeneration", "qwen3_vl_moe", "interpolated", "qwen3_vl_moe"),
    ServedArchitecture("Qwen3_5ForConditionalGeneration", "qwen3_5", "interpolated", "qwen3_5"),
    ServedArchitecture("Qwen3_5MoeForConditionalGeneration", "qwen3_5", "interpolated", "qwen3_5_moe"),
)}
BY_NAME: dict[str, ServedArchitecture] = {a.name: a for a in ARCHITECTURES.values()}


def served(architecture: str, model_type: str | None = None) -> ServedArchitecture:
    """The row of a stock (or plug-in) architecture name; ServingError naming what is supported."""
    from vlprune.serving.plan import ServingError

    row = ARCHITECTURES.get(architecture) or BY_NAME.get(architecture)
    if row is None:
        what = f"{architecture!r}" + (f" (model_type {model_type!r})" if model_type else "")
        raise ServingError(f"vlprune cannot serve architecture {what} with vLLM: it prunes the Qwen-VL families "
                           f"{', '.join(sorted(ARCHITECTURES))}")
    return row


class VlpruneArchitecture:
    """``hf_overrides`` for vLLM: swaps the checkpoint's Qwen-VL architecture for the plug-in's (refusing
    any other architecture), after applying the user's own overrides (a dict or a callable)."""

    def __init__(self, extra=None):
        if extra is not None and not (isinstance(extra, dict) or callable(extra)):
            raise TypeError(f"hf_overrides must be a dict or a callable, got {type(extra).__name__}")
        self.extra = extra

    def __call__(self, config):
        if callable(self.extra):
            config = self.extra(config)
        elif self.extra:
            config.update(self.extra)
        archs = [a for a in (getattr(config, "architectures", None) or []) if a]
        if not archs:  # vLLM first calls overrides on an empty config, to see whether they change model_type
            return config
        if len(archs) != 1:
            from vlprune.serving.plan import ServingError

            raise ServingError(f"the checkpoint's config names architectures {archs!r}; vlprune needs exactly one "
                               f"Qwen-VL architecture")
        config.architectures = [served(archs[0], getattr(config, "model_type", None)).name]
        return config

    def __repr__(self) -> str:  # vLLM logs and hashes its config
        return f"VlpruneArchitecture(extra={self.extra!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, VlpruneArchitecture) and other.extra == self.extra

    def __hash__(self) -> int:
        return hash(repr(self))

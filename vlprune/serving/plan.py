"""What a vLLM deployment prunes: the method spec and its options, validated with vlprune's own rules.

The plan travels as one entry of vLLM's ``mm_processor_kwargs`` (so it reaches the multimodal processor
in the API-server process and enters its cache hash), options flattened as ``NAME.OPTION`` keys (the
``--opt`` spelling of the command line; vLLM hashes these kwargs and needs flat, scalar values)::

    {"vlprune": {"method": "tar+pixelprune", "tar.lam": 0.2, "pixelprune.tau": 0.05}}

A request may override single options with its own ``mm_processor_kwargs={"vlprune": {...}}``.
Only methods that act before the vision encoder run inside vLLM: pre-ViT methods (PixelPrune and the
same-budget baselines) and the input stage (TAR), alone or composed. Later stages change the ViT's
output or the LLM's sequence inside vLLM's scheduler and KV cache and are refused with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

#: the key of the plan inside ``mm_processor_kwargs``
KEY = "vlprune"
#: stages a vLLM deployment can run (before the vision encoder)
SERVED_STAGES = ("input", "pre_vit")


class ServingError(ValueError):
    """A pruning configuration vLLM cannot serve; the message says what is supported and why."""


def supported_methods() -> list[str]:
    """Registered methods a vLLM deployment can run."""
    from vlprune.methods import list_methods

    return sorted(n for s in SERVED_STAGES for n in list_methods(s))


def _refuse_stage(name: str, stage: str) -> ServingError:
    why = {
        "post_vit": "it selects among the vision encoder's outputs after vLLM has sized the image's placeholder "
                    "tokens and scheduled its KV cache",
        "llm": "it drops tokens inside the decoder from layer K on, which needs a per-layer sequence length "
               "that vLLM's paged KV cache and scheduler do not have",
    }[stage]
    return ServingError(
        f"method {name!r} ({stage} stage) cannot run inside vLLM: {why}. vLLM serves methods that act before "
        f"the vision encoder: {', '.join(supported_methods())} (pre-ViT, optionally composed with 'tar', "
        f"e.g. 'tar+pixelprune'); run {name!r} with vlprune.apply on a transformers model instead")


def _json_scalar(method: str, option: str, value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ServingError(f"option {method}.{option}={value!r}: options of a vLLM deployment must be numbers, "
                       f"strings, booleans or null (they travel as JSON in mm_processor_kwargs)")


@dataclass(frozen=True)
class ServingPlan:
    """A validated pruning spec for vLLM. ``options``: per method name, the options given (not defaults)."""

    method: str
    options: dict = field(default_factory=dict)

    @classmethod
    def create(cls, method: str = "pixelprune", options: dict | None = None) -> "ServingPlan":
        """Validate ``method`` (a name or ``a+b`` composition) and ``options`` (``{option: value}`` for a
        single method, or ``{name: {option: value}}``) with the rules of :func:`vlprune.create_method`."""
        from vlprune.runtime.pipeline import resolve_pipeline

        if not isinstance(method, str):
            raise ServingError(f"method must be a registered name or 'a+b' composition string, got {method!r}")
        options = dict(options or {})
        pipeline = resolve_pipeline(method, options)  # ValueError / TypeError / OptionError name the problem
        for m in pipeline.methods:
            if m.stage not in SERVED_STAGES:
                raise _refuse_stage(m.name, m.stage)
            if m.stage == "pre_vit" and m.vit_block() is not None:
                raise ServingError(f"method {m.describe()} applies its keep set inside the vision encoder (after "
                                   f"block {m.vit_block()}); vLLM serves pruning before the vision encoder only: "
                                   f"leave after_block unset")
        if pipeline.get("pre_vit") is None and pipeline.get("input") is None:
            raise ServingError(f"method spec {method!r} selects nothing vLLM can run")
        names = [n.strip() for n in method.split("+")]
        if len(names) == 1 and options and not all(isinstance(v, dict) and k == names[0] for k, v in options.items()):
            per = {names[0]: options}
        else:
            per = {k: dict(v) for k, v in options.items()}
        per = {n: {o: _json_scalar(n, o, v) for o, v in sorted(opts.items())} for n, opts in sorted(per.items()) if opts}
        return cls("+".join(names), per)

    @classmethod
    def from_payload(cls, payload, where: str = "mm_processor_kwargs") -> "ServingPlan":
        """The plan of a ``mm_processor_kwargs[KEY]`` entry (what :meth:`payload` writes)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("method"), str):
            raise ServingError(f"{where}[{KEY!r}] must be a mapping with a 'method' name, got {payload!r}; build "
                               f"it with vlprune.serving.vllm_kwargs(...)")
        names = [n.strip() for n in payload["method"].split("+")]
        options: dict[str, dict] = {}
        for key, value in payload.items():
            if key == "method":
                continue
            name, dot, option = key.partition(".")
            if not dot or not option:
                raise ServingError(f"{where}[{KEY!r}] key {key!r} is not 'method' or NAME.OPTION (e.g. "
                                   f"'pixelprune.tau')")
            if name not in names:
                raise ServingError(f"{where}[{KEY!r}] sets {key!r}, but method {payload['method']!r} has no "
                                   f"{name!r}")
            options.setdefault(name, {})[option] = value
        return cls.create(payload["method"], options)

    def payload(self) -> dict:
        """The entry for ``mm_processor_kwargs[KEY]``: ``method`` and flat ``NAME.OPTION`` values."""
        out = {"method": self.method}
        for name, opts in self.options.items():
            out.update({f"{name}.{o}": v for o, v in opts.items()})
        return out

    def fingerprint(self) -> str:
        """A canonical string of the plan (mixed into each image's cache hash)."""
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))

    def pipeline(self):
        """The :class:`~vlprune.runtime.pipeline.Pipeline` this plan runs."""
        from vlprune.runtime.pipeline import resolve_pipeline

        return resolve_pipeline(self.method, {k: dict(v) for k, v in self.options.items()})

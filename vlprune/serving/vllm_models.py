"""The plug-in's vLLM model classes, built on first access from the stock ones.

``VlpruneQwen2VLForConditionalGeneration`` (and the other names of :mod:`vlprune.serving.families`) is the
stock class with :class:`~vlprune.serving.model.PruningModel` mixed in, registered with a processor that
is the stock one with :class:`~vlprune.serving.processor.PruningProcessor` mixed in (same processing info
and dummy inputs). vLLM imports this module when the architecture is resolved, in every process that
needs it; the stock classes are not modified. The vLLM hooks are probed first.
"""

from __future__ import annotations

import importlib
import logging

from vlprune.serving import probe
from vlprune.serving.families import BY_NAME

log = logging.getLogger(__name__)


def build(name: str):
    """The plug-in class ``name`` (a key of :data:`vlprune.serving.families.BY_NAME`)."""
    from vllm.multimodal import MULTIMODAL_REGISTRY

    from vlprune.serving.model import PruningModel
    from vlprune.serving.processor import PruningProcessor, wrap_info

    probe.check()
    if not probe.tested():
        log.warning("vlprune: vLLM %s is not a tested release (tested: %s); every hook the plug-in uses is present",
                    probe.vllm_version(), probe.TESTED)
    row = BY_NAME[name]
    stock = getattr(importlib.import_module(f"vllm.model_executor.models.{row.module}"), row.stock)
    factories = stock._processor_factory
    processor = type(f"Vlprune{factories.processor.__name__}", (PruningProcessor, factories.processor),
                     {"__module__": __name__})
    cls = type(name, (PruningModel, stock), {"__module__": __name__, "__qualname__": name,
                                              "vlprune_encoder": row.encoder})
    return MULTIMODAL_REGISTRY.register_processor(processor, info=wrap_info(factories.info),
                                                  dummy_inputs=factories.dummy_inputs)(cls)


def __getattr__(name: str):
    if name in BY_NAME:
        cls = build(name)
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(BY_NAME))

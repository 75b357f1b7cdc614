"""vLLM general plug-in entry point (``vllm.general_plugins``: ``vlprune``).

:func:`register` adds the plug-in's architectures (``Vlprune`` + the stock Qwen-VL names) to vLLM's model
registry by their ``module:Class`` strings, so nothing is imported until an engine selects one. It is
idempotent and leaves the stock architectures untouched. Importing this module has no side effects.
"""

from __future__ import annotations

import logging
import os

from vlprune.serving.families import ARCHITECTURES

#: under vLLM's logger, so the line carries vLLM's process prefix ("(EngineCore pid=...)")
log = logging.getLogger("vllm.vlprune")


def register() -> list[str]:
    """Register the plug-in architectures with vLLM (lazily); returns the names registered now."""
    from vllm import ModelRegistry

    known = set(ModelRegistry.get_supported_archs())
    added = []
    for row in ARCHITECTURES.values():
        if row.name not in known:
            ModelRegistry.register_model(row.name, row.target)
            added.append(row.name)
    if added:
        log.info("vlprune plug-in: %d architectures registered in process %d (%s)", len(added), os.getpid(),
                 ", ".join(added))
    return added

"""The default dtype of ``vlprune bench``: bf16 where the hardware multiplies bf16 matrices natively, else fp32.

A CPU without bf16 matrix units runs a bf16 matmul through conversions, several times slower than the
same matmul in fp32 (measured on a 2-thread x86 VM without AVX512-BF16 / AMX: 2048x1536 @ 1536x8960 took
1070 ms in bf16, 272 ms in fp32), so a bf16 default would make a CPU benchmark crawl there. Detected:

* x86: ``avx512_bf16`` or ``amx_bf16`` among the ``flags`` of ``/proc/cpuinfo`` (Linux);
* Arm: ``bf16`` among the ``Features`` of ``/proc/cpuinfo`` (the Armv8.6 BF16 instructions, BFMMLA);
* anything else (no ``/proc/cpuinfo``, e.g. macOS, or another architecture): unknown, so fp32.

CUDA: bf16 where the GPU supports it, else fp16. An explicit ``--dtype`` always wins.
"""

from __future__ import annotations

import platform
from pathlib import Path

X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
ARM_BF16_FEATURES = ("bf16",)


def _cpuinfo() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def cpu_bf16_units(cpuinfo: str | None = None, machine: str | None = None) -> tuple[bool | None, str]:
    """(whether the CPU has bf16 matrix units -- None when it cannot be told --, what was found).

    ``cpuinfo``: the text of ``/proc/cpuinfo`` (read when None); ``machine``: ``platform.machine()``.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    arch = (machine if machine is not None else platform.machine()).lower()
    if text is None:
        return None, f"no /proc/cpuinfo on this {arch or 'unknown'} machine"
    x86 = arch in ("x86_64", "amd64", "i386", "i686", "x86")
    arm = arch.startswith(("aarch64", "arm"))
    if not (x86 or arm):
        return None, f"bf16 matrix units are not detected on {arch or 'this architecture'}"
    key, wanted = ("flags", X86_BF16_FLAGS) if x86 else ("features", ARM_BF16_FEATURES)
    found: set[str] = set()
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key:
            found.update(value.split())
    if not found:
        return None, f"no '{key}' line in /proc/cpuinfo"
    have = [w for w in wanted if w in found]
    if have:
        return True, f"{', '.join(have)} in /proc/cpuinfo {key}"
    return False, f"none of {', '.join(wanted)} in /proc/cpuinfo {key}"


def default_dtype(device: str = "cpu", cpuinfo: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """(``"bf16"`` | ``"fp16"`` | ``"fp32"``, a one-line note saying why) for a run without ``--dtype``."""
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return "fp16", "dtype fp16 (default on this GPU: it does not support bf16; --dtype sets another)"
        return "bf16", "dtype bf16 (default on CUDA; --dtype sets another)"
    has, why = cpu_bf16_units(cpuinfo, machine)
    if has:
        return "bf16", f"dtype bf16 (default on this CPU: it has bf16 matrix units, {why}; --dtype sets another)"
    reason = ("no bf16 matrix units (AVX512-BF16 / AMX-BF16 on x86, BF16 on Arm)" if has is False
              else "bf16 matrix units could not be detected")
    return "fp32", (f"dtype fp32 (default on this CPU: {reason}: {why}; bf16 matmuls run several times slower "
                    f"than fp32 without them; --dtype bf16 forces bf16)")

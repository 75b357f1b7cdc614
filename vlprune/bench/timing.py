"""Timing and memory helpers of the benchmarks (public: other benchmark scripts reuse them).

    timer = Timer(device)                      # CUDA events on a GPU, time.perf_counter on CPU
    a = timer.mark(); ...; ms = timer.ms(a, timer.mark())
    vt = VisionTimer(model.model.visual, timer)   # sums the vision tower's calls; vt.close() removes it
    peak = PeakMemory(device); peak.start(); ...; mib = peak.stop()
    cache_bytes(compat.cache_from_output(out))  # bytes the cache object holds

Peak memory: CPU -- peak resident set size of the region minus the RSS before it (Linux ``VmHWM`` reset
through ``/proc/self/clear_refs``; where that is not allowed, the ``ru_maxrss`` growth, which only sees
new process peaks); CUDA -- ``torch.cuda.max_memory_allocated`` minus the allocation before.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

__all__ = ["PeakMemory", "Timer", "VisionTimer", "cache_bytes", "loadavg", "machine_info"]


class Timer:
    """CUDA events on GPU (``ms`` synchronises on the end event), ``time.perf_counter`` on CPU."""

    def __init__(self, device: str):
        import torch

        self.cuda = str(device).startswith("cuda")
        self.torch = torch

    def mark(self):
        if self.cuda:
            e = self.torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def ms(self, a, b) -> float:
        """Milliseconds between two marks."""
        if self.cuda:
            b.synchronize()
            return float(a.elapsed_time(b))
        return (b - a) * 1e3

    @property
    def method(self) -> str:
        return "CUDA events" if self.cuda else "wall clock (time.perf_counter)"


class VisionTimer:
    """Times a module's calls (the vision tower: a pre-hook / hook pair, summed over the calls since
    :meth:`reset`; nothing nested is counted twice); :meth:`close` removes the hooks."""

    def __init__(self, visual, timer: Timer):
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
        self.handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PeakMemory:
    """Peak memory of a code region above its starting level (see the module docstring)."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.cuda = str(device).startswith("cuda")
        self.clear_refs = False
        self.base = 0
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


def cache_bytes(cache) -> int:
    """Bytes of every tensor the cache object holds (K/V, and Qwen3.5's conv/recurrent states), each
    tensor counted once."""
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


def loadavg() -> tuple[float, float, float]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return (float("nan"),) * 3


def machine_info(device: str, threads: int) -> dict:
    """CPU, cores, torch threads, torch / transformers / Python versions, date; on CUDA the GPU name,
    CUDA version and the flash_attn version (None when absent)."""
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
    if str(device).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
        try:
            import flash_attn

            info["flash_attn"] = flash_attn.__version__
        except ImportError:
            info["flash_attn"] = None
    return info

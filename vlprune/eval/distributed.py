"""Data-parallel evaluation on ``torch.distributed``: every process runs a shard of the samples.

``torchrun --nproc-per-node N -m vlprune eval run ...`` starts N processes; each joins the process group
(gloo on CPU, nccl on CUDA with GPU ``LOCAL_RANK``, as torchrun assigns), takes every N-th pending
sample, and appends its records to its own shard file. Rank 0 then merges the shards into the same
files a single-process run writes, in dataset order. A single process is the world of size 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")


@dataclass
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``; ``local_rank`` picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, items: list[T]) -> list[T]:
        """This rank's items: every ``world_size``-th one starting at ``rank`` (balanced, order kept)."""
        return items[self.rank :: self.world_size]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order (a one-element list in a single process)."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and hand its result to every rank; an exception there is raised on
        every rank (same type where it is one of the evaluation errors, with rank 0's message)."""
        if not self.active:
            return fn()
        import torch.distributed as dist

        box = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except Exception as exc:  # noqa: BLE001 -- re-raised below on every rank
                box[0] = ("error", exc)
        dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise value
        return value


def launched_by_torchrun() -> bool:
    """True in a process started by ``torchrun`` / torch elastic."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_torchelastic_launched()


def init_from_torchrun(device: str | None) -> DistContext:
    """Join the process group torchrun set up (``env://``): nccl when running on CUDA, else gloo.

    ``LOCAL_RANK`` (torchrun's per-node process index) selects the GPU, as torchrun documents.
    """
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = (device is None and torch.cuda.is_available()) or (device or "").startswith("cuda")
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank if cuda else None, backend)


def shutdown(ctx: DistContext) -> None:
    if ctx.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

"""One +KD forward for a plain training loop: the pruned (student) pass with gradients, the full-token
(teacher) pass without, and :func:`~vlprune.training.kd.kd_loss` over their answer tokens (PixelPrune §4.3).

    out = kd_forward(model, batch, "pixelprune", config=KDConfig(alpha=0.5))
    out.loss.loss.backward()
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from vlprune.models.base import get_adapter
from vlprune.runtime.labels import check_labels, pruned_labels
from vlprune.runtime.session import apply
from vlprune.training.kd import KDConfig, KDLoss, kd_loss


@dataclass
class KDOutput:
    """``loss``: the :class:`KDLoss`; ``student``: the pruned pass's model output; ``student_labels``
    (B, Ls): the labels as they followed the kept tokens; ``teacher_logits`` (B, Lt, V); ``run``:
    the :class:`~vlprune.runtime.PruningSession` of the student pass (its stats)."""

    loss: KDLoss
    student: object
    student_labels: torch.Tensor
    teacher_logits: torch.Tensor
    run: object


@contextmanager
def eval_mode(module: torch.nn.Module):
    """``module`` in eval mode for the block (the teacher pass: no dropout, no gradient checkpointing)."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


def teacher_logits(teacher: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The full-token pass of ``teacher`` on ``batch`` (no labels): logits (B, L, V), no gradient."""
    with torch.no_grad(), eval_mode(teacher):
        return teacher(**batch).logits


def student_labels(labels: torch.Tensor, batch: dict, run, image_token_id: int) -> torch.Tensor:
    """``labels`` (B, L) carried into the pruned batch of ``run``'s last call (unchanged without images)."""
    if batch.get("pixel_values") is None:
        return labels
    return pruned_labels(labels, batch["input_ids"], batch.get("attention_mask"), run.last_prepared, image_token_id)


def kd_forward(model, inputs: dict, method="pixelprune", *, config: KDConfig | None = None, teacher=None,
               processor=None, apply_config=None, num_items_in_batch=None, **options) -> KDOutput:
    """Student = ``model`` under ``vlprune.apply(model, method, **options)``; teacher = ``teacher`` or, by
    default, ``model`` itself with every token (PixelPrune's self-distillation). ``inputs``: a processor
    batch with ``labels`` (B, L). Call it outside ``vlprune.apply`` (the teacher must see every token)."""
    if inputs.get("labels") is None:
        raise ValueError("kd_forward needs labels in inputs: the answer tokens are the positions with a label")
    labels = inputs["labels"]
    batch = {k: v for k, v in inputs.items() if k != "labels"}
    adapter = get_adapter(model)
    check_labels(labels, batch["input_ids"], batch.get("attention_mask"), adapter.image_token_id)
    with apply(model, method, processor=processor, config=apply_config, **options) as run:
        student = model(**batch)
    s_labels = student_labels(labels, batch, run, adapter.image_token_id)
    t_logits = teacher_logits(teacher if teacher is not None else model, batch)
    loss = kd_loss(student.logits, s_labels, t_logits, labels, config, num_items_in_batch=num_items_in_batch)
    return KDOutput(loss, student, s_labels, t_logits, run)

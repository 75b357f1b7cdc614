"""Self-distillation of a pruned model (PixelPrune §4.3, "+KD"): the same model's full-token pass is the
teacher (no gradient), the pruned pass the student.

Over the answer tokens (the logit positions whose next label is not -100),

    loss = alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

summed over those tokens and divided by their number (or by ``num_items_in_batch``, the count a trainer
takes over the whole accumulated, all-rank batch). The divergence is the forward KL with Hinton's T^2
factor, as the authors' training code computes it; the paper does not state alpha.

Teacher and student prompts differ in length (the student's image runs are shorter), so the answer
tokens are aligned per row by order: both rows must score the same number of tokens with the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vlprune import options as opt
from vlprune.runtime.labels import IGNORE


@dataclass(frozen=True)
class KDConfig:
    """Options of :func:`kd_loss`.

    alpha: weight of the task loss (cross-entropy on the labels) in [0, 1]; ``1 - alpha`` weighs the KD term.
    temperature: softmax temperature T > 0 of both distributions (the KD term is scaled by T^2).
    """

    alpha: float = 0.5
    temperature: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "alpha", opt.unit_interval("alpha", self.alpha))
        object.__setattr__(self, "temperature", opt.positive("temperature", self.temperature))


@dataclass
class KDLoss:
    """``loss`` = alpha * ``ce`` + (1 - alpha) * ``kd`` (scalars, each already divided by the token count);
    ``n_tokens``: answer tokens scored in this batch."""

    loss: torch.Tensor
    ce: torch.Tensor
    kd: torch.Tensor
    n_tokens: int


def answer_columns(labels: torch.Tensor) -> list[torch.Tensor]:
    """Per row of ``labels`` (B, L), the logit columns ``p`` whose next label ``labels[r, p + 1]`` is scored."""
    nxt = labels[:, 1:] != IGNORE
    return [torch.nonzero(nxt[r]).view(-1) for r in range(labels.shape[0])]


def _check(name: str, logits, labels) -> None:
    if not torch.is_tensor(logits) or logits.ndim != 3:
        raise ValueError(f"{name}_logits must be a (B, L, V) tensor, got "
                         f"{tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__}")
    if not torch.is_tensor(labels) or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"{name}_labels must be (B, L) = {tuple(logits.shape[:2])} like {name}_logits, got "
                         f"{tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__}")


def aligned_answers(student_labels: torch.Tensor, teacher_labels: torch.Tensor):
    """(student columns, teacher columns, labels) of the answer tokens, row by row: per row the i-th scored
    token of the student is the i-th of the teacher. ValueError when the two batches are not the same samples."""
    if student_labels.shape[0] != teacher_labels.shape[0]:
        raise ValueError(f"teacher and student batches differ: the teacher has {teacher_labels.shape[0]} rows, the "
                         f"student {student_labels.shape[0]}")
    s_cols, t_cols, ys = [], [], []
    for r, (sc, tc) in enumerate(zip(answer_columns(student_labels), answer_columns(teacher_labels))):
        sy, ty = student_labels[r, sc + 1], teacher_labels[r, tc + 1].to(student_labels.device)
        if sc.numel() != tc.numel():
            raise ValueError(f"teacher and student batches differ in row {r}: the teacher scores {tc.numel()} answer "
                             f"tokens, the student {sc.numel()} (the same samples must be in the same rows)")
        if not torch.equal(sy, ty):
            i = int(torch.nonzero(sy != ty)[0])
            raise ValueError(f"teacher and student batches differ in row {r}: answer token {i} is {int(ty[i])} for "
                             f"the teacher, {int(sy[i])} for the student (the same samples must be in the same rows)")
        s_cols.append(sc)
        t_cols.append(tc)
        ys.append(sy)
    return s_cols, t_cols, ys


def kd_loss(student_logits: torch.Tensor, student_labels: torch.Tensor, teacher_logits: torch.Tensor,
            teacher_labels: torch.Tensor, config: KDConfig | None = None, *,
            num_items_in_batch: int | torch.Tensor | None = None) -> KDLoss:
    """The +KD loss of a pruned (student) and a full-token (teacher) pass over the same samples.

    student_logits (B, Ls, V) with student_labels (B, Ls): the pruned pass and its labels as the runtime
    carried them (:func:`vlprune.runtime.labels.pruned_labels`); teacher_logits (B, Lt, V) with
    teacher_labels (B, Lt): the full-token pass. Labels are unshifted (the logit at p predicts label p + 1).
    The teacher gets no gradient. Computed in float32 on the answer tokens only.
    """
    cfg = config or KDConfig()
    _check("student", student_logits, student_labels)
    _check("teacher", teacher_logits, teacher_labels)
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(f"teacher and student vocabularies differ: {teacher_logits.shape[-1]} vs "
                         f"{student_logits.shape[-1]} logits")
    s_cols, t_cols, ys = aligned_answers(student_labels, teacher_labels)
    dev = student_logits.device
    s = torch.cat([student_logits[r, c.to(dev)] for r, c in enumerate(s_cols)]).float()
    t = torch.cat([teacher_logits[r, c.to(teacher_logits.device)] for r, c in enumerate(t_cols)]).detach().to(dev).float()
    y = torch.cat(ys).to(dev)
    n = int(y.numel())
    temp = cfg.temperature
    ce = F.cross_entropy(s, y, reduction="sum")
    kd = F.kl_div(F.log_softmax(s / temp, -1), F.log_softmax(t / temp, -1), log_target=True,
                  reduction="sum") * temp**2
    denom = num_items_in_batch if num_items_in_batch is not None else max(n, 1)
    if torch.is_tensor(denom):
        denom = denom.to(dev)
    ce, kd = ce / denom, kd / denom
    return KDLoss(cfg.alpha * ce + (1.0 - cfg.alpha) * kd, ce, kd, n)

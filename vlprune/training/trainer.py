"""Pruned training and +KD inside Hugging Face trainers (PixelPrune §4.3-4.4): a mixin for any
``transformers.Trainer`` subclass, :class:`PruningTrainer` (``Trainer``) and :func:`pruning_sft_trainer`
(TRL's ``SFTTrainer``), nothing of either copied.

Each ``compute_loss`` call runs the trainer's own ``compute_loss`` inside ``vlprune.apply`` on the
unwrapped model (the hooks fire through DDP / accelerate wrappers) and leaves the model as it was. The
labels follow the kept tokens (:mod:`vlprune.runtime.labels`); the data collator is wrapped to put -100 on
image placeholder positions, so the trainer's token count (``num_items_in_batch``, across ranks and
gradient-accumulation steps) is the count of tokens the pruned loss scores. With ``kd`` the trainer's
``compute_loss_func`` becomes the +KD loss: the teacher pass (full tokens, no gradient, eval mode) runs
first, the pruned student pass through the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from vlprune.models.base import get_adapter
from vlprune.runtime.labels import check_labels, mask_image_labels
from vlprune.runtime.pipeline import resolve_pipeline
from vlprune.runtime.session import ApplyConfig, apply
from vlprune.training.kd import KDConfig, kd_loss
from vlprune.training.step import student_labels, teacher_logits


@dataclass(frozen=True)
class PruningArguments:
    """What a pruning trainer runs.

    method: a pipeline spec as ``vlprune.apply`` takes it (``"pixelprune"``, ``"tar+pixelprune"``, a method).
    options: options of a single named method, or ``{name: {option: value}}``.
    kd: the +KD loss (None: the model's own cross-entropy on the pruned batch).
    prune_eval: evaluation passes are pruned too (train and evaluate the way the model is served).
    apply_config: :class:`vlprune.ApplyConfig` of every pass.
    """

    method: Any = "pixelprune"
    options: dict = field(default_factory=dict)
    kd: KDConfig | None = None
    prune_eval: bool = True
    apply_config: ApplyConfig | None = None

    def __post_init__(self):
        resolve_pipeline(self.method, dict(self.options))  # unknown names / options raise here
        if self.kd is not None and not isinstance(self.kd, KDConfig):
            raise TypeError(f"kd must be a vlprune.training.KDConfig or None, got {type(self.kd).__name__}")


@dataclass
class ImageLabelMask:
    """Wraps a data collator: the batch's ``labels`` get -100 at image placeholder positions."""

    collator: Callable
    image_token_id: int

    def __call__(self, features):
        batch = self.collator(features)
        if batch.get("labels") is not None and batch.get("input_ids") is not None:
            batch["labels"] = mask_image_labels(batch["labels"], batch["input_ids"], self.image_token_id)
        return batch


class PruningTrainerMixin:
    """Put before a ``transformers.Trainer`` subclass: ``class T(PruningTrainerMixin, SFTTrainer)``.

    Extra keyword arguments: ``pruning`` (:class:`PruningArguments` or a method spec) and ``teacher``
    (a separate frozen teacher model for +KD, e.g. the initial checkpoint loaded a second time as the
    authors' code does; default: the trained model's own full-token pass).
    """

    def __init__(self, *args, pruning: PruningArguments | Any = "pixelprune", teacher=None, **kwargs):
        self.pruning = pruning if isinstance(pruning, PruningArguments) else PruningArguments(pruning)
        super().__init__(*args, **kwargs)
        if self.label_smoother is not None:
            raise ValueError("label_smoothing_factor > 0 is not supported with pruning: the trainer smooths the "
                             "unpruned labels against the pruned logits outside the model")
        if self.pruning.kd is not None:
            if self.compute_loss_func is not None:
                raise ValueError("compute_loss_func and pruning kd both define the loss; pass one of them")
            self.compute_loss_func = self._kd_loss_func
        elif teacher is not None:
            raise ValueError("a teacher is only used with pruning kd (PruningArguments(kd=KDConfig(...)))")
        self.pruning_adapter = get_adapter(self.accelerator.unwrap_model(self.model))
        self.data_collator = ImageLabelMask(self.data_collator, self.pruning_adapter.image_token_id)
        self.teacher = teacher
        if teacher is not None:
            teacher.to(self.args.device).eval().requires_grad_(False)
        self._kd_batch: tuple | None = None
        #: the PruningSession of the last compute_loss (its stats)
        self.last_pruning = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training and not self.pruning.prune_eval:
            return self._full_loss(model, inputs, return_outputs, num_items_in_batch)
        p = self.pruning
        if p.kd is not None:
            batch = {k: v for k, v in inputs.items() if k != "labels"}
            labels = inputs["labels"]
            check_labels(labels, batch["input_ids"], batch.get("attention_mask"), self.pruning_adapter.image_token_id)
            logits = teacher_logits(self.teacher if self.teacher is not None else model, batch)
            self._kd_batch = (batch, labels, logits)
        target = self.accelerator.unwrap_model(model)
        try:
            with apply(target, p.method, config=p.apply_config, **dict(p.options)) as run:
                self.last_pruning = run
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self._kd_batch = None

    def _full_loss(self, model, inputs, return_outputs, num_items_in_batch):
        """An unpruned evaluation pass: the +KD loss with every token (KD term 0) or the model's own loss."""
        if self.pruning.kd is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self._kd_batch = ({k: v for k, v in inputs.items() if k != "labels"}, inputs["labels"], None)
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self._kd_batch = None

    def _kd_loss_func(self, outputs, labels, num_items_in_batch=None):
        """``compute_loss_func``: the +KD loss of the student ``outputs`` against the stashed teacher pass."""
        if self._kd_batch is None:
            raise RuntimeError("the +KD loss runs inside compute_loss only")
        batch, full_labels, t_logits = self._kd_batch
        if t_logits is None:  # unpruned evaluation: the pass is its own teacher
            s_labels, t_logits = full_labels, outputs.logits.detach()
        else:
            s_labels = student_labels(full_labels, batch, self.last_pruning, self.pruning_adapter.image_token_id)
        out = kd_loss(outputs.logits, s_labels, t_logits, full_labels, self.pruning.kd,
                      num_items_in_batch=num_items_in_batch)
        loss = out.loss
        if num_items_in_batch is None and self.model.training:
            loss = loss / self.current_gradient_accumulation_steps  # the trainer counts this loss as GA-scaled
        return loss


def _trainer_class(base: type, name: str) -> type:
    return type(name, (PruningTrainerMixin, base), {"__doc__": f"{base.__name__} with vlprune pruning "
                                                               f"(see PruningTrainerMixin)."})


_CLASSES: dict[str, type] = {}


def pruning_trainer_class(base: type | None = None) -> type:
    """The pruning subclass of ``base`` (default ``transformers.Trainer``; any Trainer subclass works)."""
    if base is None:
        from transformers import Trainer

        base = Trainer
    key = f"{base.__module__}.{base.__qualname__}"
    if key not in _CLASSES:
        _CLASSES[key] = _trainer_class(base, f"Pruning{base.__name__}")
    return _CLASSES[key]


def pruning_sft_trainer(*args, **kwargs):
    """TRL's ``SFTTrainer`` with pruning (``pip install 'vlprune[train]'``); arguments as for SFTTrainer plus
    ``pruning`` / ``teacher``."""
    try:
        from trl import SFTTrainer
    except ImportError as e:
        raise ImportError("pruning_sft_trainer needs TRL: pip install 'vlprune[train]'") from e
    return pruning_trainer_class(SFTTrainer)(*args, **kwargs)

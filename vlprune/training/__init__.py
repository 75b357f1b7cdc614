"""Training with pruned inputs (PixelPrune §4.3-4.5): the +KD self-distillation loss and the integration
with Hugging Face trainers.

    from vlprune.training import KDConfig, kd_forward, kd_loss          # plain loops
    from vlprune.training import PruningArguments, PruningTrainer       # transformers.Trainer (needs accelerate)

A plain pruned step needs nothing from here: ``with vlprune.apply(model, "pixelprune"): loss =
model(**batch, labels=labels).loss`` then ``loss.backward()`` outside or inside the block.
``PruningTrainer`` and ``pruning_sft_trainer`` import transformers' Trainer (and TRL) on first use.
"""

from __future__ import annotations

from vlprune.runtime.labels import mask_image_labels
from vlprune.training.kd import KDConfig, KDLoss, answer_columns, kd_loss
from vlprune.training.step import KDOutput, kd_forward

__all__ = ["ImageLabelMask", "KDConfig", "KDLoss", "KDOutput", "PruningArguments", "PruningTrainer",
           "PruningTrainerMixin", "answer_columns", "kd_forward", "kd_loss", "mask_image_labels",
           "pruning_sft_trainer", "pruning_trainer_class"]

_TRAINER_NAMES = ("ImageLabelMask", "PruningArguments", "PruningTrainerMixin", "pruning_sft_trainer",
                  "pruning_trainer_class")


def __getattr__(name: str):
    if name in _TRAINER_NAMES or name == "PruningTrainer":
        from vlprune.training import trainer

        return trainer.pruning_trainer_class() if name == "PruningTrainer" else getattr(trainer, name)
    raise AttributeError(f"module 'vlprune.training' has no attribute {name!r}")

"""A PruningTrainer run on a tiny Qwen2-VL model; under torchrun it trains data-parallel (gloo).

``python -m torch.distributed.run --nproc_per_node 2 ddp_worker.py PER_DEVICE OUT`` writes, from rank 0,
the parameters after two SGD steps of pruned training (OUT.pruned) and of +KD training (OUT.kd).
"""

from __future__ import annotations

import os
import sys

import torch
from training_fixtures import trainer_samples

from vlprune.models.configs import TINY_PAD, build_model
from vlprune.training import KDConfig, PruningArguments, PruningTrainer
from vlprune.training.data import ProcessedCollator, SampleList

FAMILY = "qwen2-vl"


def train(per_device: int, kd: KDConfig | None, out_dir: str = "/tmp") -> dict[str, torch.Tensor]:
    from transformers import TrainingArguments

    model = build_model(FAMILY, "tiny", seed=0).train()
    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=per_device, max_steps=2, learning_rate=0.05, optim="sgd",
        lr_scheduler_type="constant", max_grad_norm=0.0, train_sampling_strategy="sequential", use_cpu=True,
        ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None, report_to=[], save_strategy="no", disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=0, seed=0)
    trainer = PruningTrainer(model=model, args=args, train_dataset=SampleList(trainer_samples(FAMILY, 8)),
                             data_collator=ProcessedCollator(TINY_PAD, "right"),
                             pruning=PruningArguments("pixelprune", kd=kd))
    trainer.train()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


if __name__ == "__main__":
    import torch.distributed as dist

    per_device, out = int(sys.argv[1]), sys.argv[2]
    for name, kd in (("pruned", None), ("kd", KDConfig(alpha=0.5, temperature=2.0))):
        params = train(per_device, kd, out + ".dir")
        if not dist.is_initialized() or dist.get_rank() == 0:
            torch.save(params, f"{out}.{name}")

"""vlprune.training with Hugging Face trainers (needs accelerate: ``pip install 'vlprune[train]'``).

One SGD step of PruningTrainer equals the same step done by hand (pruned cross-entropy; +KD); two
processes (torch.distributed, gloo) with two samples each end where one process with the four samples
does; the collator wrapper puts -100 on image positions; TRL's SFTTrainer runs pruned.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from model_fixtures import IMG
from training_fixtures import trainer_samples

import vlprune
from vlprune.models.configs import TINY_PAD, build_model
from vlprune.training import KDConfig, kd_forward, mask_image_labels
from vlprune.training.data import ProcessedCollator, SampleList

pytestmark = pytest.mark.skipif(importlib.util.find_spec("accelerate") is None,
                                reason="transformers' Trainer needs accelerate (pip install 'vlprune[train]')")

HERE = Path(__file__).parent
FAMILY = "qwen2-vl"
LR = 0.05


def _args(tmp_path, per_device, steps=1):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=per_device, max_steps=steps, learning_rate=LR,
        optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0, train_sampling_strategy="sequential",
        use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=0)


@pytest.mark.parametrize("kd", [None, KDConfig(alpha=0.3, temperature=2.0)], ids=["pruned", "kd"])
def test_one_trainer_step_equals_the_step_by_hand(tmp_path, kd):
    from vlprune.training import PruningArguments, PruningTrainer

    samples = trainer_samples(FAMILY, 2)
    model = build_model(FAMILY, "tiny", seed=0).train()
    manual = copy.deepcopy(model)
    batch = ProcessedCollator(TINY_PAD, "right")(samples)
    trainer = PruningTrainer(model=model, args=_args(tmp_path, 2), train_dataset=SampleList(samples),
                             data_collator=ProcessedCollator(TINY_PAD, "right"),
                             pruning=PruningArguments("pixelprune", kd=kd))
    trainer.train()
    assert trainer.last_pruning.stats[0].tokens_by_stage["pre_vit"] < trainer.last_pruning.stats[0].tokens_by_stage["raw"]
    if kd is None:
        with vlprune.apply(manual, "pixelprune"):
            loss = manual(**batch).loss
    else:
        loss = kd_forward(manual, batch, "pixelprune", config=kd).loss.loss
    loss.backward()
    with torch.no_grad():
        for p in manual.parameters():
            p -= LR * p.grad
    got, want = dict(model.named_parameters()), dict(manual.named_parameters())
    for n in want:
        torch.testing.assert_close(got[n], want[n], atol=1e-6, rtol=1e-5, msg=lambda m, n=n: f"{n}: {m}")
    start = dict(build_model(FAMILY, "tiny", seed=0).named_parameters())
    assert not torch.equal(got["model.visual.blocks.0.attn.qkv.weight"], start["model.visual.blocks.0.attn.qkv.weight"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_the_doubled_batch(tmp_path):
    """gloo DDP, 2 ranks x 2 samples vs 1 process x 4 samples, two SGD steps, answers of 2-4 tokens (so the
    trainer's token count across ranks matters); pruned cross-entropy and +KD."""
    sys.path.insert(0, str(HERE))
    import ddp_worker

    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(HERE / "ddp_worker.py"), "2", str(out)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for name, kd in (("pruned", None), ("kd", KDConfig(alpha=0.5, temperature=2.0))):
        two = torch.load(f"{out}.{name}")
        one = ddp_worker.train(4, kd, str(tmp_path / "one"))
        start = dict(build_model(FAMILY, "tiny", seed=0).named_parameters())
        assert any(not torch.equal(one[n], start[n]) for n in one)
        for n in one:
            torch.testing.assert_close(two[n], one[n], atol=1e-6, rtol=1e-5, msg=lambda m, n=n: f"{name} {n}: {m}")


def test_image_label_mask_collator():
    from vlprune.training import ImageLabelMask

    samples = trainer_samples(FAMILY, 2)
    for s in samples:
        s["labels"] = s["input_ids"].clone()
    batch = ImageLabelMask(ProcessedCollator(TINY_PAD, "right"), IMG)(samples)
    ids = batch["input_ids"]
    assert ((batch["labels"] == -100) == ((ids == IMG) | (batch["attention_mask"] == 0))).all()
    assert torch.equal(batch["labels"][ids != IMG][batch["attention_mask"][ids != IMG] == 1],
                       ids[ids != IMG][batch["attention_mask"][ids != IMG] == 1])
    assert torch.equal(mask_image_labels(ids, ids, IMG), batch["labels"].masked_fill(batch["attention_mask"] == 0, TINY_PAD).masked_fill(ids == IMG, -100))


def test_label_smoothing_and_a_second_loss_refused(tmp_path):
    from vlprune.training import PruningArguments, PruningTrainer

    model = build_model(FAMILY, "tiny", seed=0)
    args = _args(tmp_path, 2)
    args.label_smoothing_factor = 0.1
    with pytest.raises(ValueError, match="label_smoothing_factor"):
        PruningTrainer(model=model, args=args, train_dataset=SampleList(trainer_samples(FAMILY, 2)),
                       data_collator=ProcessedCollator(TINY_PAD))
    with pytest.raises(ValueError, match="compute_loss_func and pruning kd"):
        PruningTrainer(model=model, args=_args(tmp_path, 2), train_dataset=SampleList(trainer_samples(FAMILY, 2)),
                       data_collator=ProcessedCollator(TINY_PAD), compute_loss_func=lambda *a, **k: 0,
                       pruning=PruningArguments("pixelprune", kd=KDConfig()))
    with pytest.raises(ValueError, match="unknown"):
        PruningArguments("pixelprunee")


@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="TRL is not installed (pip install 'vlprune[train]')")
def test_trl_sft_trainer_trains_pruned(tmp_path):
    """TRL's SFTTrainer (its own collator, prompt-completion data, its fused loss) through the mixin: the first
    logged loss is the pruned cross-entropy of the completion computed here on the collated batch."""
    import datasets
    from trl import SFTConfig

    from vlprune.bench import random_model
    from vlprune.processor import build_processor
    from vlprune.samples import gui_screenshot
    from vlprune.training import pruning_sft_trainer

    proc = build_processor("qwen2-vl", max_pixels=128 * 128 * 4)
    model = random_model("qwen2-vl", proc).train()
    rows = [{"images": [gui_screenshot(320, 200, seed=i)],
             "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is save?"}]}],
             "completion": [{"role": "assistant", "content": [{"type": "text", "text": "Top left."}]}]} for i in range(2)]
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=1, report_to=[],
                     save_strategy="no", use_cpu=True, logging_steps=1, max_length=None, learning_rate=0.0)
    trainer = pruning_sft_trainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                                  processing_class=proc)
    trainer.train()
    tokens = trainer.last_pruning.stats[0].tokens_by_stage
    assert tokens["pre_vit"] < tokens["raw"]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert ((batch["labels"] != -100) & (batch["input_ids"] == proc.image_token_id)).sum() == 0
    with torch.no_grad(), vlprune.apply(model, "pixelprune"):
        want = model(**{k: v for k, v in batch.items() if torch.is_tensor(v)}).loss
    assert trainer.state.log_history[0]["loss"] == pytest.approx(float(want), rel=1e-3)

"""Fine-tune a Qwen-VL model with PixelPrune-pruned inputs through transformers' Trainer, with or without
the paper's self-distillation (+KD, PixelPrune §4.3).

    python examples/train_pixelprune.py                         # tiny random model, built-in screenshots
    python examples/train_pixelprune.py --kd --alpha 0.5 --temperature 1.0
    python examples/train_pixelprune.py --images shots/*.png --family qwen2.5-vl --steps 20
    torchrun --nproc_per_node 2 examples/train_pixelprune.py   # data-parallel (gloo on CPU)

Offline: the model has random weights of the family's tiny shape (swap in ``from_pretrained`` for real
training) and the processor is vlprune's offline one. Each sample is one screenshot, a question and a
fixed answer; only the answer is scored (the prompt and the image positions get -100).
Needs ``pip install 'vlprune[train]'``.
"""

from __future__ import annotations

import argparse
import os

import torch
from PIL import Image
from transformers import TrainingArguments

from vlprune.bench import random_model
from vlprune.processor import build_processor
from vlprune.samples import document_page, gui_screenshot
from vlprune.training import KDConfig, PruningArguments, PruningTrainer
from vlprune.training.data import ProcessedCollator, SampleList

QUESTION = "Where is the save button?"
ANSWER = "In the toolbar at the top left."


def samples(proc, images: list[Image.Image]) -> list[dict]:
    """One processor batch per image: user turn (image + question) + the answer; labels on the answer only."""
    out = []
    answer = proc.tokenizer(ANSWER + "<|im_end|>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    for im in images:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
        text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        b = proc(text=[text], images=[im], return_tensors="pt")
        ids = torch.cat([b["input_ids"], answer], 1)
        labels = torch.cat([torch.full_like(b["input_ids"], -100), answer], 1)
        s = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
             "pixel_values": b["pixel_values"], "image_grid_thw": b["image_grid_thw"]}
        if "mm_token_type_ids" in b:
            s["mm_token_type_ids"] = torch.cat([b["mm_token_type_ids"], torch.zeros_like(answer)], 1)
        out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="qwen3-vl")
    ap.add_argument("--images", nargs="*", help="screenshots (default: built-in GUI screenshots and pages)")
    ap.add_argument("--method", default="pixelprune")
    ap.add_argument("--kd", action="store_true", help="self-distillation: full-token teacher, pruned student")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-pixels", type=int, default=256 * 256 * 4)
    ap.add_argument("--out", default="train_out")
    args = ap.parse_args()

    proc = build_processor(args.family, max_pixels=args.max_pixels)
    model = random_model(args.family, proc).train()  # real training: AutoModelForImageTextToText.from_pretrained
    if args.images:
        images = [Image.open(p).convert("RGB") for p in args.images]
    else:
        images = [gui_screenshot(seed=s) for s in range(4)] + [document_page(seed=s) for s in range(4)]
    data = SampleList(samples(proc, images))
    kd = KDConfig(alpha=args.alpha, temperature=args.temperature) if args.kd else None
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    targs = TrainingArguments(output_dir=args.out, per_device_train_batch_size=args.batch, max_steps=args.steps,
                              learning_rate=args.lr, logging_steps=1, save_strategy="no", report_to=[],
                              use_cpu=not torch.cuda.is_available(), remove_unused_columns=False,
                              ddp_backend=("gloo" if not torch.cuda.is_available() else "nccl") if distributed else None)
    trainer = PruningTrainer(model=model, args=targs, train_dataset=data,
                             data_collator=ProcessedCollator(proc.tokenizer.pad_token_id, "right"),
                             pruning=PruningArguments(args.method, kd=kd))
    result = trainer.train()
    stats = trainer.last_pruning.stats
    kept = sum(s.tokens_after for s in stats)
    total = sum(s.tokens_before for s in stats)
    print(f"{args.method}{' +KD' if kd else ''}: {args.steps} steps, final train loss {result.training_loss:.4f}; "
          f"last batch kept {kept} of {total} visual tokens ({kept / total:.1%})")


if __name__ == "__main__":
    main()

"""Models with random weights (no download): real-size architectures for benchmarks, and seeded stand-ins
for ``from_pretrained`` that run with the offline processor (examples, tests, the demo)."""

from __future__ import annotations


def fill_random(model, seed: int) -> None:
    """Random weights fast: matrices get a seeded N(0, 0.02) tile repeated over their storage (values
    do not change the compute), norm weights 1, other vectors 0. Seconds instead of minutes at 2B."""
    import torch

    g = torch.Generator().manual_seed(seed)
    tile = torch.randn(1 << 20, generator=g) * 0.02
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                flat = p.data.view(-1)
                t = tile.to(flat.device, flat.dtype)
                for s in range(0, flat.numel(), t.numel()):
                    n = min(t.numel(), flat.numel() - s)
                    flat[s:s + n].copy_(t[:n])
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()


def build_model(config, dtype_name: str, device: str, seed: int, attn: str):
    """``AutoModelForImageTextToText`` of ``config`` (eval mode) in ``dtype_name`` (``"bfloat16"``) on
    ``device`` with ``attn_implementation=attn`` and :func:`fill_random` weights."""
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = AutoModelForImageTextToText.from_config(config, dtype=getattr(torch, dtype_name),
                                                        attn_implementation=attn)
    model = model.to(device).eval()
    fill_random(model, seed)
    return model


def random_model(family: str, processor, shape: str = "tiny", text_layers: int | None = None,
                 vision_layers: int | None = None, seed: int = 0):
    """A seeded random-weight model (fp32, eval) of ``family`` at ``shape`` (``"tiny"``, ``"real"`` or a
    :mod:`vlprune.shapes` name; optionally cut to ``text_layers`` / ``vision_layers``) whose config uses
    ``processor``'s token ids, so ``model.generate(**processor(...))`` runs offline. A stand-in for
    ``from_pretrained`` in examples and tests."""
    from vlprune.families import get_family
    from vlprune.models.configs import build_config
    from vlprune.processor import align_config_to_processor

    spec = get_family(family)
    cfg = build_config(spec.name, shape, text_layers, vision_layers)
    tok = processor.tokenizer
    align_config_to_processor(cfg, processor)
    cfg.get_text_config().eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model = build_model(cfg, "float32", "cpu", seed, "sdpa")
    model.generation_config.pad_token_id = tok.pad_token_id
    return model

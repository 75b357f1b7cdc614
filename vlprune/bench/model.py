"""Real-size models with random weights for benchmarks (no download)."""

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

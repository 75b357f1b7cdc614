"""Small builders of config kwargs shared by the family modules (plain dicts; no transformers import)."""

from __future__ import annotations

#: token ids of the tiny test vocabulary (96 ids): 90.. are the Qwen-VL special tokens
TINY_VOCAB = 96
TINY_TOKENS = {"image_token_id": 90, "video_token_id": 91, "vision_start_token_id": 92, "vision_end_token_id": 93}
TINY_EOS = 94
TINY_PAD = 95


def text(hidden: int, mlp: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, **extra) -> dict:
    return dict(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=layers, num_attention_heads=heads,
                num_key_value_heads=kv, vocab_size=vocab, tie_word_embeddings=tie, **extra)  # fmt: skip


def tiny_text(**extra) -> dict:
    """The tiny test LLM: hidden 32, 4 layers, 2 heads / 1 KV head, vocabulary of 96."""
    base = dict(vocab_size=TINY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                bos_token_id=TINY_EOS, eos_token_id=TINY_EOS, pad_token_id=TINY_PAD)  # fmt: skip
    base.update(extra)
    return base


def mrope(sections: list[int], theta: float, interleaved: bool = False, **extra) -> dict:
    out = {"rope_type": "default", "mrope_section": sections, "rope_theta": theta}
    if interleaved:
        out["mrope_interleaved"] = True
    out.update(extra)
    return out


TINY_TOP = dict(TINY_TOKENS, tie_word_embeddings=False)


def top(text_kwargs: dict) -> dict:
    return {"tie_word_embeddings": text_kwargs["tie_word_embeddings"]}

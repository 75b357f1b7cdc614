"""What ``vlprune.apply`` hands back to the caller, checked against values built independently of it.

* ``labels`` through a pruned, left-padded batch: the loss the model reports equals a cross-entropy
  computed here from its logits and labels rebuilt by hand (the row's tokens without the dropped image
  tokens, left-padded with -100) -- padding filled with another value or labels shifted by the padding
  offset change the loss.
* ``generate``'s returned sequences: the caller's unpruned prompt (padding included) followed by the new
  tokens, and every new token is the argmax of a fresh pruned forward pass over the prompt plus the
  tokens before it (greedy decoding recomputed without the cache); with
  ``original_prompt_in_generate=False`` the pruned prompt the model saw instead; beams repeat the prompt
  per returned sequence.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model_fixtures import FAMILIES, IMG, build_batch, synthetic_image, tiny_model
from vlprune.api import ApplyConfig, apply
from vlprune.models.configs import TINY_EOS


def padded_batch(family, seed=0):
    """Sample 0: one image and little text; sample 1: two images and more text; left-padded. The
    images prune differently, so the pruned rows get new left padding."""
    return build_batch(family, [
        {"text": [1, 2], "images": [synthetic_image(family, 4, 6, seed)], "after": [4, 5]},
        {"text": [3, 4, 5, 6, 7], "images": [synthetic_image(family, 2, 4, seed + 1),
                                             synthetic_image(family, 6, 4, seed + 2)], "after": [8, 9, 10]},
    ], padding_side="left")


def pruned_rows(batch, selections, values, fill):
    """``values`` (B, L) rebuilt by hand as the pruned batch: each row's non-padding tokens with the image
    tokens of dropped blocks removed (images in batch order, blocks in raster order), left-padded."""
    kept_iter = iter(sel.kept.tolist() for sel in selections)
    rows = []
    for r in range(batch["input_ids"].shape[0]):
        ids = batch["input_ids"][r][batch["attention_mask"][r].bool()].tolist()
        vals = values[r][batch["attention_mask"][r].bool()].tolist()
        out, k = [], 0
        while k < len(ids):
            if ids[k] != IMG:
                out.append(vals[k])
                k += 1
                continue
            n = next(j for j in range(k, len(ids) + 1) if j == len(ids) or ids[j] != IMG) - k  # one image's run
            keep = set(next(kept_iter))
            out += [vals[k + b] for b in range(n) if b in keep]
            k += n
        rows.append(out)
    width = max(len(r) for r in rows)
    return torch.tensor([[fill] * (width - len(r)) + r for r in rows])


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_through_a_pruned_left_padded_batch(family):
    model = tiny_model(family)
    b = padded_batch(family)
    labels = b["input_ids"].masked_fill(b["attention_mask"] == 0, -100)
    labels[0, -1] = -100  # an ignored position inside a row stays ignored
    with torch.no_grad(), apply(model, "pixelprune") as run:
        out = model(**b, labels=labels)
    prep = run.last_prepared
    sels = prep.selections
    assert any(s.n_kept < s.n_grid for s in sels), "the case must prune"
    ids = pruned_rows(b, sels, b["input_ids"], -1)
    assert torch.equal(torch.where(ids == -1, prep.plan.input_ids, ids), prep.plan.input_ids)  # same layout
    assert (ids[0] == -1).sum() != (ids[1] == -1).sum()  # rows padded differently after pruning
    want_labels = pruned_rows(b, sels, labels, -100)
    logits = out.logits.float()
    want = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), want_labels[:, 1:].reshape(-1),
                           ignore_index=-100)
    torch.testing.assert_close(out.loss, want, rtol=1e-5, atol=1e-6)
    # keeping everything: the loss of the unmodified model
    with torch.no_grad():
        ref = model(**b, labels=labels).loss
        with apply(model, "full"):
            same = model(**b, labels=labels).loss
    assert torch.equal(ref, same)


def greedy_by_recompute(model, b, new, eos):
    """For each step t, the argmax of a fresh pruned forward over prompt + new[:, :t] must be new[:, t]
    (rows that emitted EOS are padded afterwards and not checked; near-ties within 1e-4 accept either)."""
    done = torch.zeros(new.shape[0], dtype=torch.bool)
    for t in range(new.shape[1]):
        ids = torch.cat([b["input_ids"], new[:, :t]], 1)
        extra = torch.ones_like(new[:, :t])
        kw = dict(b, input_ids=ids, attention_mask=torch.cat([b["attention_mask"], extra], 1),
                  mm_token_type_ids=torch.cat([b["mm_token_type_ids"], 0 * extra], 1))
        logits = model(**kw).logits[:, -1].float()
        for r in range(new.shape[0]):
            if done[r]:
                continue
            top = logits[r].max()
            assert logits[r, new[r, t]] >= top - 1e-4, f"row {r} step {t}: {int(new[r, t])} is not the argmax"
            done[r] |= bool(new[r, t] == eos)


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_returns_the_callers_prompt_and_the_greedy_tokens(family):
    model = tiny_model(family)
    b = padded_batch(family, seed=3)
    L = b["input_ids"].shape[1]
    with torch.no_grad(), apply(model, "pixelprune") as run:
        out = model.generate(**b, max_new_tokens=4, do_sample=False)
        plan = run.last_prepared.plan
        assert torch.equal(out[:, :L], b["input_ids"])  # the caller's prompt, padding included
        assert out.shape[1] == L + 4
        greedy_by_recompute(model, b, out[:, L:], TINY_EOS)
    with torch.no_grad(), apply(model, "pixelprune", config=ApplyConfig(original_prompt_in_generate=False)):
        seen = model.generate(**b, max_new_tokens=4, do_sample=False)
    lp = plan.input_ids.shape[1]
    assert lp < L and torch.equal(seen[:, :lp], plan.input_ids) and torch.equal(seen[:, lp:], out[:, L:])
    with torch.no_grad(), apply(model, "pixelprune"):
        beams = model.generate(**b, max_new_tokens=2, do_sample=False, num_beams=2, num_return_sequences=2)
    assert torch.equal(beams[:, :L], b["input_ids"].repeat_interleave(2, dim=0))


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_generate_keeping_everything_equals_the_unmodified_model(family):
    model = tiny_model(family)
    b = padded_batch(family, seed=5)
    with torch.no_grad():
        ref = model.generate(**b, max_new_tokens=4, do_sample=False)
        with apply(model, "full"):
            out = model.generate(**b, max_new_tokens=4, do_sample=False)
    assert torch.equal(ref, out)

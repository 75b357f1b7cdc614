"""What was chosen, against independent hand-computed (or upstream-computed) expectations: the budget
rounding, FastV's and DivPrune's picks, SSP's query rows and its Canny union, the point-in-box test on a
box that is not square, the rope_deltas a pruned plain forward leaves, and the records reader's last line.

The other suites check that whatever a method chose is pruned exactly; these check the choice itself.
Oracles: numbers worked out by hand in the comments, or transformers' own eager attention weights and
``get_rope_index`` on the unpruned input -- never the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_fixtures import IMG, build_batch, synthetic_image, tiny_model

from vlprune.api import apply
from vlprune.methods import create_method
from vlprune.methods.base import LLMRow, keep_count


# ---------------------------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("n, retain, kept", [
    (5, 0.5, 3),    # 2.5 rounds half up (truncation would give 2)
    (10, 0.25, 3),  # 2.5 -> 3
    (7, 0.3, 2),    # 2.1 -> 2
    (9, 0.25, 2),   # 2.25 -> 2
    (3, 0.5, 2),    # 1.5 -> 2
    (8, 0.7, 6),    # 5.6 -> 6 (truncation: 5)
    (1, 0.01, 1),   # never zero
    (4, 1.0, 4),    # everything
])
def test_keep_count_rounds_half_up_never_to_zero(n, retain, kept):
    assert keep_count(n, retain) == kept


# ---------------------------------------------------------------------------------------------- FastV
def test_fastv_keeps_the_highest_scored_tokens():
    scores = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2])
    # retain 0.4 of 5 -> 2 kept: the scores 0.9 (index 1) and 0.8 (index 3); 0.5 -> 3: also 0.3 (index 2)
    assert create_method("fastv", retain=0.4).select(None, scores, None).tolist() == [1, 3]
    assert create_method("fastv", retain=0.5).select(None, scores, None).tolist() == [1, 2, 3]
    tie = torch.tensor([0.5, 0.5, 0.1])  # 0.34 of 3 -> 1 kept; a tie goes to the lower index
    assert create_method("fastv", retain=0.34).select(None, tie, None).tolist() == [0]


def test_query_rows_of_fastv_and_ssp():
    # one row: columns 0..12 are tokens, the image occupies columns 3..6 (end 7 exclusive)
    row = LLMRow(sample=0, images=[(3, 7)], first=0, last=12)
    assert create_method("fastv").queries(row) == [12]  # the last prompt token
    assert create_method("ssp").queries(row) == [7, 8, 9, 10, 11, 12]  # every token after it, the last one too
    two = LLMRow(sample=1, images=[(2, 4), (6, 9)], first=1, last=10)  # SSP scores the last image only
    assert create_method("ssp").queries(two) == [9, 10]


def _eager_scores(model, batch, layer: int, queries: list[int]) -> torch.Tensor:
    """(n_image,) attention the image tokens receive at ``layer`` from the ``queries`` rows (mean over
    heads, then rows), from transformers' own eager attention weights of the unpruned model."""
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    att = out.attentions[layer][0].float()  # (H, L, L)
    cols = torch.nonzero(batch["input_ids"][0] == IMG).view(-1)
    return att[:, queries][:, :, cols].mean(dim=0).mean(dim=0)


@pytest.mark.parametrize("method, queries", [("fastv", "last"), ("ssp", "after")])
def test_in_llm_scores_and_fastv_picks_equal_eager_attention(method, queries, monkeypatch):
    """Qwen2-VL tiny, eager attention, K = 2: the scores each method is handed are layer 1's attention
    from its query rows (FastV: the last token; SSP: every token after the screenshot), and FastV keeps
    the top half of them."""
    model = tiny_model("qwen2-vl", "eager")
    noise = np.random.default_rng(3).integers(0, 256, (4 * 28, 6 * 28, 3), dtype=np.uint8)  # no two blocks alike
    b = build_batch("qwen2-vl", [{"text": [1, 2], "images": [noise], "after": [5, 6, 7, 8]}])
    ids = b["input_ids"][0].tolist()
    last = len(ids) - 1
    image_end = max(i for i, t in enumerate(ids) if t == IMG) + 1
    rows = [last] if queries == "last" else list(range(image_end, last + 1))
    expect = _eager_scores(model, b, 1, rows)
    m = create_method(method)
    cls = type(m)
    seen = []
    real = cls.select

    def spy(self, ctx, scores, hidden):
        seen.append(scores.detach().float().clone())
        return real(self, ctx, scores, hidden)

    monkeypatch.setattr(cls, "select", spy)
    with torch.no_grad(), apply(model, m) as run:
        model(**b)
    (got,) = seen
    torch.testing.assert_close(got, expect, rtol=1e-4, atol=1e-6)
    if method == "fastv":
        n = expect.numel()  # 24 tokens, retain 0.5 -> 12 kept
        top = torch.sort(expect, descending=True)
        assert top.values[11] - top.values[12] > 1e-5  # no near-tie at the cut: the pick is well defined
        want = sorted(top.indices[:12].tolist())
        assert n == 24 and sorted(run.stats[0].kept_blocks.tolist()) == want


# ---------------------------------------------------------------------------------------------- DivPrune
def test_divprune_picks_by_hand():
    """Cosine distances (1 - cos) of v0 = v1 = (1, 0), v2 = (0, 1), v3 = (-1, 0):
    d(v0, v1) = 0, d(v0|v1, v2) = 1, d(v0|v1, v3) = 2, d(v2, v3) = 1.
    First pick: the vector whose nearest other vector is farthest -- min over j != i: v0 0, v1 0, v2 1,
    v3 1 -> v2 (tie with v3: lower index). Then the farthest from the picked set: v0 / v1 / v3 all at 1
    from v2 -> v0; then v1 is 0 from v0, v3 is 1 -> v3."""
    from vlprune.algorithms.diversity import max_min_diverse

    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert [max_min_diverse(x, k).tolist() for k in (1, 2, 3, 4)] == [[2], [0, 2], [0, 2, 3], [0, 1, 2, 3]]
    assert create_method("divprune", retain=0.25).select(x, None).tolist() == [2]  # 1 of 4
    assert create_method("divprune", retain=0.75).select(x, None).tolist() == [0, 2, 3]


# ---------------------------------------------------------------------------------------------- SSP foreground
@pytest.mark.parametrize("canny", [((50, 150), (2000, 2000)), ((2000, 2000), (50, 150)), ((50, 150),)])
def test_ssp_foreground_is_the_union_of_every_canny_pair(canny):
    """A 2-px black outline through blocks (1, 2) .. (5, 7) of a white 8x10-block image; a Canny pair of
    2000 (more than the 3x3 Sobel L1 maximum, 4 * 255) finds nothing, so each config's union is the
    outline found by (50, 150) alone, wherever that pair stands."""
    from vlprune.algorithms.ssp import ForegroundConfig, ui_foreground

    block, gh, gw = 28, 8, 10
    img = np.full((gh * block, gw * block, 3), 255, np.uint8)
    top, bottom, left, right = 1 * block + 14, 5 * block + 14, 2 * block + 14, 7 * block + 14
    img[top:top + 2, left:right + 2] = img[bottom:bottom + 2, left:right + 2] = 0
    img[top:bottom + 2, left:left + 2] = img[top:bottom + 2, right:right + 2] = 0
    expect = np.zeros((gh, gw), bool)
    expect[[1, 5], 2:8] = True
    expect[1:6, [2, 7]] = True
    np.testing.assert_array_equal(ui_foreground(img, (gh, gw), block, ForegroundConfig(canny=canny)), expect)
    assert not ui_foreground(img, (gh, gw), block, ForegroundConfig(canny=((2000, 2000),))).any()


# ---------------------------------------------------------------------------------------------- point in box
def test_point_in_box_on_a_box_that_is_not_square():
    from vlprune.eval.metrics.grounding import point_in_box

    box = (0.1, 0.4, 0.9, 0.5)  # x1, y1, x2, y2: wide and flat
    assert point_in_box((0.8, 0.45), box)      # x in [0.1, 0.9], y in [0.4, 0.5]
    assert not point_in_box((0.45, 0.8), box)  # the same numbers swapped: y = 0.8 is below the box
    assert not point_in_box((0.95, 0.45), box) and not point_in_box((0.5, 0.3), box)
    assert point_in_box((0.1, 0.5), box) and point_in_box((0.9, 0.4), box)  # edges count


def test_screenspot_scores_a_point_by_x_and_y():
    from vlprune.eval import create_dataset
    from vlprune.eval.base import Parsed, Sample

    ds = create_dataset("screenspot")
    sample = Sample("s", [], "click", {"bbox": [0.6, 0.1, 0.9, 0.2]}, {"split": "web", "ui_type": "text"})
    assert ds.score(Parsed([0.7, 0.15]), sample) == {"correct": 1.0}
    assert ds.score(Parsed([0.15, 0.7]), sample) == {"correct": 0.0}


# ---------------------------------------------------------------------------------------------- rope_deltas
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_pruned_plain_forward_sets_the_unpruned_rope_deltas(family):
    """A fresh model (no rope_deltas left by an earlier call), one pruned ``model(**inputs)``: the next
    position is the unpruned one, max(get_rope_index of the unpruned input) + 1, so rope_deltas =
    that - the pruned length; a cached step without position_ids then runs at that position."""
    model = tiny_model(family)
    b = build_batch(family, [{"text": [1, 2], "images": [synthetic_image(family, 4, 6, 0)], "after": [5]}])
    b.pop("attention_mask")
    full_pos, _ = model.model.get_rope_index(b["input_ids"], b["mm_token_type_ids"], image_grid_thw=b["image_grid_thw"])
    next_pos = int(full_pos.max()) + 1
    model.model.rope_deltas = None
    seen = []
    with torch.no_grad(), apply(model, "pixelprune"):
        out = model(**b, use_cache=True)
        pruned_len = out.logits.shape[1]
        assert pruned_len < b["input_ids"].shape[1]  # something was pruned
        assert model.model.rope_deltas is not None
        assert model.model.rope_deltas.view(-1).tolist() == [next_pos - pruned_len]
        h = model.model.language_model.register_forward_pre_hook(
            lambda mod, args, kwargs: seen.append(kwargs["position_ids"].clone()), with_kwargs=True)
        try:
            model(input_ids=out.logits[:, -1].argmax(-1, keepdim=True), past_key_values=out.past_key_values)
        finally:
            h.remove()
    assert seen[0][..., 0].flatten().unique().tolist() == [next_pos]


# ---------------------------------------------------------------------------------------------- records
def test_records_reader_keeps_a_complete_last_line_without_newline(tmp_path):
    from vlprune.eval.records import read_jsonl

    path = tmp_path / "p.jsonl"
    body = b'{"id": "a", "prediction": "x"}\n{"id": "b", "prediction": "y"}'  # the last line is whole
    path.write_bytes(body)
    assert [ln.record["id"] for ln in read_jsonl(path)] == ["a", "b"] and path.read_bytes() == body
    assert [(ln.record["id"], ln.lineno) for ln in read_jsonl(path, repair=True)] == [("a", 1), ("b", 2)]
    assert path.read_bytes() == body + b"\n"  # repaired by adding the newline, nothing dropped
    cut = body + b'\n{"id": "c", "predi'  # a cut write: dropped, and only that
    path.write_bytes(cut)
    assert [ln.record["id"] for ln in read_jsonl(path, repair=True)] == ["a", "b"]
    assert path.read_bytes() == body + b"\n"

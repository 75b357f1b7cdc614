"""The selection algorithms of CDPruner, VisionZip, VisPruner, DART and MoB on tiny hand-computed inputs
(the expected indices are worked out in the comments), plus a determinant brute force for the DPP."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vlprune.algorithms.cdpruner import conditional_kernel, dpp_greedy, relevance
from vlprune.algorithms.dart import dart_select
from vlprune.algorithms.mob import farthest_points, mob_select, prompt_aligned_order
from vlprune.algorithms.vispruner import remove_duplicates, vispruner_select
from vlprune.algorithms.visionzip import visionzip_select
from vlprune.methods.views import TokenMerge, instruction_columns


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def _angles(degrees):
    """Unit vectors in the plane at these angles."""
    return _t([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in degrees])


# ---------------------------------------------------------------- CDPruner
def test_relevance_is_min_max_normalised_mean_cosine():
    # cosines to the one instruction token (1, 0): 1, 0, 1/sqrt(2); min 0, max 1
    r = relevance(_t([[1, 0], [0, 1], [1, 1]]), _t([[2, 0]]))
    torch.testing.assert_close(r, _t([1 + 1e-6, 1e-6, 2 ** -0.5 + 1e-6]))
    # two instruction tokens: the mean over them; equal relevance everywhere -> all ones
    r2 = relevance(_t([[1, 0], [0, 1]]), _t([[1, 0], [0, 1]]))
    torch.testing.assert_close(r2, _t([1, 1]))


def _four_tokens(third):
    """v0, v1 = v0 (a duplicate), v2 = ``third``, v3 = (0.6, 0.8, 0); relevance 1, 0.9, 0.5, 0.8."""
    feats = _t([[1, 0, 0], [1, 0, 0], third, [0.6, 0.8, 0]])
    return conditional_kernel(feats, _t([1.0, 0.9, 0.5, 0.8]))


def test_dpp_on_four_tokens_by_hand():
    # L_ij = q_i cos_ij q_j; diagonal 1, .81, .25, .64 -> first pick 0.
    # gains after {0}: d1 = .81 - .9^2 = 0 (duplicate), d2 = .25 - 0, d3 = .64 - (.8 * .6)^2 = .4096 -> pick 3.
    # v2 = (0, 0, 1) is orthogonal to both: gain .25 > 0 = d1 -> pick 2.
    L = _four_tokens([0, 0, 1])
    assert dpp_greedy(L, 1).tolist() == [0]
    assert dpp_greedy(L, 2).tolist() == [0, 3]
    assert dpp_greedy(L, 3).tolist() == [0, 2, 3]
    assert dpp_greedy(L, 4).tolist() == [0, 1, 2, 3]
    # v2 = (0, 1, 0) lies in the plane of v0, v3: after {0, 3} no token adds volume, the last slot goes to
    # the most relevant remaining token (v1, 0.9 > v2, 0.5)
    L = _four_tokens([0, 1, 0])
    assert dpp_greedy(L, 3, fill=_t([1.0, 0.9, 0.5, 0.8])).tolist() == [0, 1, 3]


def test_dpp_greedy_matches_determinant_brute_force():
    rng = np.random.default_rng(0)
    for trial in range(5):
        x = rng.normal(size=(7, 5))
        L = x @ x.T
        picked: list[int] = []
        for _ in range(5):  # each step: the candidate with the largest det(L_{S + i})
            dets = {i: np.linalg.det(L[np.ix_(picked + [i], picked + [i])]) for i in range(7) if i not in picked}
            picked.append(max(dets, key=lambda i: (dets[i], -i)))
        assert dpp_greedy(torch.tensor(L, dtype=torch.float32), 5).tolist() == sorted(picked), trial


def test_dpp_rejects_bad_budget():
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        dpp_greedy(torch.eye(4), 0)


# ---------------------------------------------------------------- VisionZip
def test_visionzip_dominant_and_contextual_by_hand():
    received = _t([0.9, 0.1, 0.5, 0.2, 0.3, 0.05])
    # dominant (k - c = 2): tokens 0 and 2. Rest [1, 3, 4, 5], step 4 // 2 = 2 -> targets 1 and 4;
    # key of 3 is closest to token 1's, key of 5 to token 4's.
    keys = _t([[0, 0], [1, 0], [0, 0], [0.9, 0.1], [0, 1], [0.2, 0.8]])
    kept, src, dst, weight = visionzip_select(received, keys, 4, 2)
    assert kept.tolist() == [0, 1, 2, 4]
    feats = _t([[i, 10 * i] for i in range(6)])
    out = TokenMerge(kept, src, dst, weight).apply(feats)
    # a target = itself + the mean of the tokens that joined it
    torch.testing.assert_close(out, _t([[0, 0], [1 + 3, 10 + 30], [2, 20], [4 + 5, 40 + 50]]))
    # both others join target 1: 1 + (3 + 5) / 2
    keys2 = keys.clone()
    keys2[5] = _t([1, 0.05])
    kept, src, dst, weight = visionzip_select(received, keys2, 4, 2)
    out = TokenMerge(kept, src, dst, weight).apply(feats)
    torch.testing.assert_close(out, _t([[0, 0], [1 + 4, 10 + 40], [2, 20], [4, 40]]))


def test_visionzip_without_contextual_or_full_budget_is_a_selection():
    received = _t([0.3, 0.9, 0.1, 0.5])
    kept, src, dst, weight = visionzip_select(received, torch.zeros(4, 2), 2, 0)
    assert kept.tolist() == [1, 3] and src.tolist() == [1, 3] and dst.tolist() == [0, 1] and weight.tolist() == [1, 1]
    kept, src, *_ = visionzip_select(received, torch.zeros(4, 2), 4, 1)
    assert kept.tolist() == src.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- VisPruner
def test_remove_duplicates_three_tokens_by_hand():
    # candidates [5, 3, 7]: A = (5, 7), B = (3,); cos(5, 3) = 0.8, cos(7, 3) = 0.6 -> token 5 goes first
    feats = torch.zeros(8, 2)
    feats[5], feats[3], feats[7] = _t([1, 0]), _t([0.8, 0.6]), _t([0, 1])
    cand = torch.tensor([5, 3, 7])
    assert remove_duplicates(feats, cand, 2).tolist() == [7, 3]
    # keep 1: one round drops min(8, 3 - 1) = 2 A tokens -> only B is left
    assert remove_duplicates(feats, cand, 1).tolist() == [3]
    assert remove_duplicates(feats, cand, 3).tolist() == [5, 3, 7]


def test_vispruner_important_then_diverse():
    received = _t([0.1, 0.9, 0.3, 0.8, 0.2])
    # k = 4, important share(4, 0.5) = 2: tokens 1, 3. Rest by attention: [2, 4, 0]; keep 2 of them:
    # A = (2, 0), B = (4,); token 2 duplicates token 4 (cos 1), token 0 is orthogonal -> drop 2
    feats = _t([[0, 1], [1, 1], [1, 0], [1, -1], [1, 0]])
    assert vispruner_select(received, feats, 4, 0.5).tolist() == [0, 1, 3, 4]
    # k = 3 (share(3, 0.5) = 2 important): one of [2, 4, 0]; the round drops both A tokens -> 4
    assert vispruner_select(received, feats, 3, 0.5).tolist() == [1, 3, 4]
    assert vispruner_select(received, feats, 3, 1.0).tolist() == [1, 2, 3]  # all important: top 3


# ---------------------------------------------------------------- DART
def _dart_inputs():
    image_norms = _t([5, 1, 3, 2, 4])
    text_norms = _t([2, 9])
    # image pivot: token 0 (norm 5) at (1, 0); text pivot: text 1 (norm 9) at (0, 1)
    image_hidden = _t([[1, 0], [1, 0.1], [0, 1], [-1, 0], [0.7, 0.7]])
    text_hidden = _t([[1, 1], [0, 1]])
    return image_norms, text_norms, image_hidden, text_hidden


def test_dart_by_hand():
    args = _dart_inputs()
    # k = 3: pivot 0 kept, 2 free slots, one per pivot. Pivot 0 (1, 0): least similar is 3 (cos -1).
    # Text pivot (0, 1) among {1, 2, 4}: cos 0.0995, 1, 0.707 -> 1.
    assert dart_select(*args, k=3, pivot_image=1, pivot_text=1).tolist() == [0, 1, 3]
    # k = 4: 3 free slots, the image pivot takes 2 (3, then 2 with cos 0), the text pivot 1 (1)
    assert dart_select(*args, k=4, pivot_image=1, pivot_text=1).tolist() == [0, 1, 2, 3]
    # the budget below the image pivots: the top-k by key norm
    assert dart_select(*args, k=2, pivot_image=4, pivot_text=4).tolist() == [0, 4]
    assert dart_select(*args, k=5).tolist() == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- MoB
def test_prompt_aligned_rounds_by_hand():
    # t0 nearest: 0; t1 nearest 0 is taken -> 2. Round 2: t0 -> 1, t1 -> 3.
    dist = _t([[0.1, 0.2, 0.9, 0.5], [0.05, 0.8, 0.3, 0.5]])
    assert prompt_aligned_order(dist, 2, 4).tolist() == [0, 2, 1, 3]
    assert prompt_aligned_order(dist, 2, 3).tolist() == [0, 2, 1]
    assert prompt_aligned_order(dist, 1, 4).tolist() == [0, 2]


def test_farthest_points_on_a_circle():
    # start: closest to the mean direction (~ 34.6 deg) is 10 deg; then the farthest, 180 deg
    x = _angles([0, 5, 10, 180, 100])
    picks, snaps = farthest_points(x, 3, torch.zeros(0, dtype=torch.int64), record={2})
    assert picks.tolist() == [2, 3, 4]
    near, _ = snaps[2]  # after {10, 180}: token 100 deg is 80 deg from 180
    assert abs(float(near[4]) - (1 - math.cos(math.radians(80)))) < 1e-6


def test_mob_trades_budget_to_the_prompt_by_hand():
    # visual tokens at 0, 5, 10, 180 and 100 deg; the prompt at 100 deg; k = 2.
    # f = 0 (no prompt budget): FPS {10, 180}: eps_p = eps_v = 1 - cos 80 = .826 -> cost 1.652.
    # f = 1: {100 (the prompt's nearest), 10}: eps_p = 0, eps_v = .826 (180 deg) -> cost .826: better.
    # f = 2: {100, 180}: eps_v = 1 - cos 100 = 1.174 (0 deg) -> worse: stop at f = 1.
    # Then FPS from {100} adds the farthest token, 0 deg.
    visual, prompt = _angles([0, 5, 10, 180, 100]), _angles([100])
    kept, k_p = mob_select(visual, prompt, 2, fold=2)
    assert (kept.tolist(), k_p) == ([0, 4], 1)
    kept, k_p = mob_select(visual, prompt, 2, fold=2, prompt_share=0.0)
    assert (kept.tolist(), k_p) == ([2, 3], 0)
    kept, k_p = mob_select(visual, prompt, 2, fold=2, prompt_share=1.0)
    assert (kept.tolist(), k_p) == ([3, 4], 2)
    assert mob_select(visual, prompt, 5)[0].tolist() == [0, 1, 2, 3, 4]


def test_instruction_columns():
    img, vid, pad = 90, 91, 0
    ids = torch.tensor([5, img, img, 93, 7, img, 8, pad])
    valid = torch.tensor([1, 1, 1, 1, 1, 1, 1, 0])
    assert instruction_columns(ids, valid, 3, (img, vid)).tolist() == [3, 4, 6]
    assert instruction_columns(ids, None, 7, (img, vid)).tolist() == [7]
    assert instruction_columns(ids, valid, 8, (img, vid)).tolist() == []


@pytest.mark.parametrize("n,k", list(itertools.product([6, 9], [1, 3, 6])))
def test_every_algorithm_keeps_exactly_k_sorted_unique(n, k):
    g = torch.Generator().manual_seed(n * 10 + k)
    feats, keys = torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g)
    received, text = torch.rand(n, generator=g), torch.randn(2, 4, generator=g)
    outs = [dpp_greedy(conditional_kernel(feats, relevance(feats, text)), k),
            visionzip_select(received, keys, k, min(1, k - 1))[0], vispruner_select(received, feats, k),
            dart_select(received, torch.rand(2, generator=g), feats, text, k), mob_select(feats, text, k)[0]]
    for out in outs:
        assert out.numel() == k and torch.equal(out, torch.sort(torch.unique(out)).values)
        assert 0 <= int(out.min()) and int(out.max()) < n

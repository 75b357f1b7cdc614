"""GUIPruner's pure algorithms: TAR (history resizing) and SSP (foreground map, stratified selection).

Expected values are worked by hand in the comments; token counts are checked against the real
transformers Qwen2-VL image processor (PIL backend) configured with each family's min/max pixels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from PIL import Image

import corpus
from model_fixtures import FAMILIES, image_processor
from vlprune.algorithms.ssp import (
    ForegroundConfig,
    _edt_sq,
    grid_sample,
    ssp_budget,
    ssp_select,
    ui_foreground,
    ui_foreground_from_pixel_values,
)
from vlprune.algorithms.tar import resize_history, tar_plan, tar_weights
from vlprune.families import get_family
from vlprune.grid import BlockGrid, ImageError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MORE = settings(FAST, max_examples=150)


def _bounds(family):
    spec = get_family(family)
    return {"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}


def processor_tokens(family: str, width: int, height: int) -> int:
    """LLM tokens the real processor gives a width x height image (family's own min/max pixels)."""
    spec = get_family(family)
    kw = {"min_pixels": spec.min_pixels, "max_pixels": spec.max_pixels}
    return image_processor(family).get_number_of_image_patches(height, width, kw) // spec.merge_size**2


def processor_grid_tokens(family: str, images: list) -> list[int]:
    """Tokens per image from a real processor run (image_grid_thw) with the family's min/max pixels."""
    spec = get_family(family)
    thw = image_processor(family)(images=images, size=_bounds(family), return_tensors="np")["image_grid_thw"]
    return [int(t * h * w) // spec.merge_size**2 for t, h, w in thw]


# ============================================================================================ TAR
def test_tar_weights_newest_first_hand_values():
    # w_k = gamma + (1 - gamma)(N - k)/(N - 1): k = 1 (newest) gets 1, k = N (oldest) gets gamma
    np.testing.assert_allclose(tar_weights(5, 0.2), [1.0, 0.8, 0.6, 0.4, 0.2])
    np.testing.assert_allclose(tar_weights(2, 0.0), [1.0, 0.0])
    np.testing.assert_allclose(tar_weights(3, 1.0), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(tar_weights(1, 0.3), [1.0])


def test_tar_plan_two_frames_hand_computed():
    # qwen2-vl, 1920x1080 -> processor 1932x1092 = 69 x 39 blocks, T = 2691 each.
    # lam = 0.5: B = 2691; weights (oldest, newest) = (0.2, 1), sum 1.2
    # oldest q = 448.5, s = sqrt(1/6) = 0.40825: rows floor(15.92) = 15, cols floor(28.17) = 28 -> 420
    # newest q = 2242.5, s = sqrt(5/6) = 0.91287: rows floor(35.60) = 35, cols floor(62.99) = 62 -> 2170
    old, new = tar_plan([(1920, 1080), (1920, 1080)], 0.5, 0.2, "qwen2-vl")
    assert (old.age, new.age) == (2, 1)
    assert old.full_size == new.full_size == (1932, 1092)
    assert old.tokens_before == new.tokens_before == 2691
    assert old.quota == pytest.approx(448.5) and new.quota == pytest.approx(2242.5)
    assert (old.weight, new.weight) == (pytest.approx(0.2), 1.0)
    assert old.target == (28 * 28, 15 * 28) and old.tokens_after == 420
    assert new.target == (62 * 28, 35 * 28) and new.tokens_after == 2170
    assert processor_tokens("qwen2-vl", *old.target) == 420
    assert processor_tokens("qwen2-vl", *new.target) == 2170


def test_tar_spare_budget_is_not_redistributed():
    # qwen2-vl 280x280 (10x10 = 100 tokens) and 1120x1120 (40x40 = 1600); lam = gamma = 1:
    # B = 1700, both quotas 850. The small frame is capped at its own 100 tokens; the big one gets
    # floor(40 * sqrt(850/1600)) = floor(29.15) = 29 blocks a side = 841; the 750 spare stay unused.
    small, big = tar_plan([(280, 280), (1120, 1120)], 1.0, 1.0, "qwen2-vl")
    assert small.tokens_after == 100 and not small.resized and small.target == (280, 280)
    assert big.target == (29 * 28, 29 * 28) and big.tokens_after == 841


def test_tar_lam_one_gamma_one_keeps_same_size_frames_whole():
    plan = tar_plan([(1170, 2532)] * 5, 1.0, 1.0, "qwen3-vl")
    assert all(f.tokens_after == f.tokens_before and not f.resized for f in plan)


def test_tar_min_pixels_floor_raises_frame_and_keeps_budget():
    # qwen3-vl (min_pixels 65536 = 64 tokens), two 1920x1080 frames: T = 60 x 34 = 2040 each.
    # lam = 0.08: B = 326.4; oldest q = 54.4 -> 9 x 5 = 45 blocks < 64, so it is raised along its
    # scaling path to the smallest grid of >= 64 blocks: 11 x 6 = 66 (34*11//60 = 6 rows);
    # newest q = 272 -> s = 0.36515: 21 x 12 = 252. Sum 318 <= 326.4.
    old, new = tar_plan([(1920, 1080)] * 2, 0.08, 0.2, "qwen3-vl")
    assert old.target == (11 * 32, 6 * 32) and old.tokens_after == 66 > old.quota
    assert new.target == (21 * 32, 12 * 32) and new.tokens_after == 252
    for f in (old, new):
        assert processor_tokens("qwen3-vl", *f.target) == f.tokens_after


def test_tar_refuses_when_the_processor_floor_breaks_the_budget():
    # lam = 0.05: B = 204; the oldest frame (q = 34) needs its 66-token floor, newest 17 x 9 = 153:
    # 219 > 204 -> refused, naming min_pixels. With min_pixels = 32*32 (one token) it fits:
    # oldest floor(60*0.1291) x floor(34*0.1291) = 7 x 4 = 28, newest 153.
    with pytest.raises(ValueError, match="min_pixels"):
        tar_plan([(1920, 1080)] * 2, 0.05, 0.2, "qwen3-vl")
    old, new = tar_plan([(1920, 1080)] * 2, 0.05, 0.2, "qwen3-vl", min_pixels=1024)
    assert (old.tokens_after, new.tokens_after) == (28, 153)
    assert old.target == (7 * 32, 4 * 32)


@pytest.mark.parametrize("family", FAMILIES)
def test_tar_paper_settings_fit_common_screens(family):
    # settings I/II/III of the paper (lam = 0.4 / 0.2 / 0.1, gamma = 0.2) on phone and desktop sizes
    for size in [(1920, 1080), (1170, 2532), (2560, 1440), (1080, 2400)]:
        for lam in (0.4, 0.2, 0.1):
            for n in range(1, 13):
                plan = tar_plan([size] * n, lam, 0.2, family)
                assert sum(f.tokens_after for f in plan) <= lam * sum(f.tokens_before for f in plan)


PRESETS = [(3840, 2160), (2160, 3840), (1920, 1080), (1170, 2532), (1280, 720), (64, 48), (20, 300), (30, 30)]
_size = st.one_of(
    st.sampled_from(PRESETS),
    st.tuples(st.integers(16, 4096), st.integers(16, 4096)).filter(lambda s: max(s) / min(s) <= 150),
)


@MORE
@given(
    family=st.sampled_from(FAMILIES),
    sizes=st.lists(_size, min_size=1, max_size=12),
    lam=st.floats(0.05, 1.0),
    gamma=st.floats(0.0, 1.0),
)
def test_tar_plan_properties(family, sizes, lam, gamma):
    try:
        plan = tar_plan(sizes, lam, gamma, family)
    except ValueError as exc:  # a frame's processor floor does not fit in lam * sum(T)
        assert "min_pixels" in str(exc) and "cannot fit" in str(exc)
        reject()
    spec = get_family(family)
    budget = lam * sum(f.tokens_before for f in plan)
    assert sum(f.tokens_after for f in plan) <= budget
    for f in plan:
        assert f.tokens_before == processor_tokens(family, *f.size)  # T_k is the processor's count
        assert f.tokens_after <= f.tokens_before  # never enlarged
        assert f.target[0] <= f.full_size[0] and f.target[1] <= f.full_size[1]
        assert f.target[0] % spec.block == 0 and f.target[1] % spec.block == 0
        assert f.tokens_after == (f.target[0] // spec.block) * (f.target[1] // spec.block)
        assert processor_tokens(family, *f.target) == f.tokens_after  # processor keeps the target
    for a in plan:  # a newer frame never has fewer tokens than an older frame of the same size
        for b in plan[a.index + 1 :]:
            if a.size == b.size:
                assert b.tokens_after >= a.tokens_after


@corpus.needs_corpus
@pytest.mark.parametrize("family", FAMILIES)
def test_resize_history_real_trajectory_matches_processor(family):
    episode = corpus.CORPUS / "trajectories" / "web_flask_quickstart_routing"
    steps = sorted(episode.glob("step_*.png"))[:-1]  # history only; the last step is the current screen
    sizes = [Image.open(p).size for p in steps]
    assert len(steps) >= 2 and len(set(sizes)) == 1
    out = resize_history(steps, 0.2, 0.2, family)
    plan = tar_plan(sizes, 0.2, 0.2, family)
    assert [im.size for im in out] == [f.target for f in plan]
    got = processor_grid_tokens(family, out)
    assert got == [f.tokens_after for f in plan]
    assert sum(got) <= 0.2 * sum(f.tokens_before for f in plan)
    assert got == sorted(got) and got[0] < got[-1]  # same-size frames: the newer keep more


def test_resize_history_one_bicubic_resampling_and_input_kinds(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (700, 900, 3), dtype=np.uint8)
    pil = Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8))
    path = tmp_path / "old.png"
    Image.fromarray(arr).save(path)
    out = resize_history([path, pil, arr], 0.3, 0.2, "qwen2-vl")
    plan = tar_plan([(900, 700), (500, 300), (900, 700)], 0.3, 0.2, "qwen2-vl")
    for im, f, src in zip(out, plan, [Image.fromarray(arr), pil, Image.fromarray(arr)]):
        assert im.mode == "RGB" and im.size == f.target
        expect = src.resize(f.target, resample=Image.Resampling.BICUBIC)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(expect))


def test_resize_history_frame_at_target_is_not_resampled():
    # 280x280 on qwen2-vl is already 10x10 blocks; lam = gamma = 1 with one frame keeps it whole
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (280, 280, 3), dtype=np.uint8))
    (out,) = resize_history([img], 1.0, 1.0, "qwen2-vl")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(img))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lam": 0.0}, "option lam must be in \\(0, 1\\]"),
        ({"lam": 1.5}, "option lam"),
        ({"lam": True}, "option lam must be a number"),
        ({"gamma": -0.1}, "option gamma must be in \\[0, 1\\]"),
        ({"gamma": float("nan")}, "option gamma"),
        ({"family": "llava"}, "unknown model family"),
    ],
)
def test_resize_history_option_errors(kwargs, match):
    """The public API checks TAR's options (the algorithm takes validated values)."""
    import vlprune

    img = np.zeros((100, 100, 3), np.uint8)
    args = {"lam": 0.5, "gamma": 0.2, "family": "qwen2-vl", **kwargs}
    with pytest.raises(ValueError, match=match):
        vlprune.resize_history([img], **args)


def test_resize_history_input_errors(tmp_path):
    img = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="history is empty"):
        resize_history([], 0.5)
    with pytest.raises(ValueError, match="history must be a list"):
        resize_history(img, 0.5)
    with pytest.raises(ImageError, match=r"history\[1\].*no such file"):
        resize_history([img, tmp_path / "missing.png"], 0.5)
    with pytest.raises(ValueError, match=r"sizes\[0\]"):
        tar_plan([(0, 10)], 0.5, 0.2, "qwen2-vl")
    with pytest.raises(ImageError, match="history frame 0: aspect ratio"):
        tar_plan([(5000, 20)], 0.5, 0.2, "qwen2-vl")


# ============================================================================ SSP: foreground map
@pytest.mark.parametrize("block", [28, 32])
def test_foreground_rectangle_outline_marks_exactly_the_crossed_blocks(block):
    gh, gw = 8, 10
    img = np.full((gh * block, gw * block, 3), 255, np.uint8)
    # a 2-px black outline through the middle of blocks (1, 2) .. (5, 7): edges stay inside them
    top, bottom = 1 * block + block // 2, 5 * block + block // 2
    left, right = 2 * block + block // 2, 7 * block + block // 2
    img[top : top + 2, left : right + 2] = 0
    img[bottom : bottom + 2, left : right + 2] = 0
    img[top : bottom + 2, left : left + 2] = 0
    img[top : bottom + 2, right : right + 2] = 0
    expect = np.zeros((gh, gw), bool)
    expect[[1, 5], 2:8] = True
    expect[1:6, [2, 7]] = True
    np.testing.assert_array_equal(ui_foreground(img, (gh, gw), block), expect)


def test_foreground_contour_filters():
    block, gh, gw = 28, 4, 80
    img = np.full((gh * block, gw * block, 3), 255, np.uint8)
    img[2 * block + 14, 3 * block : 75 * block] = 0  # 2016-px separator: edge box aspect ~400 > 50
    img[12:15, 12:15] = 0  # 3x3 dot: its closed edge blob fits in 5x5 px, contour area in [4, 16]
    fg = ui_foreground(img, (gh, gw), block)
    expect = np.zeros((gh, gw), bool)
    expect[0, 0] = True
    np.testing.assert_array_equal(fg, expect)
    # the separator counts as structure when long lines are allowed
    assert ui_foreground(img, (gh, gw), block, ForegroundConfig(max_aspect=1000.0))[2, 3:75].all()
    # and the dot goes with a larger minimum contour area
    assert not ui_foreground(img, (gh, gw), block, ForegroundConfig(min_area=20.0)).any()


def test_foreground_keeps_structure_nested_in_a_frame():
    # a frame around the whole canvas and a small square inside it: the square's block is
    # foreground although its edge component lies in the hole of the frame's component
    block, gh, gw = 32, 7, 7
    img = np.full((gh * block, gw * block, 3), 255, np.uint8)
    lo, hi = block // 2, (gw - 1) * block + block // 2
    img[lo : lo + 2, lo:hi] = img[hi : hi + 2, lo:hi] = 0
    img[lo:hi, lo : lo + 2] = img[lo:hi, hi : hi + 2] = 0
    img[3 * block + 10 : 3 * block + 22, 3 * block + 10 : 3 * block + 22] = 0
    fg = ui_foreground(img, (gh, gw), block)
    assert fg[3, 3]
    inner = np.ones((gh, gw), bool)
    inner[[0, -1], :] = inner[:, [0, -1]] = False  # blocks the frame does not cross
    inner[3, 3] = False
    assert not fg[inner].any() and fg[~inner].all()


def test_foreground_ignores_noise_and_gradients():
    # CLAHE clip 2.0: sigma = 2 gray-level noise and a smooth 230 -> 255 ramp are not structure
    # (OpenCV's default clip 40 turns such noise into edges nearly everywhere)
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(230 + rng.normal(0, 2, (448, 448, 1))), 0, 255).astype(np.uint8).repeat(3, 2)
    assert not ui_foreground(noisy, (16, 16), 28).any()
    assert ui_foreground(noisy, (16, 16), 28, ForegroundConfig(clahe_clip=40.0)).mean() > 0.9
    ramp = np.linspace(230, 255, 448).round().astype(np.uint8)[None, :, None].repeat(448, 0).repeat(3, 2)
    assert not ui_foreground(ramp, (16, 16), 28).any()


@corpus.needs_corpus
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_foreground_real_page_text_lines_vs_flat_margin(family):
    # web/flask_index.png (1920x1080): three text lines at y = 196..259 spanning x = 641..1492
    # (word gaps <= 8 px); x >= 1520 is pure white (#ffffff) on every row.
    (path,) = corpus.files("web/flask_index.png")
    grid = BlockGrid.from_image(path, family)
    b = grid.family.block
    sy, sx = grid.size[0] / 1080, grid.size[1] / 1920
    fg = ui_foreground(grid.image(), grid.shape, b)
    rows = [i for i in range(grid.shape[0]) if i * b < 255 * sy and (i + 1) * b > 200 * sy]
    cols = [j for j in range(grid.shape[1]) if j * b >= 650 * sx and (j + 1) * b <= 1470 * sx]
    assert len(rows) >= 2 and len(cols) >= 20
    assert fg[np.ix_(rows, cols)].all()
    margin = [j for j in range(grid.shape[1]) if j * b >= 1530 * sx]
    assert len(margin) >= 8
    assert not fg[:, margin].any()


@corpus.needs_corpus
def test_foreground_neither_empty_nor_full_on_corpus():
    for path in corpus.first_of("web", "mobile", "desktop", "doc"):
        grid = BlockGrid.from_image(path, "qwen2-vl")
        share = ui_foreground(grid.image(), grid.shape, 28).mean()
        assert 0.02 < share < 0.98, (path.name, share)


@corpus.needs_corpus
@pytest.mark.parametrize("family", FAMILIES)
def test_foreground_pixel_values_route_matches_image_route(family):
    (path,) = corpus.files("desktop/geany_json_decoder.png")
    crop = Image.open(path).convert("RGB").crop((100, 80, 900, 620))
    other = np.full((64, 96, 3), 200, np.uint8)
    proc = image_processor(family)(images=[other, crop], size=_bounds(family), return_tensors="np")
    from_pv = ui_foreground_from_pixel_values(proc["pixel_values"], proc["image_grid_thw"], family)
    grid = BlockGrid.from_image(crop, family)
    from_img = ui_foreground(grid.image(), grid.shape, grid.family.block)
    assert from_pv.shape == grid.shape
    np.testing.assert_array_equal(from_pv, from_img)
    assert 0 < from_img.sum() < from_img.size
    first = ui_foreground_from_pixel_values(proc["pixel_values"], proc["image_grid_thw"], family, image=0)
    assert not first.any()  # the flat grey image has no structure
    with pytest.raises(ValueError, match="image=2 is out of range"):
        ui_foreground_from_pixel_values(proc["pixel_values"], proc["image_grid_thw"], family, image=2)


def test_foreground_shape_errors():
    with pytest.raises(ValueError, match=r"image_rgb must be uint8 of shape \(56, 84, 3\)"):
        ui_foreground(np.zeros((56, 80, 3), np.uint8), (2, 3), 28)
    with pytest.raises(ValueError, match="option blur must be an odd"):
        ForegroundConfig(blur=4)


# =========================================================================== SSP: selection
def _dist2(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def check_grid_certificate(sel, pos):
    """Covering radius R of the kept set over the unkept tokens <= the spacing between grid picks and
    between grid picks and the other kept tokens (the greedy farthest-point guarantee)."""
    unkept = np.setdiff1d(np.arange(pos.shape[0]), sel.kept)
    if sel.grid.size == 0 or unkept.size == 0:
        return
    r2 = _dist2(pos[unkept], pos[sel.kept]).min(axis=1).max()
    g = pos[sel.grid]
    gg = _dist2(g, g)
    np.fill_diagonal(gg, np.iinfo(np.int64).max)
    others = np.concatenate([sel.fg_top, sel.bg_top])
    sep = min(gg.min(), _dist2(g, pos[others]).min() if others.size else gg.max())
    assert r2 <= sep


def test_ssp_budget_rounds_half_up():
    assert ssp_budget(10, 0.25) == 3  # 2.5 -> 3 (Python's round would give 2)
    assert ssp_budget(10, 0.35) == 4  # 3.5 -> 4
    assert ssp_budget(10, 0.34) == 3
    assert ssp_budget(1, 0.3) == 1  # never below one token
    assert ssp_budget(7, 1.0) == 7


def test_ssp_select_hand_example():
    # 4x4 grid; foreground = first two rows (8 tokens), background = last two (8 tokens)
    # mu = 0.5, rho = 0.5: M = 8; fg top floor(4) = 4, bg top floor(0.5*0.5*8) = 2, grid fills 2
    imp = np.array([5, 9, 1, 7, 3, 8, 2, 6, 4, 0.5, 9, 0.1, 0.2, 3, 1, 0.3])
    fg = np.arange(16) < 8
    sel = ssp_select(imp, fg, 0.5, 0.5, grid_shape=(4, 4))
    np.testing.assert_array_equal(sel.fg_top, [1, 3, 5, 7])  # 9, 7, 8, 6 beat 5, 3, 2, 1
    np.testing.assert_array_equal(sel.bg_top, [8, 10])  # 9 and 4 are the best background scores
    assert (sel.n_fg, sel.n_bg, sel.budget) == (8, 8, 8)
    assert sel.grid.size == 2 and sel.kept.size == 8
    assert not np.isin(sel.grid, np.concatenate([sel.fg_top, sel.bg_top])).any()
    # farthest-point: the unkept cells farthest from {1,3,5,7,8,10} are (3,1) and (3,3) (squared
    # distance 2); lower index first -> token 13; then (3,3) is still at 2 from everything kept -> 15
    np.testing.assert_array_equal(sel.grid, [13, 15])


def test_ssp_ties_go_to_lower_index():
    imp = np.ones(6)
    sel = ssp_select(imp, np.ones(6, bool), 0.5, 0.3, grid_shape=(2, 3))
    np.testing.assert_array_equal(sel.fg_top, [0, 1, 2])


@pytest.mark.parametrize(
    "n_fg, n_bg, mu, rho, expect",
    [
        (0, 9, 0.5, 0.3, (0, 1, 4)),  # M = 5 (4.5 -> 5); bg floor(1.35) = 1; grid 4
        (9, 0, 0.5, 0.3, (4, 0, 1)),  # M = 5; fg floor(4.5) = 4; grid 1
        (1, 0, 0.1, 0.3, (0, 0, 1)),  # n = 1: M = 1 held by the grid share
        (3, 3, 1.0, 0.0, (3, 0, 3)),  # mu = 1 keeps everything
    ],
)
def test_ssp_corner_cases(n_fg, n_bg, mu, rho, expect):
    n = n_fg + n_bg
    imp = np.linspace(1, 0, n)
    fg = np.arange(n) < n_fg
    sel = ssp_select(imp, fg, mu, rho, grid_shape=(1, n))
    assert (sel.fg_top.size, sel.bg_top.size, sel.grid.size) == expect
    assert sel.kept.size == sel.budget == sum(expect)


def test_grid_share_on_empty_seed_spreads_within_twice_a_lattice_radius():
    # nothing kept before the grid share: 39x69 grid (1920x1080 on qwen2-vl), k picks.
    # A lattice of rows x cols <= k cells of ceil(39/rows) x ceil(69/cols) blocks covers every block
    # within sqrt(ceil((a-1)/2)^2 + ceil((b-1)/2)^2); greedy farthest-point is within twice that.
    gh, gw = 39, 69
    pos = np.stack(np.divmod(np.arange(gh * gw), gw), axis=1)
    for k in (1, 7, 30, 300, 1000):
        picks = grid_sample(pos, (gh, gw), np.arange(gh * gw), np.zeros(0, np.int64), k)
        assert picks.size == k and np.unique(picks).size == k
        r = math.sqrt(_dist2(pos, pos[picks]).min(axis=1).max())
        best = min(
            math.hypot(math.ceil((math.ceil(gh / rows) - 1) / 2), math.ceil((math.ceil(gw / cols) - 1) / 2))
            for rows in range(1, gh + 1) for cols in range(1, gw + 1) if rows * cols <= k
        )
        assert r <= 2 * best, (k, r, best)


def test_grid_share_first_pick_is_the_centre():
    pos = np.stack(np.divmod(np.arange(35), 7), axis=1)
    np.testing.assert_array_equal(grid_sample(pos, (5, 7), np.arange(35), np.zeros(0, np.int64), 1), [17])


def test_edt_matches_brute_force():
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (5, 9), (13, 4), (20, 31)]:
        seeds = rng.random(shape) < 0.1
        seeds.flat[rng.integers(seeds.size)] = True
        pos = np.stack(np.divmod(np.arange(seeds.size), shape[1]), axis=1)
        brute = _dist2(pos, pos[seeds.ravel()]).min(axis=1).reshape(shape)
        np.testing.assert_array_equal(_edt_sq(seeds), brute)


@st.composite
def _tokens(draw):
    gh, gw = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    full = gh * gw
    n = draw(st.integers(1, full))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(full, size=n, replace=False))
    pos = np.stack(np.divmod(flat, gw), axis=1)
    imp = rng.integers(0, 5, n).astype(np.float64)  # few levels: plenty of ties
    fg = rng.random(n) < draw(st.floats(0, 1))
    return imp, fg, pos, (gh, gw)


@FAST
@given(tok=_tokens(), mu=st.floats(0.01, 1.0), rho=st.floats(0.0, 1.0))
def test_ssp_select_properties(tok, mu, rho):
    imp, fg, pos, shape = tok
    n = imp.size
    sel = ssp_select(imp, fg, mu, rho, grid_shape=shape, positions=pos)
    assert sel.budget == max(1, math.floor(mu * n + 0.5)) == sel.kept.size
    assert (sel.n_fg, sel.n_bg) == (int(fg.sum()), int((~fg).sum()))
    parts = np.concatenate([sel.fg_top, sel.bg_top, sel.grid])
    assert np.unique(parts).size == parts.size  # disjoint strata
    np.testing.assert_array_equal(np.sort(parts), sel.kept)
    assert sel.fg_top.size == math.floor(mu * sel.n_fg) and fg[sel.fg_top].all()
    assert sel.bg_top.size == math.floor(mu * rho * sel.n_bg) and not fg[sel.bg_top].any()
    for top, pool in ((sel.fg_top, np.flatnonzero(fg)), (sel.bg_top, np.flatnonzero(~fg))):
        left = np.setdiff1d(pool, top)
        if top.size and left.size:  # the highest scores, ties to the lower index
            worst = imp[top].min()
            assert imp[left].max() <= worst
            tied_left = left[imp[left] == worst]
            assert tied_left.size == 0 or tied_left.min() > top[imp[top] == worst].max()
    check_grid_certificate(sel, pos)
    again = ssp_select(imp, fg, mu, rho, grid_shape=shape, positions=pos)
    np.testing.assert_array_equal(again.kept, sel.kept)
    np.testing.assert_array_equal(again.grid, sel.grid)
    full = ssp_select(imp, fg, 1.0, rho, grid_shape=shape, positions=pos)
    np.testing.assert_array_equal(full.kept, np.arange(n))


def _min_dist2(a, b, chunk=400, skip_self=False):
    """For each row of a, the min squared distance to the rows of b (chunked for ~10k-token grids);
    ``skip_self``: a is b, ignore each row's distance to itself."""
    out = []
    for i in range(0, len(a), chunk):
        d = _dist2(a[i : i + chunk], b)
        if skip_self:
            d[np.arange(d.shape[0]), np.arange(i, i + d.shape[0])] = np.iinfo(np.int64).max
        out.append(d.min(axis=1))
    return np.concatenate(out)


def test_ssp_large_grid_certificate():
    # a 4K screenshot on qwen2-vl (77 x 137 tokens), paper setting mu = 0.75, rho = 0.3
    rng = np.random.default_rng(5)
    gh, gw = 77, 137
    n = gh * gw
    sel = ssp_select(rng.random(n), rng.random(n) < 0.3, 0.75, 0.3, grid_shape=(gh, gw))
    assert sel.kept.size == math.floor(0.75 * n + 0.5) and sel.grid.size > 1000
    pos = np.stack(np.divmod(np.arange(n), gw), axis=1)
    r2 = _min_dist2(pos[np.setdiff1d(np.arange(n), sel.kept)], pos[sel.kept]).max()
    g = pos[sel.grid]
    others = pos[np.concatenate([sel.fg_top, sel.bg_top])]
    assert r2 <= _min_dist2(g, others).min()
    assert r2 <= _min_dist2(g, g, skip_self=True).min()


@pytest.mark.parametrize("options, match", [({"mu": 0.0}, "option mu must be in \\(0, 1\\]"), ({"mu": 1.2}, "option mu"),
                                            ({"rho": -0.5}, "option rho must be in \\[0, 1\\]")])
def test_ssp_options_are_checked_by_the_method(options, match):
    from vlprune.methods import create_method

    with pytest.raises(ValueError, match=match):
        create_method("ssp", **options)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"importance": np.array([1.0, np.nan, 0, 0])}, "non-finite"),
        ({"foreground": np.ones(4)}, "foreground must be a bool array"),
        ({"foreground": np.ones(3, bool)}, "foreground must be a bool array of shape \\(4,\\)"),
        ({"grid_shape": (3, 3)}, "4 tokens but grid_shape 3x3"),
        ({"grid_shape": (2, 2), "positions": np.array([[0, 0], [0, 1], [1, 0], [0, 1]])}, "same block twice"),
        ({"grid_shape": (2, 2), "positions": np.array([[0, 0], [0, 1], [1, 0], [2, 1]])}, "positions\\[3\\]"),
    ],
)
def test_ssp_select_errors(kwargs, match):
    args = {"importance": np.arange(4.0), "foreground": np.array([1, 0, 1, 0], bool), "mu": 0.5, "rho": 0.3,
            "grid_shape": (2, 2)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ssp_select(args.pop("importance"), args.pop("foreground"), args.pop("mu"), args.pop("rho"), **args)

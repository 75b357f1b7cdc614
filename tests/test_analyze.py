"""vlprune.analyze (per-image analysis, batch runner), vlprune.overlay and vlprune.samples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vlprune
from vlprune.analyze import (
    AnalyzeConfig,
    ImageFailure,
    ImageResult,
    OverlayNames,
    Summary,
    analyze_image,
    analyze_paths,
    collect_images,
)
from vlprune.overlay import OverlayStyle, overlay_array, render_overlay, save_retain_plot
from vlprune.samples import SAMPLE_NAMES, make_samples
from vlprune.algorithms.stats import unique_blocks
from vlprune.selection import Selection

from corpus import first_of as corpus

def _png(path: Path, size=(96, 64), color=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


# ------------------------------------------------------------------------------ config
def test_config_validates_and_normalises():
    assert AnalyzeConfig(family="qwen3_vl").family == "qwen3-vl"  # config.model_type alias
    for bad, match in [
        (dict(method="nope"), "unknown method"),
        (dict(family="llava"), "unknown model family"),
        (dict(tau=math.nan), "tau"),
        (dict(tau=-0.1), "tau"),
        (dict(metric="l2"), "metric"),
        (dict(order="zigzag"), "order"),
        (dict(retain=0.5), "baselines"),
        (dict(min_pixels=10**9), "min_pixels"),
        (dict(max_image_pixels=0), "max_image_pixels"),
    ]:
        with pytest.raises(ValueError, match=match):
            AnalyzeConfig(**bad)


def test_build_method_passes_the_options_that_apply():
    m = AnalyzeConfig(method="random", tau=0.05, metric="mae", seed=7).build_method()
    assert (m.seed, m.reference.tau, m.reference.metric) == (7, 0.05, "mae")
    p = AnalyzeConfig(order="serpentine", tau=0.1).build_method()
    assert (p.order, p.tau) == ("serpentine", 0.1)
    assert AnalyzeConfig(method="full", seed=3).options() == {}
    assert AnalyzeConfig(method="uniform", retain=0.25).build_method().retain == 0.25


# ------------------------------------------------------------------------------ inputs
def test_collect_images_walks_sorted_skips_hidden_and_dedupes(tmp_path):
    for rel in ["b/z.png", "b/a.JPG", "a.webp", "c/d/e.tiff", ".hidden/x.png", "b/.y.png"]:
        _png(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    inputs, failures = collect_images([tmp_path, tmp_path / "b" / "z.png", tmp_path / "notes.txt",
                                       tmp_path / "missing.png", tmp_path / "empty"])
    assert [i.name for i in inputs] == ["a.webp", "b/a.JPG", "b/z.png", "c/d/e.tiff", "notes.txt"]
    assert [(Path(f.path).name, f.error) for f in failures] == [
        ("missing.png", "no such file or folder"), ("empty", "no image files found in this folder"),
    ]


def test_overlay_names_are_flat_and_collision_free():
    names = OverlayNames()
    got = [names(n) for n in ["web/a.png", "web/a.jpg", "a.png", "A.png", "web__a.png", "../x/y.png", ""]]
    assert got == ["web__a.png", "web__a-2.png", "a.png", "A-2.png", "web__a-3.png", "x__y.png", "image.png"]
    assert len({g.lower() for g in got}) == len(got)


# ------------------------------------------------------------------------------ analysis
def test_analyze_image_matches_select_and_appendix_a():
    path = corpus("web")[0]
    r = analyze_image(path, AnalyzeConfig(family="qwen2.5-vl"))
    sel = vlprune.select(path, family="qwen2.5-vl")
    grid = vlprune.BlockGrid.from_image(path, "qwen2.5-vl")
    assert r.kept_indices.tolist() == sel.kept.tolist()
    assert (r.grid, r.kept_grid, r.tokens, r.kept) == (grid.shape, grid.shape, grid.n_blocks, sel.n_kept)
    assert r.size == grid.size and r.resized is None
    assert r.retain == sel.n_kept / grid.n_blocks
    assert r.duplicate_ratio == 1 - unique_blocks(grid.blocks()) / grid.n_blocks


def test_resize_result_describes_the_downscaled_image():
    r = analyze_image(corpus("doc")[0], AnalyzeConfig(method="resize"))
    gh, gw = r.kept_grid
    assert r.kept == gh * gw and r.kept_indices.tolist() == list(range(gh * gw))
    assert r.resized == (gh * 32, gw * 32) and r.kept <= vlprune.select(corpus("doc")[0]).n_kept


def test_analyze_paths_continues_after_failures_and_sums(tmp_path):
    good = corpus("web", "mobile")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    report = analyze_paths([good[0], tmp_path / "empty.png", good[1], tmp_path / "text.png"])
    assert [Path(r.path).name for r in report.results] == [g.name for g in good]
    assert [Path(f.path).name for f in report.failures] == ["empty.png", "text.png"]
    assert "empty" in report.failures[0].error and "not a readable image" in report.failures[1].error
    s = report.summary
    assert (s.images, s.failed) == (2, 2)
    assert s.retain == sum(r.kept for r in report.results) / sum(r.tokens for r in report.results)
    assert s.selector_ms_median == pytest.approx(np.median([r.selector_ms for r in report.results]))


def test_summary_of_nothing_is_nan_not_an_error():
    s = Summary.of([], n_failed=3)
    assert math.isnan(s.retain) and s.to_dict()["retain"] is None and s.to_dict()["failed"] == 3


def test_result_dicts_are_json_ready():
    r = ImageResult("p", "qwen3-vl", "pixelprune", (64, 64), (2, 2), 4, 2, 3, 0.5,
                    np.array([0, 3], dtype=np.int64), (2, 2))
    d = r.to_dict()
    assert d["kept_indices"] == [0, 3] and d["grid"] == [2, 2] and d["retain"] == 0.5
    assert d["duplicate_ratio"] == 0.25
    assert ImageFailure("x", "bad").to_dict() == {"path": "x", "error": "bad"}


# ------------------------------------------------------------------------------ overlay
@pytest.mark.parametrize("fill", [None, "line", "dim"])
def test_overlay_keeps_kept_blocks_and_changes_every_dropped_block(fill):
    rng = np.random.default_rng(0)
    b, gh, gw = 8, 5, 7
    style = OverlayStyle()
    if fill is None:
        image = rng.integers(0, 256, (gh * b, gw * b, 3), dtype=np.uint8)
    else:  # adversarial: pixels equal to the line / dim colour must still change when dropped
        image = np.broadcast_to(np.array(getattr(style, fill), np.uint8), (gh * b, gw * b, 3)).copy()
    mask = rng.random((gh, gw)) < 0.5
    out = overlay_array(image, mask, style)
    assert out.shape == image.shape and out.dtype == np.uint8
    for i in range(gh):
        for j in range(gw):
            same = np.array_equal(out[i * b:(i + 1) * b, j * b:(j + 1) * b], image[i * b:(i + 1) * b, j * b:(j + 1) * b])
            assert same == bool(mask[i, j]), (i, j)


def test_overlay_rejects_mismatched_grid_and_resize_shows_encoder_input():
    with pytest.raises(ValueError, match="square blocks"):
        overlay_array(np.zeros((30, 40, 3), np.uint8), np.ones((3, 3), bool))
    sel = Selection(kept=np.arange(6, dtype=np.int64), grid=(2, 3), resized=(64, 96))
    assert render_overlay(np.zeros((128, 160, 3), np.uint8), sel).size == (96, 64)


def test_retain_plot_is_a_png(tmp_path):
    path = save_retain_plot(tmp_path / "sub" / "plot.png", [0.2, 0.5, 0.55, 0.9], 0.51, "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(path).size[0] > 300
    with pytest.raises(ValueError):
        save_retain_plot(tmp_path / "none.png", [], 0.0)


# ------------------------------------------------------------------------------ samples
def test_samples_are_deterministic_small_and_show_both_ends():
    a, b = make_samples(), make_samples()
    assert tuple(a) == SAMPLE_NAMES
    for name in SAMPLE_NAMES:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])) and a[name].mode == "RGB"
        assert a[name].width * a[name].height <= 1280 * 800
    retain = {n: vlprune.select(img).retain for n, img in a.items()}
    assert retain["gui"] < 0.7 and retain["document"] < 0.7 and retain["texture"] > 0.95

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
    build_methods,
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
from vlprune.images import ImageOptions
from vlprune.options import OptionError
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
        (dict(retain=0.5), "option retain does not apply to method pixelprune .*conncomp, random, resize, uniform"),
        (dict(image=ImageOptions(min_pixels=10**9)), "min_pixels"),
        (dict(image=dict(max_pixels=5)), "image must be an ImageOptions"),
        (dict(method="random", seed=-5), "option seed must be an integer in \\[0, inf\\]"),
        (dict(method="random", seed=1.5), "option seed must be an integer"),
        (dict(seed=3), "option seed does not apply to method pixelprune"),
        (dict(method="full", tau=0.1), "option tau does not apply to method full"),
        (dict(tau=1e9), "option tau must be in \\[0, 1\\]"),
        (dict(tau=math.inf), "option tau must be in"),
        (dict(tau=True), "option tau must be a number, got True"),
        (dict(method="uniform", retain=0.0), "option retain must be in \\(0, 1\\]"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            AnalyzeConfig(**bad)


def test_api_and_analyze_refuse_the_same_values():
    """The method's own validation is what analyze applies: create_method refuses what AnalyzeConfig does."""
    for name, opts in [("random", dict(seed=-5)), ("pixelprune", dict(tau=2.0)), ("pixelprune", dict(tau=True)),
                       ("uniform", dict(retain=1.5)), ("pixelprune", dict(order="zigzag"))]:
        with pytest.raises(ValueError) as api:
            vlprune.create_method(name, **opts)
        with pytest.raises(ValueError) as cfg:
            AnalyzeConfig(method=name, **opts)
        assert str(api.value) == str(cfg.value)


def test_build_method_passes_the_options_that_apply():
    m = AnalyzeConfig(method="random", tau=0.05, metric="mae", seed=7).build_method()
    assert (m.seed, m.reference.tau, m.reference.metric) == (7, 0.05, "mae")
    p = AnalyzeConfig(order="serpentine", tau=0.1).build_method()
    assert (p.order, p.tau) == ("serpentine", 0.1)
    assert AnalyzeConfig(method="full").options() == {}
    assert AnalyzeConfig().options() == {"order": "pred2d", "metric": "max", "tau": 0.0, "after_block": None}
    assert AnalyzeConfig(method="random", seed=2).options() == {
        "order": "pred2d", "metric": "max", "tau": 0.0, "after_block": None, "retain": None, "seed": 2}
    assert AnalyzeConfig(method="uniform", retain=0.25).build_method().retain == 0.25


def test_build_methods_routes_options_across_several_methods():
    """bench's rule: an option must apply to at least one of the methods; the shared seed need not."""
    p, r = build_methods(["pixelprune", "random"], {"tau": 0.05, "retain": 0.5}, shared={"seed": 4})
    assert (p.tau, r.reference.tau, r.retain, r.seed) == (0.05, 0.05, 0.5, 4)
    (p,) = build_methods(["pixelprune"], {"retain": None}, shared={"seed": 4})  # not given / shared: fine
    with pytest.raises(OptionError, match="option retain does not apply to method pixelprune, full") as exc:
        build_methods(["pixelprune", "full"], {"retain": 0.5})
    assert exc.value.flag == "--retain"
    with pytest.raises(OptionError, match="unknown method 'nope'"):
        build_methods(["nope"], {})


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


def test_collect_images_follows_folder_links_and_reports_loops(tmp_path):
    """A linked folder is walked like a folder (it used to be skipped silently); a link back into the
    folder being walked is a failure for that path, as is a dangling link."""
    _png(tmp_path / "top" / "a.png")
    for name in ("x.png", "y.jpg"):
        _png(tmp_path / "elsewhere" / "shots" / name)
    (tmp_path / "top" / "linked").symlink_to(tmp_path / "elsewhere" / "shots", target_is_directory=True)
    (tmp_path / "top" / "linked_file.png").symlink_to(tmp_path / "elsewhere" / "shots" / "x.png")
    inputs, failures = collect_images([tmp_path / "top"])
    assert [i.name for i in inputs] == ["a.png", "linked/x.png", "linked/y.jpg"]  # x.png reached twice: once
    assert inputs[1].path == tmp_path / "top" / "linked" / "x.png" and failures == []
    (tmp_path / "top" / "sub").mkdir()
    (tmp_path / "top" / "sub" / "back").symlink_to(tmp_path / "top", target_is_directory=True)
    (tmp_path / "top" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    inputs, failures = collect_images([tmp_path / "top"])
    assert [i.name for i in inputs] == ["a.png", "linked/x.png", "linked/y.jpg"]
    assert [(Path(f.path).relative_to(tmp_path).as_posix(), f.error.split(":")[0]) for f in failures] == [
        ("top/gone.png", "broken symbolic link to " + str(tmp_path / "nowhere.png")),
        ("top/sub/back", "symbolic link loop"),
    ]
    report = analyze_paths([tmp_path / "top"])
    assert (report.summary.images, report.summary.failed) == (3, 2)


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
    # one definition of retain: kept tokens / tokens of the unresized grid, in analyze and in the API
    sel = vlprune.select(corpus("doc")[0], "resize")
    assert (sel.n_kept, sel.n_total, sel.grid) == (r.kept, r.tokens, r.kept_grid)
    assert sel.retain == r.retain == r.kept / (r.grid[0] * r.grid[1]) < 1


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

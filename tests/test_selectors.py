"""PixelPrune selectors, decoder and block grids against independent references.

* the compiled selector (``vlprune.algorithms.predictive``) against the per-block reference in
  ``tests/reference.py`` -- random grids with planted (near-)duplicates and real corpus images;
* the decoder's guarantees: Prop. 1 (τ = 0: bit-exact) and Prop. 2 (τ > 0: every block within τ);
* both grid routes (image file / the real transformers processor's ``pixel_values``) agree;
* ``smart_resize`` and the resized size agree with transformers;
* bad input fails with an error that names the input.

The corpus lives in ``../shared/corpus`` (``tests/corpus.py``); tests that need it are skipped when it
is absent.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version
from PIL import Image

from vlprune.algorithms import baselines as B
from vlprune.families import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, get_family
from vlprune.grid import BlockGrid, ImageError, load_image, smart_resize
from vlprune.methods import create_method
from vlprune.methods.pixelprune import PixelPrune
from vlprune.algorithms.predictive import (
    METRICS,
    ORDERS,
    block_distance,
    predictive_decode,
    predictive_select,
    predictive_sources,
)

try:
    import corpus
    import reference as ref
except ImportError:  # tests/ imported as a package
    from tests import corpus
    from tests import reference as ref
needs_corpus = corpus.needs_corpus

REPO = Path(__file__).resolve().parents[1]

# One image per category, chosen for variety: a web page, a phone screenshot, a text page, and a
# desktop splash with photographic gradients (where τ > 0 matters most).
PICKS = ("web/flask_index.png", "mobile/pytest_getting_started.png", "doc/gnuplot_p027_text.png",
         "desktop/gimp_splash.png")

# (metric, τ) settings checked on real images; 3/255 and 2/255 sit exactly on level boundaries.
REAL_SETTINGS = [("max", 0.0), ("max", 0.05), ("mae", 0.05), ("rmse", 0.05), ("max", 3 / 255), ("mae", 2 / 255)]

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]

#: transformers >= 5.21 composites alpha bands and colour keys of PIL images on white in the processor;
#: 5.19 - 5.20 use PIL's convert("RGB") (alpha dropped, a colour key kept as its colour)
COMPOSITES = Version(transformers.__version__).release[:2] >= (5, 21)
SETTINGS = settings(deadline=None, suppress_health_check=_HEALTH, max_examples=60)


def corpus_path(rel: str) -> Path:
    """A corpus image listed in manifest.csv (fails loudly if the manifest no longer lists it)."""
    return corpus.files(rel)[0]


# --------------------------------------------------------------------------- helpers
def to_base(data: np.ndarray) -> np.ndarray:
    """(gh, gw, R, L) blocks -> the C-contiguous (gh*R, gw*L) layout the selector reads."""
    gh, gw, r, l = data.shape
    return np.ascontiguousarray(data.transpose(0, 2, 1, 3)).reshape(gh * r, gw * l)


def core_select(data, scale, order, metric, tau):
    return predictive_select(to_base(data), data.shape, scale, order, metric, tau)


def assert_within(original: np.ndarray, decoded: np.ndarray, kept, scale, metric, tau):
    """Prop. 1 / Prop. 2 on (gh, gw, R, L) grids: kept blocks exact, every block within τ."""
    gh, gw = original.shape[:2]
    flat_o = original.reshape(gh * gw, *original.shape[2:])
    flat_d = decoded.reshape(flat_o.shape)
    assert np.array_equal(flat_o[kept], flat_d[kept]), "a kept block was changed by the decoder"
    if tau == 0:
        assert np.array_equal(original, decoded), "τ = 0 decode is not bit-exact (Prop. 1)"
        return
    for k in range(gh * gw):
        d = block_distance(flat_o[k], flat_d[k], scale, metric)
        assert d <= tau, f"block {k}: {metric} distance {d!r} > tau {tau!r} (Prop. 2)"


# --------------------------------------------------------------------------- random grids
@st.composite
def block_grids(draw):
    """(blocks (gh, gw, R, L), scale (L,)) with planted exact and near duplicates.

    Content: a small palette of random blocks laid out i.i.d., as row / column stripes or as
    rectangles; then some blocks perturbed by a few levels (near-duplicates), and optionally a
    slow ramp (pairwise-close chains that drift, where anchoring matters). Half the grids are
    uint8 (scale 1), half are processor-style normalised float32 (scale std*255).
    """
    shape = draw(st.one_of(
        st.just((1, 1)),
        st.tuples(st.just(1), st.integers(2, 9)),
        st.tuples(st.integers(2, 9), st.just(1)),
        st.tuples(st.integers(2, 8), st.integers(2, 8)),
    ))
    gh, gw = shape
    r, l = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2, 3, 6]))
    n_pal = draw(st.integers(1, 4))
    layout = draw(st.sampled_from(["iid", "rows", "cols", "rects"]))
    noise = draw(st.sampled_from([0, 1, 2, 3, 5, 13, 40]))
    p_near = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    ramp = draw(st.sampled_from([0, 0, 1, 2, 4]))
    as_float = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    palette = rng.integers(0, 256, (n_pal, r, l)).astype(np.int64)
    if layout == "iid":
        lab = rng.integers(0, n_pal, (gh, gw))
    elif layout == "rows":
        lab = np.repeat(rng.integers(0, n_pal, (gh, 1)), gw, axis=1)
    elif layout == "cols":
        lab = np.repeat(rng.integers(0, n_pal, (1, gw)), gh, axis=0)
    else:
        lab = np.zeros((gh, gw), np.int64)
        for _ in range(3):
            i0, j0 = rng.integers(0, gh), rng.integers(0, gw)
            lab[i0 : i0 + rng.integers(1, gh + 1), j0 : j0 + rng.integers(1, gw + 1)] = rng.integers(0, n_pal)
    data = palette[lab]
    if ramp:
        data = data + ramp * (np.arange(gh)[:, None] + np.arange(gw)[None, :])[:, :, None, None]
    if noise:
        near = rng.random((gh, gw)) < p_near
        data = data + near[:, :, None, None] * rng.integers(-noise, noise + 1, data.shape)
    data = np.clip(data, 0, 255).astype(np.uint8)
    if not as_float:
        return data, np.ones(l)
    chan = np.arange(l) % 3
    mean, std = np.asarray(OPENAI_CLIP_MEAN)[chan], np.asarray(OPENAI_CLIP_STD)[chan]
    values = ((data / 255.0 - mean) / std).astype(np.float32)
    return values, std * 255.0


POSITIVE_TAU = st.one_of(
    st.sampled_from([1 / 255, 2 / 255, 3 / 255, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]),
    st.floats(1e-4, 0.3, allow_nan=False),
)
MODES = ["exact", "max", "mae", "rmse"]


def on_random_grids(test):
    """Run ``test(order, data, scale, metric, tau)`` for every order and mode on random grids."""

    @pytest.mark.parametrize("order", ORDERS)
    @pytest.mark.parametrize("mode", MODES)
    @SETTINGS
    @given(grid=block_grids(), tau=POSITIVE_TAU)
    def run(order, mode, grid, tau):
        metric, tau = ("max", 0.0) if mode == "exact" else (mode, tau)
        test(order, *grid, metric, tau)

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@on_random_grids
def test_selector_matches_reference_on_random_grids(order, data, scale, metric, tau):
    want_kept, want_recon = ref.encode(data, scale, order, metric, tau)
    got = core_select(data, scale, order, metric, tau)
    assert got.dtype == np.int64
    assert got.tolist() == want_kept
    # the sources describe the reference encoder's reconstruction block for block
    gh, gw = data.shape[:2]
    src = predictive_sources(to_base(data), data.shape, scale, order, metric, tau)
    flat = data.reshape(gh * gw, *data.shape[2:])
    assert np.array_equal(flat[src].reshape(data.shape), want_recon)


@on_random_grids
def test_decoder_properties_on_random_grids(order, data, scale, metric, tau):
    """Prop. 1 (τ = 0 bit-exact) and Prop. 2 (every block within τ), and decoder == reference."""
    gh, gw = data.shape[:2]
    kept = core_select(data, scale, order, metric, tau)
    kept_blocks = data.reshape(gh * gw, *data.shape[2:])[kept]
    decoded = predictive_decode(kept, kept_blocks, (gh, gw), scale, order, metric, tau)
    assert decoded.shape == data.shape and decoded.dtype == data.dtype
    assert_within(data, decoded, kept, scale, metric, tau)
    assert np.array_equal(decoded, ref.decode(kept, kept_blocks, (gh, gw), scale, order, metric, tau))
    # the decoder rebuilds exactly what the anchored encoder reconstructed
    assert np.array_equal(decoded, ref.encode(data, scale, order, metric, tau)[1])


@pytest.mark.parametrize("order", ORDERS)
def test_exact_duplicates_are_always_dropped_and_tau_1_drops_all(order):
    """A constant grid keeps only the anchor for every τ; τ = 1 (the largest distance) keeps only it
    too; τ above 1 is refused (distances are in [0, 1])."""
    rng = np.random.default_rng(7)
    const = np.broadcast_to(rng.integers(0, 256, (1, 1, 2, 6), dtype=np.uint8), (5, 4, 2, 6)).copy()
    noise = rng.integers(0, 256, (5, 4, 2, 6), dtype=np.uint8)
    for metric in METRICS:
        for tau in (0.0, 0.05):
            assert core_select(const, np.ones(6), order, metric, tau).tolist() == [0]
        assert core_select(noise, np.ones(6), order, metric, 1.0).tolist() == [0]
        for tau in (1 + 1e-9, 1e300, math.inf, True):  # the method checks tau (the kernel takes it as given)
            with pytest.raises(ValueError, match="option tau must"):
                create_method("pixelprune", order=order, metric=metric, tau=tau)


def test_pred2d_uses_the_upper_neighbour_when_the_rule_says_so():
    """Hand-made 2x2 case: C == A != B predicts B (up), so a block equal to B is dropped by
    Pred-2D but kept by Raster (whose prediction is the left block A)."""
    a, b = np.zeros((1, 3), np.uint8), np.full((1, 3), 200, np.uint8)
    grid = np.stack([np.stack([a, b]), np.stack([a, b])])  # rows: [A B], [A B]
    #   (1,1): left A=(1,0)=a, up B=(0,1)=b, up-left C=(0,0)=a -> C≈A, not C≈B -> predict b -> drop
    assert core_select(grid, np.ones(3), "pred2d", "max", 0).tolist() == [0, 1]
    assert core_select(grid, np.ones(3), "raster", "max", 0).tolist() == [0, 1, 2, 3]
    # serpentine: (1,1) is predicted by (0,1) above it -> dropped; (1,0) by (1,1) -> kept
    assert core_select(grid, np.ones(3), "serpentine", "max", 0).tolist() == [0, 1, 2]


def test_anchored_encoder_stops_drift():
    """A ramp of +2 levels per block: every neighbour pair is within τ = 2/255, but the anchored
    encoder must keep a block once the drift from the last kept block exceeds τ."""
    ramp = (np.arange(10, dtype=np.uint8) * 2).reshape(1, 10, 1, 1)
    kept = core_select(ramp, np.ones(1), "raster", "max", 2 / 255)
    assert kept.tolist() == [0, 2, 4, 6, 8]
    decoded = predictive_decode(kept, ramp.reshape(10, 1, 1)[kept], (1, 10), np.ones(1), "raster", "max", 2 / 255)
    assert np.abs(decoded.astype(int) - ramp).max() == 2


def test_decoder_rejects_a_dropped_anchor_and_bad_indices():
    blocks = np.zeros((2, 1, 1), np.uint8)
    with pytest.raises(ValueError, match="anchor"):
        predictive_decode(np.array([1]), blocks[:1], (1, 2), np.ones(1))
    with pytest.raises(ValueError, match="kept indices"):
        predictive_decode(np.array([0, 5]), blocks, (1, 2), np.ones(1))
    with pytest.raises(ValueError, match="kept_blocks"):
        predictive_decode(np.array([0, 1]), blocks[:1], (1, 2), np.ones(1))


# --------------------------------------------------------------------------- real images
@pytest.fixture(scope="module")
def corpus_grids():
    return {rel: BlockGrid.from_image(corpus_path(rel), "qwen3-vl") for rel in PICKS}


def check_against_reference(grid: BlockGrid, settings_=REAL_SETTINGS, orders=ORDERS):
    data = grid.data
    for order in orders:
        for metric, tau in settings_:
            want = ref.select(data, grid.scale, order, metric, tau)
            got = predictive_select(grid.base, grid.geometry, grid.scale, order, metric, tau)
            assert got.tolist() == want, f"{grid.source}: {order} {metric} τ={tau}"


@needs_corpus
@pytest.mark.parametrize("rel", PICKS)
def test_selector_matches_reference_on_corpus(corpus_grids, rel):
    grid = corpus_grids[rel]
    kept = predictive_select(grid.base, grid.geometry, grid.scale)
    assert 1 <= kept.size < grid.n_blocks  # real screenshots and pages always have duplicates
    check_against_reference(grid)


@needs_corpus
def test_selector_matches_reference_on_processor_rows_and_other_block_sizes(processors):
    """The pixel_values layout (one row per block, float, scale = std*255) and the 28-px grid."""
    img = Image.open(corpus_path("desktop/geany_json_decoder.png")).crop((0, 0, 900, 700))
    for fam in ("qwen2.5-vl", "qwen3-vl"):
        out = processors[fam](img, return_tensors="np")
        (g,) = BlockGrid.from_pixel_values(out["pixel_values"], out["image_grid_thw"], fam)
        check_against_reference(g)
        check_against_reference(BlockGrid.from_image(img, fam), orders=("pred2d",))


@needs_corpus
@pytest.mark.parametrize("rel", PICKS)
def test_decoder_properties_on_corpus(corpus_grids, rel):
    grid = corpus_grids[rel]
    for order in ORDERS:
        for metric, tau in REAL_SETTINGS[:4]:
            kept = predictive_select(grid.base, grid.geometry, grid.scale, order, metric, tau)
            decoded = predictive_decode(kept, grid.blocks(kept), grid.shape, grid.scale, order, metric, tau)
            assert_within(grid.data, decoded, kept, grid.scale, metric, tau)


# --------------------------------------------------------------------------- both grid routes
def make_processor(family: str):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if family in ("qwen2-vl", "qwen2.5-vl"):
        return Qwen2VLImageProcessorPil(patch_size=14, image_mean=list(OPENAI_CLIP_MEAN),
                                        image_std=list(OPENAI_CLIP_STD), min_pixels=3136, max_pixels=12845056)
    return Qwen2VLImageProcessorPil(patch_size=16, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                    size={"shortest_edge": 65536, "longest_edge": 16777216})


@pytest.fixture(scope="module")
def processors():
    return {fam: make_processor(fam) for fam in ("qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5")}


def synthetic_images():
    """Small images in modes the processor converts itself: RGBA with varying alpha, palette."""
    rng = np.random.default_rng(3)
    rgb = np.zeros((300, 420, 3), np.uint8)
    rgb[:, :200] = (240, 240, 240)
    rgb[100:180, 50:350] = rng.integers(0, 256, (80, 300, 3))
    alpha = np.tile(np.linspace(0, 255, 420).astype(np.uint8), (300, 1))
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    pal = Image.fromarray(rgb).quantize(12)
    return [rgba, pal]


SELECT_SETTINGS = [(o, m, t) for o in ORDERS for m, t in REAL_SETTINGS]


@needs_corpus
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qwen3.5"])
def test_image_and_pixel_values_routes_agree(processors, family):
    """Several images in one processor batch: same grid, same pixels, same selections."""
    paths = [corpus_path("web/flask_index.png"), corpus_path("doc/gnuplot_p027_text.png")]
    images = [Image.open(p) for p in paths] + synthetic_images()
    sources = paths + synthetic_images()
    out = processors[family](images, return_tensors="np")
    grids = BlockGrid.from_pixel_values(out["pixel_values"], out["image_grid_thw"], family)
    assert len(grids) == len(images)
    spec = get_family(family)
    for src, g_pv, thw in zip(sources, grids, out["image_grid_thw"].tolist()):
        g_img = BlockGrid.from_image(src, family)
        assert g_pv.shape == g_img.shape == (thw[1] // spec.merge_size, thw[2] // spec.merge_size)
        assert g_pv.size == g_img.size
        assert np.array_equal(g_pv.image(), g_img.image()), f"{src}: pixels differ between routes"
        for order, metric, tau in SELECT_SETTINGS:
            a = predictive_select(g_img.base, g_img.geometry, g_img.scale, order, metric, tau)
            b = predictive_select(g_pv.base, g_pv.geometry, g_pv.scale, order, metric, tau)
            assert np.array_equal(a, b), f"{src} {family}: {order} {metric} τ={tau}"


@needs_corpus
def test_pixel_values_as_torch_tensor(processors):
    out = processors["qwen3-vl"](Image.open(corpus_path("web/flask_index.png")), return_tensors="pt")
    (g_t,) = BlockGrid.from_pixel_values(out["pixel_values"], out["image_grid_thw"], "qwen3-vl")
    (g_n,) = BlockGrid.from_pixel_values(out["pixel_values"].numpy(), out["image_grid_thw"].numpy(), "qwen3-vl")
    for metric, tau in REAL_SETTINGS[:3]:
        assert np.array_equal(predictive_select(g_t.base, g_t.geometry, g_t.scale, "pred2d", metric, tau),
                              predictive_select(g_n.base, g_n.geometry, g_n.scale, "pred2d", metric, tau))


def _png_with_transparency_key(mode: str) -> bytes:
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[:, 48:] = (200, 100, 50)
    rgb[:, :48] = (10, 20, 30)
    img = Image.fromarray(rgb) if mode == "RGB" else Image.fromarray(rgb[..., 0])
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=(10, 20, 30) if mode == "RGB" else 10)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_transparency_key_is_composited_like_the_processor(processors, mode):
    """An RGB / L PNG with a tRNS colour key: the processor of transformers >= 5.21 composites the
    keyed colour on white, 5.19 - 5.20 keep it as its colour; the image route must do the same as the
    installed one or the two routes select on different pixels."""
    data = _png_with_transparency_key(mode)
    img = Image.open(io.BytesIO(data))
    assert img.info.get("transparency") is not None
    out = processors["qwen3-vl"](img, return_tensors="np")
    (g_pv,) = BlockGrid.from_pixel_values(out["pixel_values"], out["image_grid_thw"], "qwen3-vl")
    g_img = BlockGrid.from_image(data, "qwen3-vl")
    keyed = 255 if COMPOSITES else (10, 20, 30) if mode == "RGB" else 10
    assert (g_pv.image()[:, :10] == keyed).all()  # what the processor does
    assert np.array_equal(g_img.image(), g_pv.image())


# --------------------------------------------------------------------------- smart_resize
@settings(deadline=None, suppress_health_check=_HEALTH, max_examples=300)
@given(
    h=st.integers(1, 40000), w=st.integers(1, 40000),
    family=st.sampled_from(["qwen2.5-vl", "qwen3-vl"]),
    custom=st.one_of(st.none(), st.tuples(st.integers(1, 10**6), st.integers(1, 10**8))),
)
def test_smart_resize_matches_transformers(h, w, family, custom):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

    spec = get_family(family)
    lo, hi = (spec.min_pixels, spec.max_pixels) if custom is None else (min(custom), max(custom))
    try:
        want = hf_smart_resize(h, w, spec.block, lo, hi)
    except ValueError:
        with pytest.raises(ValueError, match="aspect ratio"):
            smart_resize(h, w, spec.block, lo, hi)
        return
    assert smart_resize(h, w, spec.block, lo, hi) == want


@settings(deadline=None, suppress_health_check=_HEALTH, max_examples=25)
@given(
    h=st.integers(1, 700), w=st.integers(1, 700),
    family=st.sampled_from(["qwen2.5-vl", "qwen3-vl"]),
    max_pixels=st.one_of(st.none(), st.integers(70000, 300000)),
    seed=st.integers(0, 2**16),
)
def test_resized_size_matches_processor_grid(processors, h, w, family, max_pixels, seed):
    if max(h, w) / min(h, w) > 200:
        return
    spec = get_family(family)
    img = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    kw = {} if max_pixels is None else {"size": {"shortest_edge": spec.min_pixels, "longest_edge": max_pixels}}
    out = processors[family](img, return_tensors="np", **kw)
    t, gh, gw = out["image_grid_thw"][0].tolist()
    g = BlockGrid.from_image(img, family, max_pixels=max_pixels)
    assert (t, g.size) == (1, (gh * spec.patch_size, gw * spec.patch_size))
    assert g.shape == (gh // spec.merge_size, gw // spec.merge_size)


# --------------------------------------------------------------------------- bad input
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (8-bit RGB) and whose data is a few bytes."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_bad_files_raise_an_error_naming_the_file(tmp_path):
    missing = tmp_path / "missing.png"
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image\n" * 10)
    truncated = tmp_path / "truncated.png"
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    truncated.write_bytes(_png_bytes(Image.fromarray(noise))[:5000])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))
    cases = [(missing, "no such file"), (empty, "empty"), (junk, "not a readable image"),
             (truncated, "truncated"), (tmp_path, "directory"), (bomb, "exceeds the limit")]
    for path, why in cases:
        with pytest.raises(ImageError, match=why) as exc:
            BlockGrid.from_image(path)
        assert str(path) in str(exc.value)
        with pytest.raises(ValueError):  # ImageError is a ValueError for callers that catch that
            load_image(str(path))


def test_decompression_bomb_limit_is_enforced_before_decoding_and_overridable(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (100, 80), (1, 2, 3)).save(small)
    with pytest.raises(ImageError, match="8000 pixels exceeds the limit of 7999"):
        BlockGrid.from_image(small, max_image_pixels=7999)
    assert (BlockGrid.from_image(small, max_image_pixels=8000).image() == (1, 2, 3)).all()
    # 200 M pixels claimed by a header over a few bytes of data: refused without decoding
    with pytest.raises(ImageError, match="200000000 pixels"):
        load_image(_png_header_only(20_000, 10_000))


def rgb_of(img: Image.Image, tmp_path, ext="png", **options) -> np.ndarray:
    """The image route's RGB pixels for ``img`` after a round trip through a file."""
    path = tmp_path / f"img.{ext}"
    img.save(path)
    out = np.asarray(load_image(path, **options))
    assert out.dtype == np.uint8 and out.shape == (img.size[1], img.size[0], 3)
    return out.astype(np.int64)


def test_image_modes_convert_to_the_right_rgb(tmp_path):
    """Hand-computed RGB per mode: a file as transformers' load_image gives it (alpha band dropped,
    colour key composited by the processor from 5.21, 16-bit clipped), and the explicit alternatives."""
    # palette
    pal = Image.new("P", (4, 2))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    pal.putdata([0, 1, 2, 0, 1, 2, 0, 1])
    got = rgb_of(pal, tmp_path)
    assert got[0, :3].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    # palette with a transparent index: a colour key, composited on white by the processor from 5.21,
    # kept as its colour by 5.19 - 5.20
    pal.save(tmp_path / "pt.png", transparency=1)
    got = np.asarray(load_image(tmp_path / "pt.png")).astype(int)
    assert got[0, :3].tolist() == [[255, 0, 0], [255, 255, 255] if COMPOSITES else [0, 255, 0], [0, 0, 255]]
    got = np.asarray(load_image(tmp_path / "pt.png", alpha="white")).astype(int)
    assert got[0, :3].tolist() == [[255, 0, 0], [255, 255, 255], [0, 0, 255]]
    got = np.asarray(load_image(tmp_path / "pt.png", alpha="drop")).astype(int)
    assert got[0, :3].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    # RGBA: alpha dropped from a file; composited on white with alpha="white" (and for a PIL image
    # from 5.21; 5.19 - 5.20 drop it there too)
    rgba = np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [10, 20, 30, 128], [200, 100, 0, 64]]], np.uint8)
    assert rgb_of(Image.fromarray(rgba, "RGBA"), tmp_path).tolist() == rgba[..., :3].tolist()
    a = rgba[..., 3:] / 255.0
    want = rgba[..., :3] * a + 255 * (1 - a)
    pil_default = np.asarray(load_image(Image.fromarray(rgba, "RGBA"))).astype(int)
    if not COMPOSITES:
        assert pil_default.tolist() == rgba[..., :3].tolist()
    for got in [rgb_of(Image.fromarray(rgba, "RGBA"), tmp_path, alpha="white")] + ([pil_default] if COMPOSITES else []):
        assert got[0, 0].tolist() == [255, 255, 255] and got[0, 1].tolist() == [10, 20, 30]
        assert np.abs(got - want).max() <= 1
    # LA
    la = Image.fromarray(np.array([[[50, 0], [50, 255], [0, 128]]], np.uint8), "LA")
    assert rgb_of(la, tmp_path).tolist() == [[[50] * 3, [50] * 3, [0] * 3]]
    got = rgb_of(la, tmp_path, alpha="white")
    assert got[0].tolist()[:2] == [[255] * 3, [50] * 3]
    assert abs(got[0, 2, 0] - 255 * 127 / 255) <= 1 and len(set(got[0, 2].tolist())) == 1
    # 16-bit grayscale: clipped at 255 as PIL does; high_bit_depth="scale" divides by 257
    v16 = np.array([[0, 128, 129, 257, 25700, 65535]], np.uint16)
    img16 = Image.fromarray(v16)
    assert img16.mode == "I;16"
    got = rgb_of(img16, tmp_path)
    assert Image.open(tmp_path / "img.png").mode == "I;16"
    assert got[0, :, 0].tolist() == [0, 128, 129, 255, 255, 255]
    got = rgb_of(img16, tmp_path, high_bit_depth="scale")
    assert got[0, :, 0].tolist() == [0, 0, 1, 1, 100, 255]
    assert (got == got[..., :1]).all()
    # grayscale
    got = rgb_of(Image.fromarray(np.array([[0, 77, 255]], np.uint8), "L"), tmp_path)
    assert got[0].tolist() == [[0] * 3, [77] * 3, [255] * 3]
    # CMYK (TIFF keeps CMYK): white, cyan, black
    cmyk = Image.new("CMYK", (3, 1))
    cmyk.putdata([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255)])
    got = rgb_of(cmyk, tmp_path, "tiff")
    assert Image.open(tmp_path / "img.tiff").mode == "CMYK"
    assert got[0].tolist() == [[255, 255, 255], [0, 255, 255], [0, 0, 0]]
    # 1-bit
    bw = Image.new("1", (2, 1))
    bw.putdata([0, 1])
    assert rgb_of(bw, tmp_path)[0].tolist() == [[0, 0, 0], [255, 255, 255]]


def test_aspect_ratio_over_the_processor_limit():
    assert BlockGrid.from_image(Image.new("RGB", (200, 1)), "qwen3-vl").shape[0] == 1  # 200: allowed
    for size in ((201, 1), (1, 201), (2010, 10)):
        img = Image.new("RGB", size)
        with pytest.raises(ImageError, match="aspect ratio") as exc:
            BlockGrid.from_image(img)
        assert f"{size[0]}x{size[1]}" in str(exc.value)


@pytest.mark.parametrize("tau", [-0.01, -math.inf, math.nan])
def test_bad_tau(tau):
    """The method checks tau (the selection kernels take validated values)."""
    with pytest.raises(ValueError, match="option tau must"):
        create_method("pixelprune", tau=tau)
    with pytest.raises(ValueError, match="option tau must"):
        create_method("random", reference=PixelPrune(tau=tau))


def test_unknown_order_metric_family():
    data = np.zeros((2, 2, 1, 3), np.uint8)
    with pytest.raises(ValueError, match="option order must be one of pred2d, raster, serpentine; got 'zigzag'"):
        create_method("pixelprune", order="zigzag")
    with pytest.raises(ValueError, match="option metric must be one of max, mae, rmse; got 'psnr'"):
        create_method("pixelprune", metric="psnr", tau=0.1)
    with pytest.raises(ValueError, match="order must be one of .* got 'zigzag'"):  # the kernel's own guard
        core_select(data, np.ones(3), "zigzag", "max", 0)
    with pytest.raises(ValueError, match="'psnr'"):
        block_distance(data[0, 0], data[0, 1], np.ones(3), "psnr")
    with pytest.raises(ValueError, match="'qwen9-vl'.*qwen3-vl"):
        BlockGrid.from_image(Image.new("RGB", (64, 64)), "qwen9-vl")
    with pytest.raises(ValueError, match="'qwen9-vl'"):
        BlockGrid.from_pixel_values(np.zeros((4, 1536), np.float32), np.array([[1, 2, 2]]), "qwen9-vl")


def test_pixel_values_that_disagree_with_the_grid(processors):
    out = processors["qwen3-vl"]([Image.new("RGB", (256, 256), (9, 9, 9)), Image.new("RGB", (320, 256))], return_tensors="np")
    pv, thw = out["pixel_values"], out["image_grid_thw"]
    assert len(BlockGrid.from_pixel_values(pv, thw)) == 2
    with pytest.raises(ValueError, match=r"pixel_values has \d+ rows.*image_grid_thw"):
        BlockGrid.from_pixel_values(pv[:-1], thw)
    with pytest.raises(ValueError, match=r"pixel_values has \d+ rows.*image_grid_thw"):
        BlockGrid.from_pixel_values(pv, thw[:1])
    with pytest.raises(ValueError, match="pixel_values rows have 1535 values"):
        BlockGrid.from_pixel_values(pv[:, :-1], thw)
    with pytest.raises(ValueError, match="pixel_values must be 2-D"):
        BlockGrid.from_pixel_values(pv.reshape(-1), thw)
    # Qwen3-VL rows (16 px patches) read as Qwen2.5-VL (14 px): its mean/std would be silently wrong
    with pytest.raises(ValueError, match="16x16 patches but family qwen2.5-vl uses 14x14"):
        BlockGrid.from_pixel_values(pv, thw, "qwen2.5-vl")
    spec = get_family("qwen3-vl")
    assert len(BlockGrid.from_pixel_values(pv, thw, "qwen2.5-vl", spec.image_mean, spec.image_std)) == 2
    with pytest.raises(ValueError, match="image_grid_thw must be an integer array"):
        BlockGrid.from_pixel_values(pv, thw.astype(np.float32))
    with pytest.raises(ValueError, match="non-positive"):
        BlockGrid.from_pixel_values(pv[:0], np.array([[1, 0, 16]]))
    # a video grid (t = 2) with the matching number of rows
    n = int(thw[0].prod())
    with pytest.raises(ValueError, match="image 0: grid t=2"):
        BlockGrid.from_pixel_values(np.concatenate([pv[:n], pv[:n]]), np.array([[2, thw[0, 1], thw[0, 2]]]))
    # a grid not divisible by the merge size
    with pytest.raises(ValueError, match="image 1: grid 16x19"):
        BlockGrid.from_pixel_values(pv[: n + 16 * 19], np.array([thw[0], [1, 16, 19]]))


# --------------------------------------------------------------------------- same-budget baselines
@pytest.mark.parametrize("grid, k, rows, cols", [
    # k = rows x cols with the grid's aspect: the centre of each of rows x cols equal bins,
    # e.g. 6 rows in 2 bins -> centres 1.5, 4.5 -> rows 1, 4; 9 columns in 3 bins -> 1, 4, 7
    ((6, 9), 6, [1, 4], [1, 4, 7]),
    ((3, 12), 4, [1], [1, 4, 7, 10]),        # wide grid: one row of 4 bins (centres 1.5 ... 10.5)
    ((10, 4), 10, [1, 3, 5, 7, 9], [1, 3]),  # tall grid: 5 x 2 bins of 2 x 2 blocks
    ((4, 4), 4, [1, 3], [1, 3]),
    ((1, 7), 7, [0], list(range(7))),        # every block
])
def test_uniform_keeps_the_bin_centres(grid, k, rows, cols):
    want = sorted(r * grid[1] + c for r in rows for c in cols)
    assert B.uniform_keep(grid, k).tolist() == want


def test_uniform_takes_k_of_the_sub_grid_evenly_in_raster_order():
    # 3 of the 2 x 2 sub-grid [5, 7, 13, 15]: centres of 3 bins over 4 points (0.67, 2, 3.33) -> 0, 2, 3
    assert B.uniform_keep((4, 4), 3).tolist() == [5, 13, 15]
    for grid, k in [((34, 60), 497), ((7, 3), 5), ((1, 1), 1), ((50, 2), 61)]:
        kept = B.uniform_keep(grid, k)
        assert kept.size == k == np.unique(kept).size and kept.max() < grid[0] * grid[1]


def _admissible(gh, gw, h, w) -> bool:
    """Some scale t has |h - gh t| < 1 and |w - gw t| < 1 (the aspect within one block per side)."""
    return max((h - 1) / gh, (w - 1) / gw) < min((h + 1) / gh, (w + 1) / gw)


@pytest.mark.parametrize("grid, k, want", [
    ((10, 20), 50, (5, 10)),    # exactly half the size
    ((34, 60), 497, (17, 29)),  # a 1920x1080 page on the Qwen3-VL grid at PixelPrune's 497: 493 tokens
    ((34, 1), 19, (19, 1)),     # a one-block-wide strip keeps 19 rows (not 1 x 1)
    ((1, 40), 7, (1, 7)),
    ((7, 7), 48, (6, 7)),       # 7 x 7 = 49 > 48; 6 x 7 and 7 x 6 tie: the smaller height
    ((5, 5), 25, (5, 5)),
])
def test_resize_grid_hand_computed(grid, k, want):
    assert B.resize_grid(grid, k) == want


def test_resize_grid_is_the_largest_admissible_grid():
    rng = np.random.default_rng(11)
    for _ in range(400):
        gh, gw = (int(x) for x in rng.integers(1, 40, 2))
        k = int(rng.integers(1, gh * gw + 1))
        h, w = B.resize_grid((gh, gw), k)
        best = max(a * b for a in range(1, gh + 1) for b in range(1, gw + 1) if a * b <= k and _admissible(gh, gw, a, b))
        assert h * w == best and _admissible(gh, gw, h, w), (gh, gw, k, (h, w))


def test_conncomp_keeps_one_block_per_component_then_random():
    # 2 x 4 grid: components {0, 1, 4, 5} (a 2 x 2 square), {2}, {3, 7}, {6}
    eq_right = np.array([[1, 0, 0], [1, 0, 0]], bool)
    eq_down = np.array([[1, 1, 0, 1]], bool)
    labels = B.connected_components(eq_right, eq_down)
    assert labels.tolist() == [0, 0, 2, 3, 0, 0, 6, 3]
    for seed in range(5):
        kept = B.conncomp_keep(labels, 4, np.random.default_rng(seed))
        assert sorted(labels[kept].tolist()) == [0, 2, 3, 6]  # one per component
        kept = B.conncomp_keep(labels, 6, np.random.default_rng(seed))
        assert set(labels[kept].tolist()) == {0, 2, 3, 6} and kept.size == 6
        kept = B.conncomp_keep(labels, 2, np.random.default_rng(seed))
        assert kept.size == 2 and len(set(labels[kept].tolist())) == 2  # two different components


def test_same_budget_methods_keep_pixelprunes_count_or_retain():
    rng = np.random.default_rng(2)
    img = np.full((8 * 32, 10 * 32, 3), 200, np.uint8)
    img[64:160, 64:224] = rng.integers(0, 256, (96, 160, 3))
    grid = BlockGrid.from_image(img, "qwen3-vl", min_pixels=1)
    k = PixelPrune()(grid).n_kept
    for name in ("random", "uniform", "conncomp"):
        assert create_method(name)(grid).n_kept == k
        # retain: round half up of retain * blocks (0.25 * 80 = 20; 0.0125 * 80 = 1; 0.99 * 80 = 79.2 -> 79)
        for retain, want in [(0.25, 20), (0.0125, 1), (0.99, 79), (1.0, 80)]:
            assert create_method(name, retain=retain)(grid).n_kept == want
    r = create_method("resize")(grid)
    assert r.n_kept <= k and r.source_grid == (8, 10) and r.retain == r.n_kept / 80
    assert create_method("random", seed=3)(grid).kept.tolist() == create_method("random", seed=3)(grid).kept.tolist()
    assert create_method("random", seed=3)(grid).kept.tolist() != create_method("random", seed=4)(grid).kept.tolist()

"""The image route sees exactly the pixels the model's processor gets (``vlprune.images``).

For every PIL mode PIL can write or hold, every EXIF orientation and the array layouts the processor
takes: ``vlprune.select`` on the input keeps the same blocks as a selection on the real transformers
image processor's ``pixel_values`` for the same input handed over the usual way -- a file through
``transformers.image_utils.load_image`` (also what the processor does with a path), a PIL image or an
array to the processor directly. Every difference is an explicit option, and each case is built so
that the alternative conversion would give other pixels (the test would notice a wrong default).

Transparency and 1- / 4-channel arrays differ by release: transformers 5.21 and later composite an
alpha band or colour key on white and take 1- / 4-channel arrays, 5.19 - 5.20 convert with PIL's
``convert("RGB")`` and refuse those arrays. The comparisons take the installed processor as the oracle;
``test_default_transparency_*`` pin each release's behaviour on hand-made images (the half that does
not apply is skipped, saying why).
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pytest
import transformers
from packaging.version import Version
from PIL import Image

import vlprune
from vlprune.families import get_family
from vlprune.grid import BlockGrid
from vlprune.images import ImageError, ImageOptions, check_image, load_image, name_of
from vlprune.options import OptionError

from model_fixtures import image_processor

FAMILY = "qwen3-vl"
BLOCK = get_family(FAMILY).block
# the bounds tests/model_fixtures.py configures the processor with
SIZE = dict(min_pixels=BLOCK**2, max_pixels=BLOCK**2 * 400)
H, W = 256, 384
#: (major, minor) of the installed transformers: 5.21 changed how transparency and arrays are converted
TF_RELEASE = Version(transformers.__version__).release[:2]


@pytest.fixture(scope="module")
def processor():
    return image_processor(FAMILY)


@pytest.fixture(scope="module")
def composites(processor):
    """Whether the installed processor composites transparency on white, read off its output: a fully
    transparent dark image comes back white (composited) or dark (alpha ignored)."""
    px = processor_view(processor, Image.new("RGBA", (2 * BLOCK, 2 * BLOCK), (10, 20, 30, 0)))[1]
    assert (px == 255).all() or (px == (10, 20, 30)).all()
    return bool((px == 255).all())


def base_rgb() -> np.ndarray:
    """Flat colour bands (prunable), a noise patch and a ramp: selections depend on every level."""
    rng = np.random.default_rng(0)
    img = np.full((H, W, 3), 240, np.uint8)
    for k in range(8):
        img[32 * k:32 * k + 32, :96] = (30 * k, 255 - 30 * k, 17 * k)
    img[40:120, 120:300] = rng.integers(0, 256, (80, 180, 3))
    img[150:250, 130:370] = np.linspace(0, 255, 240).astype(np.uint8)[None, :, None]
    return img


def alpha_band() -> np.ndarray:
    """Alpha in four vertical steps: 30, 94, 158, 222 (never 0 or 255 everywhere)."""
    return np.tile((np.arange(W) * 4 // W * 64 + 30).astype(np.uint8), (H, 1))


def make(mode: str) -> Image.Image:
    rgb = base_rgb()
    gray = rgb[..., 0]
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, alpha_band()]), "RGBA")
    if mode == "LA":
        return Image.fromarray(np.dstack([gray, alpha_band()]), "LA")
    if mode == "PA":
        return Image.fromarray(np.dstack([rgb, alpha_band()]), "RGBA").convert("PA")
    if mode == "P+transparency":
        p = Image.fromarray(rgb).quantize(16)
        p.info["transparency"] = int(np.bincount(np.asarray(p).ravel()).argmax())  # the background colour
        return p
    if mode == "RGB+transparency":
        img = Image.fromarray(rgb)
        img.info["transparency"] = (240, 240, 240)
        return img
    if mode in ("I;16", "I;16B", "I"):  # 16-bit levels: 3 * 8-bit value, mostly above 255
        wide = gray.astype(np.uint32) * 3
        if mode == "I":
            return Image.fromarray(wide.astype(np.int32))
        return Image.frombytes(mode, (W, H), wide.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    if mode == "F":  # values in [0, 1]
        return Image.fromarray(gray.astype(np.float32) / 255)
    if mode == "1":
        return Image.fromarray(gray > 128)
    return Image.fromarray(rgb).convert(mode)


MODES = ["1", "L", "LA", "P", "PA", "P+transparency", "RGB", "RGB+transparency", "RGBA", "CMYK", "YCbCr",
         "LAB", "HSV", "I", "I;16", "I;16B", "F", "RGBX", "RGBa"]
#: modes whose default conversion differs between a file (drop alpha) and a PIL image (white)
ALPHA = {"LA", "PA", "P+transparency", "RGB+transparency", "RGBA"}
#: modes whose values go above 255 (clip) or are floats in [0, 1] (scale)
HIGH_BIT = {"I", "I;16", "I;16B", "F"}


def saved(img: Image.Image, tmp_path) -> list:
    """The files PIL can write ``img`` to (PNG, TIFF), each re-opened in the mode it has there."""
    out = []
    for fmt in ("png", "tiff"):
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kw = {"transparency": img.info["transparency"]} if "transparency" in img.info and fmt == "png" else {}
                img.save(buf, fmt, **kw)
        except (OSError, ValueError, KeyError):
            continue
        path = tmp_path / f"img.{fmt}"
        path.write_bytes(buf.getvalue())
        out.append(path)
    return out


def processor_view(processor, image):
    """(kept, pixels) of PixelPrune on the processor's pixel_values for ``image``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = processor(image, return_tensors="np")
    (grid,) = BlockGrid.from_pixel_values(out["pixel_values"], out["image_grid_thw"], FAMILY)
    return vlprune.create_method("pixelprune")(grid).kept.tolist(), grid.image()


def vlprune_view(src, **options):
    sel = vlprune.select(src, family=FAMILY, **SIZE, **options)
    return sel.kept.tolist(), BlockGrid.from_image(src, FAMILY, **SIZE, **options).image()


def assert_same(got, want, what):
    (k_got, px_got), (k_want, px_want) = got, want
    assert px_got.shape == px_want.shape, f"{what}: grid size differs"
    assert np.array_equal(px_got, px_want), f"{what}: pixels differ"
    assert k_got == k_want, f"{what}: kept blocks differ"


# ------------------------------------------------------------------------------ PIL modes
@pytest.mark.parametrize("mode", MODES)
def test_file_matches_transformers_load_image(processor, composites, tmp_path, mode):
    from transformers.image_utils import load_image as hf_load_image

    img = make(mode)
    files = saved(img, tmp_path)
    if not files:
        pytest.skip(f"PIL writes mode {mode} to neither PNG nor TIFF")
    for path in files:
        want = processor_view(processor, hf_load_image(str(path)))
        assert_same(vlprune_view(path), want, f"{mode} as {path.suffix}")
        assert_same(vlprune_view(path.read_bytes()), want, f"{mode} as {path.suffix} bytes")
        assert_same(processor_view(processor, str(path)), want, "the processor given the path")  # same route
        opened = Image.open(path)
        # the case tells the conversions apart: an alpha band is dropped on every release (compositing
        # it would give other pixels), a colour key is composited or kept as the processor does
        if opened.mode in ("LA", "PA", "RGBA"):
            assert not np.array_equal(vlprune_view(path, alpha="white")[1], want[1])
        if "transparency" in opened.info:
            other = "drop" if composites else "white"
            assert not np.array_equal(vlprune_view(path, alpha=other)[1], want[1])
        if opened.mode in HIGH_BIT:
            assert not np.array_equal(vlprune_view(path, high_bit_depth="scale")[1], want[1])


@pytest.mark.parametrize("mode", MODES + ["La"])
def test_pil_image_matches_the_processor(processor, composites, mode):
    img = make(mode) if mode != "La" else make("LA").convert("La")
    try:
        want = processor_view(processor, img)
    except ValueError as exc:  # PIL cannot convert the mode (La): both refuse, vlprune naming it
        with pytest.raises(ImageError, match=f"cannot convert image mode '{mode}'"):
            vlprune.select(img, family=FAMILY, **SIZE)
        assert "conversion" in str(exc)
        return
    assert_same(vlprune_view(img), want, f"PIL {mode}")
    if mode in ALPHA:  # composited (5.21+) or ignored (5.19 - 5.20), as the processor does
        assert not np.array_equal(vlprune_view(img, alpha="drop" if composites else "white")[1], want[1])


def test_reported_cases(tmp_path):
    """16-bit gray PNG: the processor sees a blank page (values clipped at 255), 1 block kept; an RGBA
    file loaded by transformers drops the alpha band."""
    wide = np.full((H, W), 3000, np.uint16)
    wide[64:192, 96:288] = np.random.default_rng(1).integers(256, 65536, (128, 192), dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    assert vlprune.select(tmp_path / "gray16.png").n_kept == 1
    scaled = vlprune.select(tmp_path / "gray16.png", high_bit_depth="scale")
    assert scaled.kept.tolist() == vlprune.select(np.rint(wide / 257).astype(np.uint8)).kept.tolist()
    assert scaled.n_kept >= 1 + 4 * 6  # the anchor and every noise block (rows 2-5, columns 3-8)
    rgba = np.dstack([base_rgb(), alpha_band()])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "rgba.png")), rgba[..., :3])
    assert np.array_equal(np.asarray(load_image(Image.fromarray(rgba, "RGBA"), alpha="drop")), rgba[..., :3])


# ------------------------------------------------------------------------------ EXIF orientation
def exif_file(tmp_path, orientation: int, fmt: str):
    img = Image.fromarray(base_rgb()[:, :320])  # 320 x 256 stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{fmt}"
    img.save(path, exif=exif, **({"quality": 95} if fmt == "jpg" else {}))
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_exif_orientation_is_applied_like_transformers(processor, tmp_path, orientation, fmt):
    from transformers.image_utils import load_image as hf_load_image

    path = exif_file(tmp_path, orientation, fmt)
    want = processor_view(processor, hf_load_image(str(path)))
    got = vlprune_view(path)
    assert_same(got, want, f"orientation {orientation}")
    stored = (320 // BLOCK, 256 // BLOCK)  # (rows, cols) of the upright image when rotated by 90°
    grid = BlockGrid.from_image(path, FAMILY, **SIZE).shape
    assert grid == (stored if orientation >= 5 else stored[::-1])
    # exif=False is the stored image, which is what the processor gets from an opened PIL image
    assert_same(vlprune_view(path, exif=False), processor_view(processor, Image.open(path)), "stored")
    assert_same(vlprune_view(Image.open(path)), processor_view(processor, Image.open(path)), "PIL object")
    if orientation != 1:
        assert not np.array_equal(vlprune_view(path, exif=False)[1], got[1])


# ------------------------------------------------------------------------------ arrays
@pytest.mark.parametrize("layout", ["HW1", "HW3", "HW4", "1HW", "3HW", "4HW"])
def test_arrays_match_the_processor(processor, layout):
    rgba = np.dstack([base_rgb(), alpha_band()])
    c = int(layout.strip("HW"))
    arr = rgba[..., :c] if c != 1 else rgba[..., :1]
    if layout[0] != "H":
        arr = np.ascontiguousarray(np.moveaxis(arr, -1, 0))
    try:
        want = processor_view(processor, arr)
    except ValueError:  # 5.19 - 5.20 take only 3 channels: vlprune refuses it too, naming it and why
        name = re.escape(f"<array uint8 {arr.shape}>")
        with pytest.raises(ImageError, match=rf"^{name}: .* refuses {c}-channel arrays .* transformers >= 5\.21"):
            vlprune.select(arr, family=FAMILY, **SIZE)
        return
    assert_same(vlprune_view(arr), want, layout)


def test_arrays_the_processor_does_not_take_are_refused_or_explicit():
    gray16 = (base_rgb().astype(np.uint16) * 3)
    with pytest.raises(ImageError, match="uint8.*high_bit_depth"):
        vlprune.select(gray16)
    scaled = np.asarray(load_image(gray16, high_bit_depth="scale")).astype(int)
    assert np.abs(scaled - np.rint(gray16 / 257)).max() == 0
    assert np.array_equal(np.asarray(load_image(gray16, high_bit_depth="clip")), np.minimum(gray16, 255))
    with pytest.raises(ImageError, match="uint8"):
        vlprune.select(base_rgb().astype(np.float32) / 255)
    with pytest.raises(ImageError, match="expected an"):
        vlprune.select(np.zeros((8, 8, 2), np.uint8))


# ------------------------------------------------------------------------------ what differs by release
DARK, RED = (10, 20, 30), (200, 100, 50)


def clear_and_opaque() -> Image.Image:
    """4 x 4 RGBA: the left two columns DARK and fully transparent, the right two RED and opaque."""
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :2] = DARK + (0,)
    rgba[:, 2:] = RED + (255,)
    return Image.fromarray(rgba, "RGBA")


def keyed_png(tmp_path):
    """4 x 4 RGB PNG, left half DARK, right half RED, with a tRNS colour key on DARK."""
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, :2], rgb[:, 2:] = DARK, RED
    Image.fromarray(rgb).save(tmp_path / "keyed.png", transparency=DARK)
    return tmp_path / "keyed.png"


def alpha_steps() -> np.ndarray:
    """uint8 (2, 4, 4): DARK everywhere, alpha 0, 51, 128, 255 by column (2 rows: only the last axis
    can be channels)."""
    arr = np.zeros((2, 4, 4), np.uint8)
    arr[..., :3] = DARK
    arr[..., 3] = [0, 51, 128, 255]
    return arr


#: alpha_steps() composited on white by hand, round(a/255 * c + (1 - a/255) * 255) per column
STEPS_ON_WHITE = np.array([[(255, 255, 255), (206, 208, 210), (132, 137, 142), DARK]] * 2, np.uint8)
GRAY = np.full((2, 4, 1), 77, np.uint8)  # one channel, channels last


def halves(left, right) -> np.ndarray:
    out = np.zeros((4, 4, 3), np.uint8)
    out[:, :2], out[:, 2:] = left, right
    return out


def pixels(src, **options) -> np.ndarray:
    return np.asarray(load_image(src, **options))


def test_default_transparency_from_5_21(processor, composites, tmp_path):
    """transformers >= 5.21: alpha bands and colour keys composited on white, 1- / 4-channel arrays
    taken (4 composited, channels first when both ends could be channels)."""
    if TF_RELEASE < (5, 21):
        pytest.skip(f"transformers {transformers.__version__} is installed; this pins 5.21 and later")
    assert composites  # the processor itself
    assert np.array_equal(pixels(clear_and_opaque()), halves(255, RED))
    assert np.array_equal(pixels(keyed_png(tmp_path)), halves(255, RED))  # load_image keeps the key
    assert np.array_equal(pixels(Image.open(keyed_png(tmp_path))), halves(255, RED))
    assert np.array_equal(pixels(alpha_steps()), STEPS_ON_WHITE)
    assert np.array_equal(pixels(GRAY), np.full((2, 4, 3), 77))
    ambiguous = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)  # channels first: 5 x 3, 4 channels
    assert load_image(ambiguous).size == (3, 5)
    assert processor_view(processor, ambiguous)[1].shape == (2 * BLOCK, BLOCK, 3)  # the processor: 2 x 1 blocks


def test_default_transparency_before_5_21(processor, composites, tmp_path):
    """transformers 5.19 - 5.20: PIL's convert("RGB") (alpha dropped, a colour key kept as its colour);
    the channel axis of an array found among 1 and 3, and only 3 channels taken."""
    if TF_RELEASE >= (5, 21):
        pytest.skip(f"transformers {transformers.__version__} is installed; this pins 5.19 - 5.20")
    assert not composites  # the processor itself
    assert np.array_equal(pixels(clear_and_opaque()), halves(DARK, RED))
    assert np.array_equal(pixels(keyed_png(tmp_path)), halves(DARK, RED))
    assert np.array_equal(pixels(Image.open(keyed_png(tmp_path))), halves(DARK, RED))
    for arr, c, why in [(alpha_steps(), 4, "Unable to infer channel dimension format"),
                        (GRAY, 1, "mean must have 1 elements")]:
        with pytest.raises(ValueError, match=why):  # the processor itself
            processor(arr, return_tensors="np")
        with pytest.raises(ImageError, match=rf"refuses {c}-channel arrays \(\"{why}\"\).*"
                                             r"transformers >= 5\.21.*alpha='white'"):
            load_image(arr)
    ambiguous = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)  # channels last: 4 x 5 RGB
    assert np.array_equal(pixels(ambiguous), ambiguous)
    # the processor too: a 4 x 5 image, resized up to 1 x 2 blocks (a 5 x 3 one would be 2 x 1)
    assert processor_view(processor, ambiguous)[1].shape == (BLOCK, 2 * BLOCK, 3)


def test_explicit_transparency_options_mean_the_same_on_every_release(tmp_path):
    for src in (clear_and_opaque(), keyed_png(tmp_path), Image.open(keyed_png(tmp_path))):
        assert np.array_equal(pixels(src, alpha="white"), halves(255, RED)), name_of(src)
        assert np.array_equal(pixels(src, alpha="drop"), halves(DARK, RED)), name_of(src)
    assert np.array_equal(pixels(alpha_steps(), alpha="white"), STEPS_ON_WHITE)
    assert np.array_equal(pixels(alpha_steps(), alpha="drop"), np.full((2, 4, 3), DARK))
    assert np.array_equal(pixels(np.moveaxis(alpha_steps(), -1, 0), alpha="white"),
                          STEPS_ON_WHITE)
    assert np.array_equal(pixels(GRAY, alpha="drop"), np.full((2, 4, 3), 77))
    assert load_image(np.zeros((4, 5, 3), np.uint8), alpha="drop").size == (3, 5)  # channels first


# ------------------------------------------------------------------------------ options and the shared check
def test_image_options_are_validated_with_the_shared_rules():
    for bad, name in [(dict(min_pixels=0), "min_pixels"), (dict(max_pixels=-5), "max_pixels"),
                      (dict(max_image_pixels=True), "max_image_pixels"), (dict(exif=1), "exif"),
                      (dict(alpha="black"), "alpha"), (dict(high_bit_depth="round"), "high_bit_depth"),
                      (dict(min_pixels=10, max_pixels=5), "min_pixels")]:
        with pytest.raises(OptionError, match=name) as exc:
            ImageOptions(**bad)
        assert exc.value.option == name
    with pytest.raises(OptionError, match="max_pixels=1000") as exc:
        ImageOptions(max_pixels=1000).bounds(FAMILY)  # below the family's min_pixels 65536
    assert exc.value.flag == "--max-pixels"


def test_check_image_sizes_like_the_processor_and_refuses_its_limits(tmp_path):
    img, size = check_image(Image.new("RGB", (1000, 500)), FAMILY, max_pixels=BLOCK**2 * 100)
    assert img.size == (1000, 500) and size == (224, 448)  # 7 x 14 blocks = 98 <= 100
    Image.new("RGB", (2010, 10)).save(tmp_path / "thin.png")
    with pytest.raises(ImageError, match=r"thin.png: aspect ratio 201.0 .* limit of 200"):
        check_image(tmp_path / "thin.png", FAMILY)
    with pytest.raises(ImageError, match="20100 pixels exceeds the limit of 20000"):
        check_image(tmp_path / "thin.png", FAMILY, max_image_pixels=20000)


def test_the_default_auto_image_processor_route(tmp_path):
    """What ``AutoImageProcessor.from_pretrained`` gives for a Qwen3-VL checkpoint folder (on a machine
    without torchvision: the PIL backend, which vlprune follows) sees the same pixels for files handed
    over by path."""
    import json

    from transformers import AutoImageProcessor

    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    (tmp_path / "ckpt" / "preprocessor_config.json").write_text(json.dumps({
        "patch_size": 16, "merge_size": 2, "temporal_patch_size": 2, "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3, "size": {"shortest_edge": SIZE["min_pixels"], "longest_edge": SIZE["max_pixels"]}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = AutoImageProcessor.from_pretrained(str(tmp_path / "ckpt"), local_files_only=True)
    if type(auto).__name__ != "Qwen2VLImageProcessorPil":
        pytest.skip(f"transformers picked {type(auto).__name__} (torchvision backend: torch's antialiased resize; "
                    "vlprune follows the PIL backend, docs/design.md)")
    Image.fromarray(np.dstack([base_rgb(), alpha_band()]), "RGBA").save(tmp_path / "rgba.png")
    make("I;16").save(tmp_path / "gray16.png")
    files = [tmp_path / "rgba.png", tmp_path / "gray16.png", exif_file(tmp_path, 6, "jpg")]
    for path in files:
        assert_same(vlprune_view(path), processor_view(auto, str(path)), path.name)


def test_select_takes_image_options_apart_from_method_options():
    img = base_rgb()  # 256 x 384 = 8 x 12 blocks of 32 px
    size = dict(min_pixels=BLOCK**2, max_pixels=BLOCK**2 * 24)
    sel = vlprune.select(img, "random", **size, seed=3)
    assert sel.grid == (4, 6)  # smart_resize to 128 x 192 px under 24 blocks
    assert sel.kept.tolist() == vlprune.create_method("random", seed=3)(
        BlockGrid.from_image(img, FAMILY, **size)).kept.tolist()
    with pytest.raises(TypeError, match="method 'pixelprune' has no option"):
        vlprune.select(img, max_pixel=5)  # a misspelt image option is not silently a method option
    with pytest.raises(OptionError, match="max_pixels"):
        vlprune.select(img, max_pixels=0)
    with pytest.raises(TypeError, match="need a method name"):
        vlprune.select(img, vlprune.create_method("random"), seed=3)

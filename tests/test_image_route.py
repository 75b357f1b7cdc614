"""The image route sees exactly the pixels the model's processor gets (``vlprune.images``).

For every PIL mode PIL can write or hold, every EXIF orientation and the array layouts the processor
takes: ``vlprune.select`` on the input keeps the same blocks as a selection on the real transformers
image processor's ``pixel_values`` for the same input handed over the usual way -- a file through
``transformers.image_utils.load_image`` (also what the processor does with a path), a PIL image or an
array to the processor directly. Every difference is an explicit option, and each case is built so
that the alternative conversion would give other pixels (the test would notice a wrong default).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

import vlprune
from vlprune.families import get_family
from vlprune.grid import BlockGrid
from vlprune.images import ImageError, ImageOptions, check_image, load_image
from vlprune.methods.options import OptionError

from model_fixtures import image_processor

FAMILY = "qwen3-vl"
BLOCK = get_family(FAMILY).block
# the bounds tests/model_fixtures.py configures the processor with
SIZE = dict(min_pixels=BLOCK**2, max_pixels=BLOCK**2 * 400)
H, W = 256, 384


@pytest.fixture(scope="module")
def processor():
    return image_processor(FAMILY)


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
def test_file_matches_transformers_load_image(processor, tmp_path, mode):
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
        # the case tells the conversions apart: an alpha band is dropped (compositing it would give
        # other pixels), a colour key is composited (ignoring it would)
        if opened.mode in ("LA", "PA", "RGBA"):
            assert not np.array_equal(vlprune_view(path, alpha="white")[1], want[1])
        if "transparency" in opened.info:
            assert not np.array_equal(vlprune_view(path, alpha="drop")[1], want[1])
        if opened.mode in HIGH_BIT:
            assert not np.array_equal(vlprune_view(path, high_bit_depth="scale")[1], want[1])


@pytest.mark.parametrize("mode", MODES + ["La"])
def test_pil_image_matches_the_processor(processor, mode):
    img = make(mode) if mode != "La" else make("LA").convert("La")
    try:
        want = processor_view(processor, img)
    except ValueError as exc:  # PIL cannot convert the mode (La): both refuse, vlprune naming it
        with pytest.raises(ImageError, match=f"cannot convert image mode '{mode}'"):
            vlprune.select(img, family=FAMILY, **SIZE)
        assert "conversion" in str(exc)
        return
    assert_same(vlprune_view(img), want, f"PIL {mode}")
    if mode in ALPHA:
        assert not np.array_equal(vlprune_view(img, alpha="drop")[1], want[1])


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
    assert_same(vlprune_view(arr), processor_view(processor, arr), layout)


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

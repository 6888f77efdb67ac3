"""ssgen.images, the one opener of user images: every pixel format PIL opens becomes the 8-bit picture a viewer
shows (or a mask's gray level), EXIF orientation is applied, transparency is composited on white with a note, and
files over the size limit, damaged or not images at all are one-line errors, the size checked before any decode."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import png_header, with_orientation
from PIL import Image, ImageFile

from ssgen.edit_input import fit
from ssgen.errors import SSGenError
from ssgen.images import EDIT_LIMIT, METRIC_LIMIT, check_size, gray, read, rgb

V16 = np.array([[0, 1, 128, 129], [257, 30000, 65534, 65535]], np.uint16)
V16_8BIT = np.array([[0, 0, 0, 1], [1, 117, 255, 255]], np.uint8)  # round(v / 257), worked by hand


def save(im, path, **kw):
    im.save(path, **kw)
    return path


def pixels(converted) -> np.ndarray:
    return np.asarray(converted.image)


def gray3(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(a, np.uint8)[..., None], 3, -1)


@pytest.fixture
def decodes(monkeypatch):
    """The files PIL decodes (ImageFile.load with tiles left to read; a second load() of a loaded image is free)."""
    seen = []
    real = ImageFile.ImageFile.load

    def spy(self):
        if self.tile:
            seen.append(getattr(self, "filename", None))
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return seen


# ------------------------------------------------------------------------------------------------
# pixel formats -> RGB
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,fmt", [("I;16", "PNG"), ("I;16", "TIFF"), ("I;16B", "TIFF")])
def test_16_bit_gray_is_divided_by_257(tmp_path, mode, fmt):
    im = Image.fromarray(V16)  # I;16
    if mode != "I;16":
        im = Image.frombytes(mode, (4, 2), V16.astype(">u2").tobytes())
    p = save(im, tmp_path / f"g.{fmt.lower()}", format=fmt)
    assert Image.open(p).mode == mode
    got = rgb(p)
    assert np.array_equal(pixels(got), gray3(V16_8BIT)) and got.notes == []


def test_32_bit_integer_within_16_bits_and_beyond(tmp_path):
    p = save(Image.fromarray(V16.astype(np.int32)), tmp_path / "i.tiff")
    assert Image.open(p).mode == "I"
    assert np.array_equal(pixels(rgb(p)), gray3(V16_8BIT))  # 16-bit data in a 32-bit image
    wide = np.array([[-1000, 0], [99000, 200000]], np.int32)
    p = save(Image.fromarray(wide), tmp_path / "wide.tiff")
    got = rgb(p)
    want = np.rint((wide.astype(np.float64) + 1000) * 255 / 201000).astype(np.uint8)  # [[0, 1], [127, 255]]
    assert np.array_equal(pixels(got), gray3(want))
    assert got.notes == [f"image {p} is a 32-bit image with values -1000..200000: stretched to 0..255"]


def test_float_images(tmp_path):
    unit = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    got = rgb(save(Image.fromarray(unit), tmp_path / "unit.tiff"))
    assert np.array_equal(pixels(got), gray3([[0, 64], [128, 255]])) and got.notes == []
    byte = np.array([[0.0, 100.4], [254.6, 300.0]], np.float32)  # 0..255 data, one value over
    got = rgb(save(Image.fromarray(byte), tmp_path / "byte.tiff"))
    assert np.array_equal(pixels(got), gray3([[0, 100], [255, 255]]))
    assert len(got.notes) == 1 and "float image with values outside 0..255" in got.notes[0]


def test_eight_bit_modes(tmp_path):
    one = Image.fromarray(np.array([[True, False], [False, True]]))
    assert np.array_equal(pixels(rgb(save(one, tmp_path / "1.png"))), gray3([[255, 0], [0, 255]]))
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 0])
    pal.putpixel((1, 0), 1)
    assert pixels(rgb(save(pal, tmp_path / "p.png"))).tolist() == [[[10, 20, 30], [200, 100, 0]]]
    cmyk = Image.new("CMYK", (2, 1), (255, 0, 0, 0))
    cmyk.putpixel((1, 0), (0, 0, 0, 255))
    assert pixels(rgb(save(cmyk, tmp_path / "c.tiff"))).tolist() == [[[0, 255, 255], [0, 0, 0]]]  # cyan, black
    ycc = Image.new("YCbCr", (1, 1), (128, 128, 128))
    assert pixels(rgb(save(ycc, tmp_path / "y.tiff"))).tolist() == [[[128, 128, 128]]]
    lab = Image.new("LAB", (1, 1), (255, 128, 128))  # L* 100, a* = b* = 0: white
    assert np.abs(pixels(rgb(save(lab, tmp_path / "lab.tiff"))).astype(int) - 255).max() <= 2


# ------------------------------------------------------------------------------------------------
# transparency
# ------------------------------------------------------------------------------------------------


def over_white(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    return (c.astype(np.float64) * a[..., None] + 255.0 * (255 - a[..., None])) / 255


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparent_pixels_are_composited_on_white_with_a_note(tmp_path, mode):
    c = np.array([[[200, 40, 10], [0, 0, 0]], [[90, 90, 90], [10, 250, 60]]], np.uint8)
    a = np.array([[255, 0], [128, 30]], np.uint8)
    im = Image.fromarray(np.dstack([c, a]), "RGBA")
    if mode == "LA":
        c = np.repeat(np.asarray(im.convert("L"))[..., None], 3, -1)
        im = im.convert("LA")
    elif mode == "PA":
        c = c[:, :, :1].repeat(3, -1)  # a gray palette: index = gray level
        im = Image.merge("PA", (Image.fromarray(c[..., 0]), Image.fromarray(a)))
        im.putpalette([v for g in range(256) for v in (g, g, g)])
    p = save(im, tmp_path / ("x.tiff" if mode == "PA" else "x.png"))
    got = rgb(p)
    assert np.abs(pixels(got).astype(int) - over_white(c, a)).max() <= 1
    assert got.notes == [f"image {p} has transparent pixels: composited on a white background"]


def test_palette_transparency_and_opaque_alpha(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 255, 0, 0])
    pal.putpixel((1, 0), 1)
    got = rgb(save(pal, tmp_path / "p.png", transparency=0))  # index 0 (black) transparent
    assert pixels(got).tolist() == [[[255, 255, 255], [255, 0, 0]]] and len(got.notes) == 1
    opaque = Image.new("RGBA", (2, 2), (10, 20, 30, 255))
    got = rgb(save(opaque, tmp_path / "o.png"))
    assert pixels(got).tolist() == [[[10, 20, 30]] * 2] * 2 and got.notes == []  # nothing to say


def test_an_image_in_memory_gets_the_same_conversions():
    got = rgb(Image.fromarray(V16))
    assert np.array_equal(pixels(got), gray3(V16_8BIT))
    got = rgb(Image.new("RGBA", (1, 1), (0, 0, 0, 0)))
    assert pixels(got).tolist() == [[[255, 255, 255]]]
    assert got.notes == ["image has transparent pixels: composited on a white background"]


# ------------------------------------------------------------------------------------------------
# EXIF orientation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation,upright", [
    (1, lambda a: a), (2, lambda a: a[:, ::-1]), (3, lambda a: np.rot90(a, 2)),
    (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))])
def test_exif_orientation_is_applied(tmp_path, orientation, upright):
    """A viewer turns the stored pixels as the tag says (6: 90 degrees clockwise)."""
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10  # 3 wide, 2 high, every pixel distinct
    im = Image.fromarray(a)
    for fmt in ("png", "jpg"):
        p = save(im, tmp_path / f"o{orientation}.{fmt}", exif=with_orientation(im, orientation),
                 **({"quality": 100, "subsampling": 0} if fmt == "jpg" else {}))
        got = rgb(p)
        want = upright(np.asarray(Image.open(p).convert("RGB")))
        assert np.array_equal(pixels(got), want), fmt
        assert got.turned == (orientation >= 5)
        assert np.array_equal(pixels(rgb(p, upright=False)), np.asarray(Image.open(p).convert("RGB")))
    mask = Image.fromarray(a[..., 0])
    p = save(mask, tmp_path / f"m{orientation}.png", exif=with_orientation(mask, orientation))
    assert np.array_equal(pixels(gray(p)), upright(a[..., 0]))


# ------------------------------------------------------------------------------------------------
# masks
# ------------------------------------------------------------------------------------------------


def test_mask_modes(tmp_path):
    assert np.array_equal(pixels(gray(save(Image.fromarray(V16), tmp_path / "m16.png"))), V16_8BIT)
    one = Image.fromarray(np.array([[True, False]]))
    assert pixels(gray(save(one, tmp_path / "m1.png"))).tolist() == [[255, 0]]
    opaque = Image.new("RGBA", (2, 1), (255, 255, 255, 255))
    assert pixels(gray(save(opaque, tmp_path / "ok.png"))).tolist() == [[255, 255]]
    holes = Image.new("LA", (2, 1), (255, 255))
    holes.putpixel((0, 0), (0, 0))
    p = save(holes, tmp_path / "holes.png")
    with pytest.raises(SSGenError, match=r"holes.png has transparent pixels; a mask is read by its gray level"):
        gray(p)


# ------------------------------------------------------------------------------------------------
# sizes, damaged files, one decode
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("w,h", [(12000, 12000), (60000, 1), (20000, 20000)])
def test_too_large_is_refused_from_the_header(tmp_path, decodes, w, h):
    """20000x20000 is past PIL's own decompression-bomb limit (Image.open refuses it); the others are not, and
    would be decoded without ssgen's limit. The files hold no pixel data: a decode would fail otherwise."""
    p = png_header(tmp_path / "big.png", w, h)
    with pytest.raises(SSGenError) as e:
        rgb(p)
    msg = str(e.value)
    assert msg.startswith(f"image {p} is too large") and "at most 16384 px a side and 64 megapixels" in msg
    assert f"{w}x{h}" in msg or f"{w * h} pixels" in msg
    with pytest.raises(SSGenError, match="too large"):
        gray(p)
    assert decodes == []


def test_limits_bounds():
    check_size("x.png", (16384, 3906), EDIT_LIMIT)  # 63.99 megapixels
    check_size("x.png", (4096, 4096), METRIC_LIMIT)
    for size, limit in [((16385, 1), EDIT_LIMIT), ((8001, 8000), EDIT_LIMIT), ((4097, 1), METRIC_LIMIT)]:
        with pytest.raises(SSGenError, match=f"is too large: {size[0]}x{size[1]}"):
            check_size("x.png", size, limit)


def test_damaged_missing_and_not_images(tmp_path):
    full = save(Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 64, 3), np.uint8)), tmp_path / "f.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:300])  # the header and part of the pixels
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for path, msg in [(cut, "cut.png is damaged"), (text, "notes.png is not an image PIL can read"),
                      (tmp_path / "nope.png", "nope.png not found"), (tmp_path, "is a folder")]:
        with pytest.raises(SSGenError, match=msg):
            rgb(path)


def test_a_file_is_decoded_once(tmp_path, decodes):
    p = save(Image.new("RGBA", (8, 6), (1, 2, 3, 100)), tmp_path / "a.png", exif=with_orientation(
        Image.new("L", (1, 1)), 6))
    got = rgb(p)
    assert got.image.size == (6, 8) and decodes == [str(p)]
    im, notes = read(p)
    assert im.mode == "RGBA" and notes == []


def test_an_animation_uses_its_first_frame_with_a_note(tmp_path):
    frames = [Image.new("L", (4, 4), 10), Image.new("L", (4, 4), 200)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    got = rgb(p)
    assert pixels(got)[0, 0].tolist() == [10, 10, 10]
    assert got.notes == [f"image {p} has 2 frames: the first is used"]


def test_fit_never_makes_the_whole_resized_image(monkeypatch):
    """A 16384x1 strip fitted to 64x64: resizing first, then cropping, would make a 1048576x64 image; only the
    crop's region is resized."""
    sizes = []
    real = Image.Image.resize

    def spy(self, size, *a, **kw):
        sizes.append(tuple(size))
        return real(self, size, *a, **kw)

    monkeypatch.setattr(Image.Image, "resize", spy)
    out, note = fit(Image.new("L", (16384, 1), 7), (64, 64))
    assert out.size == (64, 64) and np.asarray(out).max() == 7
    assert max(w * h for w, h in sizes) <= 64 * 64
    assert note == "input 16384x1 resized and center-cropped to 64x64"

"""`ssgen edit` (and `compare --image`) through the CLI on the tiny VAR: inpainting, outpainting, a class
edit and variations write PNG grids (input, reconstruction, edits) with their settings; bad input is one
line and exit code 2 before any model loads."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import one_line_error, ssgen_here
from PIL import Image

from ssgen.output import read_metadata

CELL = 64  # the tiny VAR's images
PAD = 2  # ssgen.output.grid's padding


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 64x64 input, a mask of its size (white left half = keep) and a mask of another size."""
    d = tmp_path_factory.mktemp("cli-edit")
    rs = np.random.RandomState(1)
    Image.fromarray(rs.randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "in.png")
    m = np.zeros((64, 64), np.uint8)
    m[:, :32] = 255
    Image.fromarray(m).save(d / "mask.png")
    Image.new("L", (48, 64), 255).save(d / "small-mask.png")
    return d


def sha256(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def grid_cells(path) -> int:
    """Images across a one-row grid of CELL px images (label strips above and on the left)."""
    meta = read_metadata(path)["grid"]
    assert meta["rows"] == 1
    return meta["cols"]


def cell(path, r: int, c: int) -> np.ndarray:
    """The pixels of row r, column c of a grid of CELL px images, found from the grid's size: its label strips
    are what is left above and on the left of rows x cols cells."""
    meta = read_metadata(path)["grid"]
    im = np.asarray(Image.open(path).convert("RGB"))
    top = im.shape[0] - meta["rows"] * (CELL + PAD) - PAD
    left = im.shape[1] - meta["cols"] * (CELL + PAD) - PAD
    y, x = top + PAD + r * (CELL + PAD), left + PAD + c * (CELL + PAD)
    return im[y:y + CELL, x:x + CELL]


@pytest.mark.parametrize("args,keep_mask,cls", [
    (["--box", "0.25,0.25,0.75,0.75"], "0.25,0.25,0.75,0.75 inpaint", None),
    (["--box", "0.25,0.25,0.75,0.75", "--outpaint"], "0.25,0.25,0.75,0.75 outpaint", None),
    (["--mask", "MASK", "--class", "207"], "MASKSHA", 207),
], ids=["inpaint", "outpaint", "class-edit"])
def test_edit_writes_a_grid(tiny_var, files, tmp_path, args, keep_mask, cls):
    out = tmp_path / "edit.png"
    args = [str(files / "mask.png") if a == "MASK" else a for a in args]
    r = ssgen_here("edit", "--model", str(tiny_var), "--image", str(files / "in.png"), *args, "-n", "2",
                   "--seed", "4", "--device", "cpu", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "input, reconstruction and 2 edit(s)" in r.stdout
    assert grid_cells(out) == 4  # input, reconstruction, 2 edits
    meta = read_metadata(out)
    assert meta["grid"]["leading"] == ["input", "reconstruction"]
    assert len(meta["images"]) == 2 and [s["seed"] for s in meta["images"]] == [4, 5]
    s = meta["images"][0]
    assert s["input_sha256"] == sha256(files / "in.png")
    assert s["keep_mask"] == (f"sha256:{sha256(files / 'mask.png')}" if keep_mask == "MASKSHA" else keep_mask)
    assert s["class"] == cls and s["keep_scales"] is None
    assert np.array_equal(cell(out, 0, 0), np.asarray(Image.open(files / "in.png")))


def test_variations_and_ssg_flags(tiny_var, files, tmp_path):
    out = tmp_path / "var.png"
    r = ssgen_here("edit", "-m", str(tiny_var), "--image", str(files / "in.png"), "--keep-scales", "2", "-n", "3",
                   "--no-ssg", "--device", "cpu", "-o", str(out), "--json")
    assert r.exit_code == 0, r.output
    meta = read_metadata(out)
    assert [s["keep_scales"] for s in meta["images"]] == [2, 2, 2]
    assert all(s["keep_mask"] is None and s["class"] is None and s["ssg"] is None for s in meta["images"])
    assert grid_cells(out) == 5
    info = ssgen_here("info", str(out))
    line = next(ln for ln in info.stdout.splitlines() if ln.startswith("reproduce"))
    assert f"with the input image (sha256 {sha256(files / 'in.png')})" in line  # an edit needs its input back


def test_compare_on_an_edit(tiny_var, files, tmp_path):
    out = tmp_path / "cmp.png"
    r = ssgen_here("compare", "-m", str(tiny_var), "--image", str(files / "in.png"), "--box", "0,0,0.5,1",
                   "--device", "cpu", "-o", str(out))
    assert r.exit_code == 0, r.output
    meta = read_metadata(out)
    assert meta["grid"]["columns"][0] == "no SSG" and len(meta["images"]) == 2
    assert [s["ssg"] is None for s in meta["images"]] == [True, False]
    assert all(s["keep_mask"] == "0,0,0.5,1 inpaint" and s["class"] is None for s in meta["images"])


BAD = [
    (["--image", "IN", "--box", "0.5,0,0.2,1"], "x0 < x1"),
    (["--image", "IN", "--box", "0,0,1.2,1"], "outside [0, 1]"),
    (["--image", "IN", "--box", "0,0,1"], "malformed --box"),
    (["--image", "missing.png", "--box", "0,0,0.5,0.5"], "missing.png not found"),
    (["--image", "README", "--keep-scales", "1"], "var-tiny.yaml is not an image PIL can read"),
    (["--image", "IN", "--mask", "SMALL"], "mask is 48x64 but the image is 64x64"),
    (["--image", "IN", "--keep-scales", "5"], "--keep-scales 5 is out of range: give 0..4"),
    (["--image", "IN"], "nothing of the input is kept"),
    (["--image", "IN", "--mask", "SMALL", "--box", "0,0,1,1"], "either --mask or --box"),
    (["--image", "IN", "--outpaint", "--keep-scales", "1"], "--outpaint needs --box"),
    (["--image", "IN", "--box", "0,0,0.5,0.5", "-c", "1000"], "out of range"),
]


@pytest.mark.parametrize("args,msg", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line(tiny_var, files, tmp_path, args, msg):
    out = tmp_path / "never.png"
    subst = {"IN": files / "in.png", "SMALL": files / "small-mask.png", "README": tiny_var}
    args = [str(subst.get(a, a)) for a in args]
    r = ssgen_here("edit", "-m", str(tiny_var), *args, "--device", "cpu", "-o", str(out))
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert msg in r.stderr
    assert not out.exists()


def test_families_that_cannot_edit(files):
    r = ssgen_here("edit", "-m", "hart-0.7b-1024px", "-p", "a fox", "--image", str(files / "in.png"),
                   "--keep-scales", "1")
    assert r.exit_code == 2 and "cannot edit yet; editing works with: var" in r.stderr, r.output
    r = ssgen_here("compare", "-m", "var-d16", "-c", "1", "--mask", str(files / "in.png"))
    assert r.exit_code == 2 and "--mask edits an input image: add --image" in r.stderr, r.output


def test_infinity_edit_with_a_prompt(tiny_inf, files, tmp_path):
    """Infinity edits (ssgen's own): the 64x64 input is fitted to the tiny model's 256 px, and the note says so."""
    out = tmp_path / "inf.png"
    r = ssgen_here("edit", "-m", str(tiny_inf), "-p", "a fox", "--image", str(files / "in.png"), "--box",
                   "0.25,0.25,0.75,0.75", "--device", "cpu", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "input 64x64 resized and center-cropped to 256x256" in r.stderr
    s = read_metadata(out)["images"][0]
    assert s["prompt"] == "a fox" and s["keep_mask"] == "0.25,0.25,0.75,0.75 inpaint"
    g = read_metadata(out)["grid"]
    assert (g["rows"], g["cols"]) == (1, 3)  # input, reconstruction, the edit
    w, h = Image.open(out).size
    assert 0 < w - (3 * 256 + 4 * PAD) < 200 and 0 < h - (256 + 2 * PAD) < 60  # 256 px cells, label strips


# ------------------------------------------------------------------------------------------------
# how the input and mask are read (ssgen.images): as a viewer shows them, bounded, one line when not readable
# ------------------------------------------------------------------------------------------------


def unwrapped(text: str) -> str:
    """Text as printed, without the line breaks a narrow console puts between words."""
    return " ".join(text.split())


def input_cell(path) -> np.ndarray:
    """The grid's first cell: the input as the edit used it (fitted to 64x64)."""
    return cell(path, 0, 0)


def test_a_16_bit_input_is_scaled_not_white(tiny_var, tmp_path):
    a = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520: a ramp
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    r = ssgen_here("edit", "-m", str(tiny_var), "--image", str(tmp_path / "g16.png"), "--keep-scales", "2",
                   "--device", "cpu", "-o", str(tmp_path / "e.png"))
    assert r.exit_code == 0, r.output
    want = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257)
    assert np.array_equal(input_cell(tmp_path / "e.png"), np.repeat(want[..., None], 3, -1))
    assert "note:" not in r.stderr


def test_a_transparent_input_is_composited_on_white_with_a_note(tiny_var, files, tmp_path):
    rgb = np.asarray(Image.open(files / "in.png"))
    alpha = np.zeros((64, 64), np.uint8)
    alpha[:, 32:] = 255  # the left half transparent
    src = tmp_path / "cut-out.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    r = ssgen_here("edit", "-m", str(tiny_var), "--image", str(src), "--keep-scales", "2",
                   "--device", "cpu", "-o", str(tmp_path / "e.png"))
    assert r.exit_code == 0, r.output
    assert f"note: image {src} has transparent pixels: composited on a white background" in unwrapped(r.stderr)
    cell = input_cell(tmp_path / "e.png")
    assert (cell[:, :32] == 255).all() and np.array_equal(cell[:, 32:], rgb[:, 32:])


def test_a_phone_photo_is_used_upright_with_a_mask_drawn_upright(tiny_var, tmp_path):
    """Stored 80 wide and 64 high with EXIF Orientation 6: a viewer shows it 64 wide and 80 high, and a mask drawn
    over what the viewer shows is 64x80. Fitted to 64x64 (the short side is already 64): rows 8..71 of the upright
    image."""
    from helpers import with_orientation

    stored = np.random.RandomState(2).randint(0, 256, (64, 80, 3), dtype=np.uint8)
    photo = Image.fromarray(stored)
    photo.save(tmp_path / "phone.jpg", quality=100, subsampling=0, exif=with_orientation(photo, 6))
    Image.new("L", (64, 80), 255).save(tmp_path / "mask.png")
    r = ssgen_here("edit", "-m", str(tiny_var), "--image", str(tmp_path / "phone.jpg"), "--mask",
                   str(tmp_path / "mask.png"), "--device", "cpu", "-o", str(tmp_path / "e.png"))
    assert r.exit_code == 0, r.output
    assert "input 64x80 resized and center-cropped to 64x64" in unwrapped(r.stderr)
    upright = np.rot90(np.asarray(Image.open(tmp_path / "phone.jpg")), -1)  # the JPEG's decoded pixels, turned
    assert np.array_equal(input_cell(tmp_path / "e.png"), upright[8:72])
    Image.new("L", (80, 64), 255).save(tmp_path / "stored-size.png")  # the stored size is not what a viewer shows
    one_line_error(ssgen_here("edit", "-m", str(tiny_var), "--image", str(tmp_path / "phone.jpg"), "--mask",
                              str(tmp_path / "stored-size.png"), "--device", "cpu"),
                   "mask is 80x64 but the image is 64x80 as a viewer shows it (its EXIF orientation turns it upright)")


def test_a_16_bit_mask_reads_as_its_8_bit_gray(tiny_var, files, tmp_path):
    """30000 / 257 = 117 (below half: regenerate); the same edit as an 8-bit mask of 117 and 255."""
    m16 = np.full((64, 64), 65535, np.uint16)
    m16[:, :32] = 30000
    Image.fromarray(m16).save(tmp_path / "m16.png")
    m8 = np.full((64, 64), 255, np.uint8)
    m8[:, :32] = 117
    Image.fromarray(m8).save(tmp_path / "m8.png")
    outs = []
    for m in ("m16.png", "m8.png"):
        outs.append(tmp_path / f"e-{m}")
        r = ssgen_here("edit", "-m", str(tiny_var), "--image", str(files / "in.png"), "--mask", str(tmp_path / m),
                       "--seed", "3", "--device", "cpu", "-o", str(outs[-1]))
        assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(outs[0])), np.asarray(Image.open(outs[1])))


def test_unreadable_or_too_large_inputs_are_one_line(tiny_var, files, tmp_path):
    from helpers import png_header

    big = png_header(tmp_path / "big.png", 12000, 12000)
    strip = png_header(tmp_path / "strip.png", 60000, 1)
    cut = tmp_path / "cut.png"
    cut.write_bytes((files / "in.png").read_bytes()[:2000])
    holes = Image.new("LA", (64, 64), (255, 255))
    holes.putpixel((0, 0), (0, 0))
    holes.save(tmp_path / "holes.png")
    for args, needles in [
        (["--image", big, "--keep-scales", "1"], [f"image {big} is too large: 12000x12000 (144.0 megapixels)",
                                                  "at most 16384 px a side and 64 megapixels"]),
        (["--image", files / "in.png", "--mask", strip], [f"mask {strip} is too large: 60000x1"]),
        (["--image", cut, "--keep-scales", "1"], [f"image {cut} is damaged"]),
        (["--image", files / "in.png", "--mask", tmp_path / "holes.png"], ["has transparent pixels; a mask is read"]),
    ]:
        out = tmp_path / "never.png"
        one_line_error(ssgen_here("edit", "-m", str(tiny_var), *map(str, args), "--device", "cpu", "-o", str(out)),
                       *needles)
        assert not out.exists()

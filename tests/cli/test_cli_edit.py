"""`ssgen edit` (and `compare --image`) through the CLI on the tiny VAR: inpainting, outpainting, a class
edit and variations write PNG grids (input, reconstruction, edits) with their settings; bad input is one
line and exit code 2 before any model loads."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import ssgen_here
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
    (["--image", "README", "--keep-scales", "1"], "cannot read image"),
    (["--image", "IN", "--mask", "SMALL"], "mask is 48x64 but the image is 64x64"),
    (["--image", "IN", "--keep-scales", "5"], "keep_scales 5 is out of range: give 0..4"),
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

"""Editing through the API on the tiny VAR (with its real encoder): what a keep mask keeps, variations,
boxes as the VAR notebook's get_edit_mask, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ssgen
from ssgen.edit import box_mask, keep_per_scale, pixels
from ssgen.edit_input import Box, parse_box
from ssgen.errors import ConfigError


@pytest.fixture(scope="module")
def pipe(tiny_var):
    return ssgen.load(str(tiny_var), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 64x64 input (the tiny VAR's size, used as is) with some structure, as a file."""
    y, x = np.mgrid[0:64, 0:64]
    a = np.stack([x * 4, y * 4, (x + y) * 2], -1).clip(0, 255).astype(np.uint8)
    p = tmp_path_factory.mktemp("edit") / "in.png"
    Image.fromarray(a).save(p)
    return p


def input_tokens(pipe, image) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The input's tokens per scale (1, h*w) and its reconstruction, from the backend's encoder."""
    backend = pipe.family.start(pipe.resolve([0])).backend
    return backend.encode(pixels(Image.open(image)))


def test_keep_all_reproduces_the_input(pipe, photo):
    tokens, recon = input_tokens(pipe, photo)
    res = pipe.generate(classes=[3, 7], image=photo, keep_mask=torch.ones(4, 4), seed=1)
    for k, t in enumerate(res.tokens):
        assert torch.equal(t, tokens[k].expand(2, -1)), f"scale {k}"
    assert res.reconstruction.shape == res.pixels.shape == (2, 3, 64, 64)
    assert (res.reconstruction[0] - recon[0]).abs().max() <= 1e-6
    assert (res.pixels - res.reconstruction).abs().max() <= 1e-4
    assert res.settings[0]["keep_mask"] == "tensor" and res.settings[1]["keep_scales"] is None
    assert len(res.settings[0]["input_sha256"]) == 64
    smooth = pipe.generate(classes=[3], image=photo, keep_mask=torch.ones(4, 4), seed=1, more_smooth=True)
    assert (smooth.pixels - smooth.reconstruction).abs().max() <= 1e-4  # kept soft embeddings are one-hot


def test_keep_nothing_is_plain_generation(pipe, photo):
    plain = pipe.generate(classes=[3, 7], seed=1)
    res = pipe.generate(classes=[3, 7], image=photo, keep_mask=torch.zeros(8, 8), seed=1)
    for a, b in zip(res.tokens, plain.tokens):
        assert torch.equal(a, b)
    assert torch.equal(res.pixels, plain.pixels)


def test_keep_scales_keeps_exactly_the_first_scales(pipe, photo):
    tokens, _ = input_tokens(pipe, photo)
    for k in (1, 2):
        res = pipe.generate(classes=[None], image=photo, keep_scales=k, seed=2)
        assert all(torch.equal(res.tokens[j], tokens[j]) for j in range(k))
        assert not torch.equal(res.tokens[k], tokens[k])  # 16 codes of 4096 drawn anew
        assert res.settings[0]["keep_scales"] == k and res.settings[0]["class"] is None
    whole = pipe.generate(classes=[None], image=photo, keep_scales=4, seed=2)
    assert (whole.pixels - whole.reconstruction).abs().max() <= 1e-4


def test_ssg_on_and_off_on_an_edit(pipe, photo):
    tokens, _ = input_tokens(pipe, photo)
    box = Box(0.25, 0.25, 0.75, 0.75)
    keep = (box_mask(box, 4, 4) > 0.5).reshape(16)
    on = pipe.generate(classes=[5], image=photo, keep_mask=box, seed=0, ssg=ssgen.SSG(beta=2.0, scales=(1, 3)))
    off = pipe.generate(classes=[5], image=photo, keep_mask=box, seed=0, ssg=False)
    for res in (on, off):  # the ring around the box is the input's, the box is generated
        assert torch.equal(res.tokens[-1][0, keep], tokens[-1][0, keep])
        assert not torch.equal(res.tokens[-1][0, ~keep], tokens[-1][0, ~keep])
    assert not torch.equal(on.pixels, off.pixels)
    assert on.settings[0]["ssg"]["beta"] == 2.0 and off.settings[0]["ssg"] is None
    assert on.settings[0]["keep_mask"] == "0.25,0.25,0.75,0.75 inpaint"


def test_box_mask_as_the_notebook():
    """Box 0.25..0.75 on the 4x4 grid of the tiny VAR (scales 1, 2, 3, 4), worked by hand: the box is rows
    and columns 1..2; bilinear (align_corners=False) to 2x2 averages 2x2 blocks (3 of 4 kept: 0.75), to 3x3
    the centre falls inside the box (0) and the ring at 0.83 or more."""
    inpaint = box_mask(Box(0.25, 0.25, 0.75, 0.75), 4, 4)
    want = torch.ones(4, 4)
    want[1:3, 1:3] = 0
    assert torch.equal(inpaint, want)
    keep = keep_per_scale(inpaint, [(1, 1), (2, 2), (3, 3), (4, 4)], None, 2, "cpu")
    assert [tuple(m.shape) for m in keep] == [(2, 1), (2, 4), (2, 9), (2, 16)]
    assert keep[0].all() and keep[1].all()
    assert keep[2][0].tolist() == [True] * 4 + [False] + [True] * 4
    assert torch.equal(keep[3][0], want.bool().reshape(16))
    out = keep_per_scale(box_mask(Box(0.25, 0.25, 0.75, 0.75, outpaint=True), 4, 4), [(1, 1), (2, 2), (3, 3)],
                         None, 1, "cpu")
    assert out[0].all() and not out[1].any()  # 1 token: always kept; 2x2 at 0.25: none
    assert out[2][0].tolist() == [False] * 4 + [True] + [False] * 4
    # Python's round (halves to even), as the notebook: 0.125 * 4 = 0.5 -> 0, 0.625 * 4 = 2.5 -> 2
    assert box_mask(Box(0.125, 0.0, 0.625, 1.0, outpaint=True), 4, 4)[0].tolist() == [1, 1, 0, 0]
    # keep_scales keeps the first scales whole; without a mask the rest keeps nothing
    assert [m is None for m in keep_per_scale(None, [(1, 1), (2, 2), (3, 3)], 2, 1, "cpu")] == [False, False, True]


def test_mask_image_is_fitted_with_the_image(pipe, tmp_path):
    """An 80x100 input and its mask get the same resize (short side 80 -> 64) and centre crop; a white right
    half stays the right half."""
    rs = np.random.RandomState(0)
    src = tmp_path / "wide.png"
    Image.fromarray(rs.randint(0, 256, (80, 100, 3), dtype=np.uint8)).save(src)
    mask = np.zeros((80, 100), np.uint8)
    mask[:, 50:] = 255
    res = pipe.generate(classes=[1], image=src, keep_mask=Image.fromarray(mask), seed=0)
    assert "input 100x80 resized and center-cropped to 64x64" in res.notes
    assert res.settings[0]["keep_mask"].startswith("pixels-sha256:")
    backend = pipe.family.start(pipe.resolve([0])).backend
    fitted = Image.open(src).resize((80, 64), Image.LANCZOS).crop((8, 0, 72, 64))
    tokens, _ = backend.encode(pixels(fitted))
    last = res.tokens[-1][0].reshape(4, 4)
    assert torch.equal(last[:, 2:], tokens[-1][0].reshape(4, 4)[:, 2:])
    assert not torch.equal(last[:, :2], tokens[-1][0].reshape(4, 4)[:, :2])


def test_a_mask_lies_over_the_upright_photo(pipe, photo, tmp_path):
    """A photo stored turned (EXIF Orientation 6: a viewer turns it 90 degrees clockwise) is encoded upright, and a
    mask drawn over what the viewer shows (white right half = keep) keeps the upright image's right half."""
    from helpers import with_orientation

    stored = Image.fromarray(np.rot90(np.asarray(Image.open(photo)), 1))  # turned back: a viewer shows `photo`
    stored.save(tmp_path / "phone.png", exif=with_orientation(stored, 6))
    mask = np.zeros((64, 64), np.uint8)
    mask[:, 32:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    res = pipe.generate(classes=[1], image=tmp_path / "phone.png", keep_mask=tmp_path / "mask.png", seed=0)
    upright, _ = input_tokens(pipe, photo)
    last, want = res.tokens[-1][0].reshape(4, 4), upright[-1][0].reshape(4, 4)
    assert torch.equal(last[:, 2:], want[:, 2:])
    assert not torch.equal(last[:, :2], want[:, :2])


@pytest.mark.parametrize("kw,msg", [
    (dict(keep_mask=Image.new("L", (32, 32))), "mask is 32x32 but the image is 64x64"),
    (dict(keep_scales=5), "keep_scales 5 is out of range: give 0..4"),
    (dict(keep_scales=-1), "out of range"),
    (dict(), "nothing of the input is kept"),
    (dict(keep_mask=torch.ones(2, 4, 4)), "give one (h, w) mask"),
    (dict(image="no/such.png", keep_scales=1), "no/such.png not found"),
    (dict(image=__file__, keep_scales=1), "test_edit.py is not an image PIL can read"),
    (dict(image=None, keep_scales=1), "pass image=PATH"),
])
def test_bad_edits(pipe, photo, kw, msg):
    kw = {"image": photo, **kw}
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
        pipe.generate(classes=[1], **kw)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text,msg", [("0.2,0.2,0.1,0.9", "needs x0 < x1"), ("0,0,1.5,1", "outside"),
                                      ("0,0,1", "malformed"), ("a,b,c,d", "malformed")])
def test_bad_boxes(text, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_box(text)


def test_null_class_without_an_image(pipe):
    res = pipe.generate(classes=[None, 3], seed=0)
    assert [s["class"] for s in res.settings] == [None, 3] and res.reconstruction is None


# ------------------------------------------------------------------------------------------------
# Infinity (ssgen's own editing): the same properties through the API, on the tiny Infinity
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inf(tiny_inf):
    return ssgen.load(str(tiny_inf), device="cpu", dtype="float32")


def inf_photo(inf, tmp_path) -> tuple:
    """An input of the call's own size (so it is used as is), as a file."""
    backend = inf.family.start(inf.resolve(None, ["a red fox"])).backend
    H, W = backend.image_size
    y, x = np.mgrid[0:H, 0:W]
    a = np.stack([x * 255 // W, y * 255 // H, (x + y) * 127 // (H + W)], -1).astype(np.uint8)
    p = tmp_path / "in.png"
    Image.fromarray(a).save(p)
    return p, backend


def test_infinity_keep_all_reproduces_the_input(inf, tmp_path):
    p, backend = inf_photo(inf, tmp_path)
    bits, recon = backend.encode(pixels(Image.open(p)))
    res = inf.generate(prompts=["a red fox", "a cat"], image=p, keep_mask=torch.ones(4, 4), seed=1)
    for k, t in enumerate(res.tokens):  # public layout (B, h, w, d); the encoder's is the sampled one (B, h*w*d)
        assert torch.equal(t.reshape(2, -1).long(), bits[k].expand(2, -1)), f"scale {k}"
    assert (res.pixels - res.reconstruction).abs().max() <= 1e-4
    assert (res.reconstruction[0] - recon[0]).abs().max() <= 1e-6


def test_infinity_keep_nothing_is_plain_generation_and_ssg_runs(inf, tmp_path):
    p, _ = inf_photo(inf, tmp_path)
    plain = inf.generate(prompts=["a red fox"], seed=2, ssg=False)
    res = inf.generate(prompts=["a red fox"], image=p, keep_mask=torch.zeros(3, 3), seed=2, ssg=False)
    assert all(torch.equal(a, b) for a, b in zip(res.tokens, plain.tokens))
    assert torch.equal(res.pixels, plain.pixels)
    box = ssgen.Box(0.25, 0.25, 0.75, 0.75)
    on = inf.generate(prompts=["a red fox"], image=p, keep_mask=box, seed=2, ssg=ssgen.SSG(beta=0.5, scales=(1, -1)))
    off = inf.generate(prompts=["a red fox"], image=p, keep_mask=box, seed=2, ssg=False)
    assert on.settings[0]["ssg"] is not None and off.settings[0]["ssg"] is None
    assert not torch.equal(on.pixels, off.pixels)  # SSG changed the generated region
    grid = inf.family.start(inf.resolve(None, ["x"])).backend.grid
    kept = keep_per_scale(box_mask(box, *grid[-1]), grid, None, 1, "cpu")
    k = len(on.tokens) - 1
    m = kept[k][0].reshape(on.tokens[k].shape[1:3])  # (h, w) bool at the last scale
    assert torch.equal(on.tokens[k][0][m], off.tokens[k][0][m])  # the kept positions are the input's either way

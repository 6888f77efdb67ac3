"""Grid labels on real CLI runs of the tiny VAR (64 px images) and of a tinier one (32 px): `edit` grids label their
columns (input, reconstruction, edits), `compare --image` starts with the input and its reconstruction, and column
labels, however long, stay inside their own column: the strip above the images holds ink in every column and
none between columns, where a label running into its neighbour would leave some."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ssgen_here
from PIL import Image

from ssgen.output import grid_layout, read_metadata

INK = 160  # a pixel darker than this (any channel) in the label strip is text


@pytest.fixture(scope="module")
def models(tiny_var, tmp_path_factory):
    """size -> (model YAML, flags its scales need): the tiny VAR (4 scales, 64 px) and one of 2 scales (32 px)."""
    from ssgen.backends.var.tiny import make_tiny_var

    tiny32 = make_tiny_var(tmp_path_factory.mktemp("tiny32"), patch_nums=(1, 2), name="var-tiny32")
    return {64: (tiny_var, []), 32: (tiny32, ["--ssg-scales", "1--1"])}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    p = tmp_path_factory.mktemp("labels") / "in.png"
    Image.fromarray(np.random.RandomState(3).randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    return p


def layout(path, size: int, row_labels: list[str]):
    """The grid's layout as `grid` made it, checked against the file's own size."""
    g = read_metadata(path)["grid"]
    lay = grid_layout((size, size), g["rows"] * g["cols"], g["cols"], col_labels=g.get("leading", []) + g["columns"],
                      row_labels=row_labels)
    im = np.asarray(Image.open(path).convert("RGB"))
    assert (lay.width, lay.height) == (im.shape[1], im.shape[0])
    return lay, im


def check_labels(lay, im) -> None:
    """Every column has its label, inside its own span of the strip; nothing between columns or around them; the
    strip is text on white, not image pixels; the images start below it."""
    strip = im[:lay.top]
    ink = (strip < INK).any(axis=2)  # (top, W)
    inside = np.zeros(im.shape[1], bool)
    for c in range(lay.cols):
        x0 = lay.slot_x(c)
        inside[x0:x0 + lay.slot] = True
        cols = np.nonzero(ink[:, x0:x0 + lay.slot].any(axis=0))[0]
        assert len(cols) > 0, f"column {c} has no label"
    outside = np.nonzero(ink[:, ~inside].any(axis=0))[0]
    assert len(outside) == 0, f"label ink between or beside the columns ({len(outside)} pixel columns)"
    assert ink.mean() < 0.3 and ((strip == 255).all(axis=2) | ink).mean() > 0.9  # text on white
    x, y = lay.image_xy(0, 0)
    tile = im[y:y + lay.size[1], x:x + lay.size[0]]
    assert (tile != 255).any(axis=2).mean() > 0.5  # an image, right below the strip


@pytest.mark.parametrize("size", [64, 32])
def test_compare_labels_fit_their_columns(models, photo, tmp_path, size):
    model, flags = models[size]
    out = tmp_path / "cmp.png"
    r = ssgen_here("compare", "-m", str(model), *flags, "-c", "1", "--image", str(photo), "--keep-scales", "1",
                   "--ssg-beta", "0.5", "--ssg-beta", "linear:1.0:0.25", "--device", "cpu", "-o", str(out))
    assert r.exit_code == 0, r.output
    g = read_metadata(out)["grid"]
    assert g["leading"] == ["input", "reconstruction"] and g["columns"][0] == "no SSG" and g["cols"] == 5
    lay, im = layout(out, size, ["class 1, seed 0"])
    check_labels(lay, im)
    if size == 64:  # the input at its own size: the first cell is the input itself
        x, y = lay.image_xy(0, 0)
        assert np.array_equal(im[y:y + 64, x:x + 64], np.asarray(Image.open(photo)))


@pytest.mark.parametrize("size", [64, 32])
def test_edit_grid_labels_its_columns(models, photo, tmp_path, size):
    model, flags = models[size]
    out = tmp_path / "edit.png"
    r = ssgen_here("edit", "-m", str(model), *flags, "--image", str(photo), "--keep-scales", "1", "-n", "2",
                   "--device", "cpu", "-o", str(out))
    assert r.exit_code == 0, r.output
    g = read_metadata(out)["grid"]
    assert (g["rows"], g["leading"], g["columns"]) == (1, ["input", "reconstruction"], ["edit 1", "edit 2"])
    lay, im = layout(out, size, ["null class, seeds 0-1"])
    check_labels(lay, im)

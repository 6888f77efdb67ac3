"""One road: every generating command checks each call once (the family's options are parsed once per call,
nowhere else) and an edit opens and decodes its input image once per command, however many calls it makes."""

from __future__ import annotations

import pytest
from helpers import ssgen_here
from PIL import Image

import ssgen.backends.var.options as var_options


@pytest.fixture
def parses(monkeypatch):
    seen = []
    real = var_options.parse

    def spy(*args, **kw):
        seen.append(args[2])  # the call's classes
        return real(*args, **kw)

    monkeypatch.setattr(var_options, "parse", spy)
    return seen


@pytest.mark.parametrize("command,calls", [("generate", 3), ("compare", 6)])
def test_each_call_is_parsed_once(tiny_var, tmp_path, parses, command, calls):
    """5 images in calls of 2: 3 calls (compare: 2 columns each), one parse each: none in the pipeline or the
    family's start."""
    r = ssgen_here(command, "-m", str(tiny_var), "-c", "1", "-n", "5", "-b", "2", "-o", str(tmp_path / "g.png"),
                   "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert len(parses) == calls
    assert sorted(len(c) for c in parses) == sorted([2, 2, 1] * (calls // 3))


def test_batch_parses_each_job_then_each_call(tiny_var, tmp_path, parses):
    """A batch judges every job alone before writing anything (an error can name it), then parses each call."""
    r = ssgen_here("batch", "-m", str(tiny_var), "--classes", "0-4", "--out", str(tmp_path / "run"), "-b", "2",
                   "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert [len(c) for c in parses] == [1] * 5 + [2, 2, 1]


def test_an_edit_decodes_its_input_once(tiny_var, tmp_path, monkeypatch):
    src, mask = tmp_path / "in.png", tmp_path / "mask.png"
    Image.new("RGB", (80, 64), (200, 30, 30)).save(src)
    Image.new("L", (80, 64), 255).save(mask)
    loads = []
    real = Image.open

    def spy(fp, *args, **kw):
        if str(fp) in (str(src), str(mask)):
            loads.append(str(fp))  # ssgen opens a file to decode it (ssgen.images.read: open, check, load)
        return real(fp, *args, **kw)

    monkeypatch.setattr(Image, "open", spy)
    for command in ("edit", "compare"):
        loads.clear()
        r = ssgen_here(command, "-m", str(tiny_var), "--image", str(src), "--mask", str(mask), "-n", "3", "-b", "1",
                       "-o", str(tmp_path / f"{command}.png"), "--device", "cpu")
        assert r.exit_code == 0, r.stderr
        assert sorted(loads) == sorted([str(src), str(mask)]), loads  # 3 calls, one decode of each file

"""The README's Python examples run as written. The tiny-model example runs exactly as printed (after
`python -m ssgen.tiny var tiny`, which it names); those that load `var-d30` run with `ssgen.load` handing them a
random-weight VAR with var-d30's numbers (10 scales, 1000 classes; smaller and faster), so `scales=(2, 9)`,
class 207 and the editing calls are checked against the numbers the real model has. A new example that loads
something else fails here until this test knows how to run it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ssgen

README = Path(__file__).resolve().parents[2] / "README.md"
TEN_SCALES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)  # var-d30 has 10 (up to 16x16 tokens); these stop at 10x10: 160 px

pytestmark = pytest.mark.usefixtures("one_thread")


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """A random-weight VAR with var-d30's scale count and classes (tiny width and depth)."""
    from ssgen.backends.var.tiny import make_tiny_var

    yml = make_tiny_var(tmp_path_factory.mktemp("var-d30-numbers"), patch_nums=TEN_SCALES, depth=1, width=64,
                        name="var-d30-numbers")
    return ssgen.load(str(yml), device="cpu", dtype="float32")


def test_the_readme_python_examples_run(stand_in, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (256, 256, 3), dtype=np.uint8)).save("in.png")
    blocks = examples()
    assert sum('ssgen.load("tiny/var-tiny.yaml"' in b for b in blocks) == 1, "the README shows the tiny-model example"
    for block in blocks:
        scope = {"pil_image": Image.open("in.png"), "mask": torch.ones(16, 16)}  # names the editing example assumes
        if 'ssgen.load("var-d30")' in block:
            with monkeypatch.context() as m:
                m.setattr(ssgen, "load", lambda *a, **k: stand_in)
                exec(compile(block, "README.md", "exec"), scope)
        elif 'ssgen.load("tiny/var-tiny.yaml"' in block:
            from ssgen.backends.var.tiny import make_tiny_var

            make_tiny_var("tiny")  # what `python -m ssgen.tiny var tiny` writes
            exec(compile(block, "README.md", "exec"), scope)
            assert Path("dog.png").is_file() and scope["res"].settings[0]["ssg"]["scales"] == [2, 3]
        else:
            pytest.fail(f"a README example this test cannot run yet:\n{block}")

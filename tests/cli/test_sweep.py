"""`ssgen sweep` over the tiny VAR and a random-weight Inception: 2 x 2 cells plus a no-SSG column, the same
seeds in every cell, the tables and the plot, the best cell, a resume after an interruption, and input errors
before any image is written."""

from __future__ import annotations

import csv
import json

import pytest
from helpers import ssgen_here
from PIL import Image


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    from ssgen.inception import make_tiny_inception

    return make_tiny_inception(tmp_path_factory.mktemp("inception") / "weights-tiny.pth")


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """Six noise images as the reference folder."""
    import numpy as np

    d = tmp_path_factory.mktemp("ref")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


def sweep_args(tiny_var, out, ref, inception, *more):
    return ["sweep", "-m", str(tiny_var), "--classes", "0-1", "--per-class", "2", "--cfg", "1", "--cfg", "2",
            "--ssg-beta", "0.25", "--ssg-beta", "0.75", "--no-ssg", "--ref", str(ref), "--inception",
            str(inception), "--metrics", "fid,is,precision,recall", "--out", str(out), "-b", "2", "--device", "cpu",
            *more]


def test_sweep_end_to_end_and_resume(tiny_var, tmp_path, ref, inception, monkeypatch):
    from ssgen.pipeline import Pipeline

    out = tmp_path / "sweep"
    calls = []
    real = Pipeline.run

    def killed(self, request, **kw):  # the run stops in its 5th call, as a kill would
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, request, **kw)

    monkeypatch.setattr(Pipeline, "run", killed)
    r = ssgen_here(*sweep_args(tiny_var, out, ref, inception))
    assert r.exit_code == 130, r.output
    assert not (out / "sweep.json").exists()
    monkeypatch.setattr(Pipeline, "run", real)

    r = ssgen_here(*sweep_args(tiny_var, out, ref, inception, "--best", "is"))
    assert r.exit_code == 0, r.output
    data = json.loads((out / "sweep.json").read_text())
    cells = data["cells"]
    assert len(cells) == 6  # 2 cfg x (no SSG + 2 betas)
    assert {c["cell"] for c in cells} == {"cfg=1.0 no SSG", "cfg=1.0 beta=0.25", "cfg=1.0 beta=0.75",
                                          "cfg=2.0 no SSG", "cfg=2.0 beta=0.25", "cfg=2.0 beta=0.75"}
    for c in cells:
        assert set(c["metrics"]) == {"fid", "is", "precision", "recall"}
        assert c["n"] == 4 and c["metrics"]["fid"] > 0
        assert (c["settings"]["ssg"] is None) == ("no SSG" in c["cell"])
    # the same seeds and classes in every cell: a paired comparison
    seen = set()
    for c in cells:
        lines = [json.loads(x) for x in (out / "cells" / c["folder"] / "manifest.jsonl").read_text().splitlines()]
        seen.add(tuple((x["class"], x["seed"]) for x in lines))
    assert seen == {((0, 0), (0, 1), (1, 2), (1, 3))}
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 6 and "fid" in rows[0] and "cfg" in rows[0]
    best = max(cells, key=lambda c: c["metrics"]["is"])
    assert f"best by is: {best['cell']}" in r.stdout
    if (out / "sweep.png").exists():  # matplotlib installed (ssgen[eval])
        with Image.open(out / "sweep.png") as im:
            assert im.size[0] > 300


def test_sweep_resume_writes_the_same_images(tiny_var, tmp_path, ref, inception):
    """A second run of the same sweep generates nothing and leaves every image as it was."""
    out = tmp_path / "s"
    args = ["sweep", "-m", str(tiny_var), "--classes", "3", "--per-class", "2", "--ssg-beta", "0.5", "--no-ssg",
            "--ref", str(ref), "--inception", str(inception), "--metrics", "fid", "--out", str(out), "--device",
            "cpu"]
    assert ssgen_here(*args).exit_code == 0
    before = {p: p.read_bytes() for p in sorted((out / "cells").rglob("*.png"))}
    r = ssgen_here(*args)
    assert r.exit_code == 0, r.output
    assert {p: p.read_bytes() for p in sorted((out / "cells").rglob("*.png"))} == before
    assert len(before) == 4


@pytest.mark.parametrize("args,needle", [
    (["--cfg", "-1"], "cfg must be"),
    (["--ssg-scales", "2-40"], "outside this model's scales"),
    (["--best", "nope"], "unknown --best metric"),
    (["--metrics", "fid", "--best", "is"], "--best is is not among --metrics"),
])
def test_sweep_input_errors_come_first(tiny_var, tmp_path, ref, args, needle):
    out = tmp_path / "bad"
    r = ssgen_here("sweep", "-m", str(tiny_var), "--classes", "0", "--ref", str(ref), "--out", str(out), *args)
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r.output
    assert r.stderr.startswith("error: ") and needle in r.stderr, r.stderr
    assert not out.exists() or not any(out.rglob("*.png"))


def test_sweep_missing_reference_is_one_line(tiny_var, tmp_path):
    r = ssgen_here("sweep", "-m", str(tiny_var), "--classes", "0", "--ref", str(tmp_path / "none.npz"),
                   "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "reference" in r.stderr and "does not exist" in r.stderr, r.output

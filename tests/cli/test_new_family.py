"""A family added by following docs/architecture.md ("Adding a family") alone: the test-only family in
tests/data/toy_family (spec, options, family, tiny; registered through the `ssgen.families` entry point)
runs through the real `ssgen` command: its tiny model, its own flag, generate, batch, info, and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

TOY = Path(__file__).resolve().parents[1] / "data" / "toy_family"
ROOT = Path(__file__).resolve().parents[2]  # this checkout's ssgen, not only an installed one


def plugin_path(toy: Path) -> str:
    """PYTHONPATH with the plugin folder, and this checkout ahead of any installed ssgen."""
    return os.pathsep.join([str(toy), str(ROOT)])


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A copy of the toy family on its own PYTHONPATH folder (as a user's plugin would be installed)."""
    root = tmp_path_factory.mktemp("plugin")
    shutil.copytree(TOY / "toyfam", root / "toyfam")
    shutil.copytree(TOY / "toyfam-0.1.dist-info", root / "toyfam-0.1.dist-info")
    return root


def ssgen(toy: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("ssgen", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "ssgen"]
    env = dict(os.environ, PYTHONPATH=plugin_path(toy), HF_HUB_OFFLINE="1")
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_a_new_family_runs_end_to_end(toy, tmp_path):
    env = dict(os.environ, PYTHONPATH=plugin_path(toy))
    made = subprocess.run([sys.executable, "-m", "ssgen.tiny", "toy", str(tmp_path / "m")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    yml = Path(made.stdout.strip())
    assert yml.name == "toy-tiny.yaml" and yml.is_file()

    help_text = ssgen(toy, "generate", "--help").stdout
    assert "--temperature" in help_text  # the family's own flag, read from its spec

    out = tmp_path / "g.png"
    r = ssgen(toy, "generate", "-m", str(yml), "-c", "3", "-c", "7", "-n", "2", "--temperature", "0.5",
              "--ssg-beta", "0.25", "-o", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        meta = json.loads(im.text["ssgen"])
    first = meta["images"][0]
    assert first["family"] == "toy" and first["temperature"] == 0.5 and first["ssg"]["beta"] == 0.25
    assert [s["class"] for s in meta["images"]] == [3, 3, 7, 7]

    info = ssgen(toy, "info", str(out))
    assert info.returncode == 0 and "temperature" in info.stdout and "toy-tiny" in info.stdout

    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"class": 1}\n{"class": 2, "temperature": 2.0}\n{"class": 9, "seed": 5}\n')
    r = ssgen(toy, "batch", "-m", str(yml), "--jobs", str(jobs), "--out", str(tmp_path / "run"), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "run" / "manifest.jsonl").read_text().splitlines()]
    assert [(x["index"], x["class"], x["temperature"]) for x in lines] == [(0, 1, 1.0), (1, 2, 2.0), (2, 9, 1.0)]
    assert lines[2]["seed"] == 5


def test_a_new_family_checks_its_input_before_loading(toy, tmp_path):
    """The family's options module answers bad input with one line, before its weights are looked at."""
    made = subprocess.run([sys.executable, "-m", "ssgen.tiny", "toy", str(tmp_path / "m")], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=plugin_path(toy)), timeout=120)
    yml = Path(made.stdout.strip())
    (tmp_path / "m" / "toy.pth").unlink()  # no weights: an input error must come first
    for args, needle in ((["-c", "10"], "class 10 is out of range"),
                         (["-c", "1", "--temperature", "0"], "temperature must be"),
                         (["-c", "1", "--tau", "0.5"], "tau is not an option of Toy")):
        r = ssgen(toy, "generate", "-m", str(yml), *args, "-o", str(tmp_path / "x.png"))
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("error: ") and needle in r.stderr, r.stderr
    jobs = tmp_path / "bad.jsonl"
    jobs.write_text('{"class": 1, "tau": 0.5}\n')
    r = ssgen(toy, "batch", "-m", str(yml), "--jobs", str(jobs), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "unknown field(s) tau" in r.stderr, r.stderr

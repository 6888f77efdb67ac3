"""A batch folder keeps the user's files and never mixes runs: --overwrite replaces only what a batch run wrote,
a resume after the config or a local weight changed is refused naming what changed, a PNG copied in under
another index is regenerated, and a second run's start-up leaves a live run's temporary files alone."""

from __future__ import annotations

import json
import os
import shutil
import time

import yaml
from helpers import ssgen_here
from PIL import Image


def test_overwrite_replaces_only_what_a_run_wrote(tiny_var, tmp_path):
    out = tmp_path / "out"
    args = ["batch", "-m", str(tiny_var), "--classes", "1", "--per-class", "2", "--out", str(out)]
    assert ssgen_here(*args).exit_code == 0
    for name in ("2024-holiday.png", "9lives.png", "000001-copy.png", "12.png"):
        Image.new("RGB", (4, 4), (9, 9, 9)).save(out / name)
    r = ssgen_here(*args, "--cfg", "1.5", "--overwrite")
    assert r.exit_code == 0, r.output
    for name in ("2024-holiday.png", "9lives.png", "000001-copy.png", "12.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "run.json").read_text())["options"]["cfg"] == 1.5


def test_a_foreign_numbered_image_is_never_overwritten(tiny_var, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out / "000001.png")
    for extra in ([], ["--overwrite"]):
        r = ssgen_here("batch", "-m", str(tiny_var), "--classes", "1", "--per-class", "2", "--out", str(out), *extra)
        assert r.exit_code == 2 and "did not write (000001.png)" in r.stderr, r.output
    with Image.open(out / "000001.png") as im:
        assert im.getpixel((0, 0)) == (1, 2, 3)


def model_copy(tiny_var, tmp_path):
    """A copy of the tiny VAR's YAML and files, to change."""
    d = tmp_path / "model"
    shutil.copytree(tiny_var.parent, d)
    return d / tiny_var.name


def test_resume_after_the_config_changed_is_refused(tiny_var, tmp_path):
    yml = model_copy(tiny_var, tmp_path)
    out = tmp_path / "out"
    args = ["batch", "-m", str(yml), "--classes", "1", "--per-class", "2", "--out", str(out)]
    assert ssgen_here(*args).exit_code == 0
    original = yml.read_text()
    cfg = yaml.safe_load(original)
    cfg.setdefault("defaults", {})["cfg"] = 3.0  # the config's defaults: what the images were made with
    yml.write_text(yaml.safe_dump(cfg))
    r = ssgen_here(*args)
    assert r.exit_code == 2 and "another run (different options)" in r.stderr, r.output
    cfg = yaml.safe_load(original)
    cfg["ssg"] = {"enabled": True, "beta": 0.9, "scales": [1, -1]}
    yml.write_text(yaml.safe_dump(cfg))
    r = ssgen_here(*args)
    assert r.exit_code == 2 and "different ssg" in r.stderr, r.output


def test_resume_after_a_local_weight_was_replaced_is_refused(tiny_var, tmp_path):
    yml = model_copy(tiny_var, tmp_path)
    out = tmp_path / "out"
    args = ["batch", "-m", str(yml), "--classes", "1", "--out", str(out), "--per-class", "2"]
    assert ssgen_here(*args).exit_code == 0
    vae = next(p for p in yml.parent.iterdir() if p.name.startswith("vae"))
    later = vae.stat().st_mtime_ns + 5_000_000_000
    os.utime(vae, ns=(later, later))  # another file put in its place
    r = ssgen_here(*args)
    assert r.exit_code == 2 and "different weights" in r.stderr, r.output


def test_a_png_copied_under_another_index_is_regenerated(tiny_var, tmp_path):
    out = tmp_path / "out"
    args = ["batch", "-m", str(tiny_var), "--classes", "1-3", "--out", str(out)]
    assert ssgen_here(*args).exit_code == 0
    want = (out / "000002.png").read_bytes()
    shutil.copy(out / "000000.png", out / "000002.png")
    assert ssgen_here(*args).exit_code == 0
    assert (out / "000002.png").read_bytes() == want
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == [0, 1, 2] and [x["class"] for x in lines] == [1, 2, 3]


def test_start_up_keeps_a_live_runs_temporary_files(tiny_var, tmp_path):
    out = tmp_path / "out"
    args = ["batch", "-m", str(tiny_var), "--classes", "1", "--out", str(out)]
    assert ssgen_here(*args).exit_code == 0
    live = out / f".000005.png.{os.getpid()}.abcd1234.tmp"  # this process is alive: a run writing an image
    live.write_bytes(b"partial")
    dead = out / ".000006.png.999999999.abcd1234.tmp"  # no such process, and not written for minutes
    dead.write_bytes(b"partial")
    old = time.time() - 600
    os.utime(dead, (old, old))
    os.utime(live, (old, old))
    assert ssgen_here(*args).exit_code == 0
    assert live.exists() and not dead.exists()


def test_two_runs_at_once_on_one_folder_end_complete_and_unmixed(tiny_var, tmp_path):
    """Two `ssgen batch` processes started together on one folder (the same run): both succeed, neither deletes
    the other's work in progress, and the folder ends as one run alone writes it: every image once, the same
    pixels, a manifest listing each index once, no temporary file left. (They cooperate through atomic writes;
    an image both generate is written twice with the same bytes.)"""
    import subprocess
    import sys

    import numpy as np

    args = ["batch", "-m", str(tiny_var), "--classes", "0-9", "--batch-size", "1"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert ssgen_here(*args, "--out", str(ref)).exit_code == 0
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "ssgen", *args, "--out", str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(p.name for p in ref.glob("*.png")) and len(names) == 10
    for name in names:
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(ref / name))), name
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [x["index"] for x in lines] == list(range(10))
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]

"""Switti through the CLI: its flags, input errors before any weights, and the tiny model end to end (`python -m
ssgen.tiny switti DIR`, then `ssgen generate`, `batch`, `compare` with SSG columns, `edit` and `info`)."""

from __future__ import annotations

import json

import pytest
from helpers import one_line_error, ssgen_here
from PIL import Image


def test_help_lists_the_switti_flags():
    out = ssgen_here("generate", "--help").stdout
    for flag in ("--smooth-start", "--cfg-start", "--cfg-stop", "--last-scale-temp", "--negative-prompt"):
        assert flag in out, flag
    sweep = " ".join(ssgen_here("sweep", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--cfg-stop <list[int]>" in sweep and "--last-scale-temp <list[float]>" in sweep  # typed, not text
    wide = " ".join(ssgen_here("generate", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "Negative prompt (Infinity). Switti: its null prompt" in wide  # one flag, both families' help


@pytest.mark.parametrize("args, needles", [
    (["--cfg-stop", "11"], ["--cfg-stop must be a whole number in 0..10", "got 11"]),  # an int, not the text "11"
    (["--cfg-stop", "9", "--smooth-start", "12"], ["--smooth-start must be a whole number in 0..9", "got 12"]),
    (["--cfg-start", "6", "--cfg-stop", "4"], ["--cfg-start (6) must not be after cfg_stop (4)"]),
    (["--last-scale-temp", "0"], ["--last-scale-temp must be > 0"]),
    (["--tau", "0.5"], ["--tau is not an option of Switti"]),
    (["-c", "3"], ["text-to-image"]),
])
def test_bad_input_is_one_line_before_any_weights(args, needles, tmp_path, monkeypatch):
    """The registered switti config (reso 512: 10 scales) judges the options before anything downloads."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing could load
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    prompt = [] if "-c" in args else ["-p", "a cat"]
    r = ssgen_here("generate", "-m", "switti", *prompt, *args, "-o", str(tmp_path / "x.png"), "--offline")
    one_line_error(r, *needles)


def test_tiny_switti_end_to_end(tiny_switti, tmp_path):
    """The tiny model's folders (the released layouts) through generate and batch, with Switti's own flags."""
    out = tmp_path / "g.png"
    r = ssgen_here("generate", "-m", str(tiny_switti), "-p", "a cat", "-p", "a red fox", "--cfg-stop", "9",
                   "--smooth-start", "3", "--last-scale-temp", "0.5", "--negative-prompt", "blurry",
                   "-o", str(out), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    with Image.open(out) as im:
        meta = json.loads(im.text["ssgen"])
    first = meta["images"][0]
    assert first["family"] == "switti" and first["prompt"] == "a cat" and first["negative_prompt"] == "blurry"
    assert (first["cfg_stop"], first["smooth_start"], first["last_scale_temp"]) == (9, 3, 0.5)
    assert first["more_smooth"] is True and first["cfg"] == 6.0  # the tiny config's defaults
    assert "CFG is off from scale 9 of 10" in r.stderr
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "a cat"}\n{"prompt": "a dog", "cfg_stop": 10, "smooth_start": 1}\n')
    r = ssgen_here("batch", "-m", str(tiny_switti), "--jobs", str(jobs), "--out", str(tmp_path / "run"),
                   "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "run" / "manifest.jsonl").read_text().splitlines()]
    assert [(x["cfg_stop"], x["smooth_start"]) for x in lines] == [(8, 2), (10, 1)]


def test_tiny_switti_ssg_compare_edit_and_info(tiny_switti, tmp_path):
    """`compare` puts the image without SSG beside the SSG column, and SSG changes it; `edit` keeps the input
    outside the box; `info` (the real entry point) shows a Switti PNG's settings and how to reproduce it."""
    import numpy as np

    from ssgen.output import read_metadata

    cmp = tmp_path / "cmp.png"
    r = ssgen_here("compare", "-m", str(tiny_switti), "-p", "a red fox", "--ssg-beta", "1.0",
                   "--ssg-scales", "2-9", "-o", str(cmp), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    meta = read_metadata(cmp)
    plans = [s.get("ssg") for s in meta["images"]]
    assert plans[0] is None and plans[1]["beta"] == 1.0 and plans[1]["scales"] == [2, 9], plans
    im = np.asarray(Image.open(cmp).convert("RGB")).astype(int)
    g = meta["grid"]
    assert g["cols"] == 2 and len(g["columns"]) == 2
    w = im.shape[1]
    left, right = im[:, : w // 2], im[:, w // 2:]
    assert np.abs(left - right).mean() > 1  # SSG on the Gumbel-mixed scales moves the image

    src = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (256, 256, 3), dtype=np.uint8)).save(src)
    ed = tmp_path / "ed.png"
    r = ssgen_here("edit", "-m", str(tiny_switti), "-p", "a red fox", "--image", str(src), "--box",
                   "0.25,0.25,0.75,0.75", "-n", "2", "-o", str(ed), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    meta = read_metadata(ed)
    assert meta["grid"]["leading"] == ["input", "reconstruction"] and len(meta["images"]) == 2
    assert all(s["family"] == "switti" and s["keep_mask"] == "0.25,0.25,0.75,0.75 inpaint" for s in meta["images"])

    from helpers import ssgen

    r = ssgen("info", str(ed))
    assert r.returncode == 0, r.stderr
    assert "switti" in r.stdout and "a red fox" in r.stdout and "reproduce: alone from seed 0" in r.stdout

"""`ssgen batch`: job files, sharding under torchrun, resume after SIGKILL, manifest, pack-npz.

The CLI runs in this process (Typer's runner) except where a real process is the point: torchrun's
workers, and the run that is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import ssgen_here
from PIL import Image

from ssgen.batch import groups, jobs_from_flags, parse_class_ranges, read_jobs
from ssgen.errors import ConfigError

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # torchrun gives each worker one thread; compare like with like


def here_one_thread(*args: str):
    """`ssgen_here` on one thread, as each torchrun worker (and each ONE_THREAD subprocess) computes."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return ssgen_here(*args)
    finally:
        torch.set_num_threads(n)


def pngs(d):
    return sorted(p.name for p in d.glob("[0-9]*.png"))


def pixels(p):
    return np.asarray(Image.open(p).convert("RGB"))


def manifest(d):
    return [json.loads(line) for line in (d / "manifest.jsonl").read_text().splitlines()]


def test_torchrun_two_processes_equal_single_process(tiny_var, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    args = ["-m", str(tiny_var), "--classes", "0-2", "--per-class", "3", "--seed", "10"]
    r = here_one_thread("batch", *args, "--out", str(single), "--batch-size", "4")
    assert r.returncode == 0, r.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ssgen", "batch", *args, "--out", str(multi), "--batch-size", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HF_HUB_OFFLINE="1", **ONE_THREAD))
    assert r.returncode == 0, r.stderr[-3000:]
    assert pngs(single) == pngs(multi) == [f"{i:06d}.png" for i in range(9)]
    for name in pngs(single):
        assert np.array_equal(pixels(single / name), pixels(multi / name)), name
    m = manifest(multi)
    assert [e["index"] for e in m] == list(range(9))
    assert [e["class"] for e in m] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [e["seed"] for e in m] == list(range(10, 19))
    assert all(e["model"] == "var-tiny" and e["rng"] == "per-image" for e in m)
    assert manifest(single) == m


def test_sigkill_and_resume(tiny_var, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    args = ["-m", str(tiny_var), "--classes", "0-7", "--per-class", "1", "--batch-size", "1"]
    r = here_one_thread("batch", *args, "--out", str(ref))
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([sys.executable, "-m", "ssgen", "batch", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HF_HUB_OFFLINE="1", **ONE_THREAD))
    deadline = time.time() + 120
    while time.time() < deadline and len(pngs(out) if out.exists() else []) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(pngs(out))
    assert 2 <= n_before < 8, "the run must have been killed mid-way"
    r = here_one_thread("batch", *args, "--out", str(out))  # the resume: here, on the killed run's one thread
    assert r.returncode == 0, r.stderr
    assert f"({n_before} of rank 0's 8 were already there)" in r.stdout
    assert pngs(out) == pngs(ref) and len(pngs(out)) == 8
    for name in pngs(ref):
        assert np.array_equal(pixels(ref / name), pixels(out / name)), name
    m = manifest(out)
    assert [e["index"] for e in m] == list(range(8))
    assert not list(out.glob(".*.tmp"))


def test_resume_regenerates_damaged_and_missing(tiny_var, tmp_path):
    out = tmp_path / "out"
    args = ["-m", str(tiny_var), "--classes", "5", "--per-class", "4", "--out", str(out)]
    assert ssgen_here("batch", *args).returncode == 0
    good = pixels(out / "000001.png")
    data = (out / "000001.png").read_bytes()
    (out / "000001.png").write_bytes(data[: len(data) // 2])  # damaged
    (out / "000002.png").unlink()  # missing
    before = (out / "000000.png").stat().st_mtime_ns
    r = ssgen_here("batch", *args)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(pixels(out / "000001.png"), good)
    assert (out / "000002.png").is_file()
    assert (out / "000000.png").stat().st_mtime_ns == before  # complete images are skipped


def test_changed_setting_is_an_error_unless_overwrite(tiny_var, tmp_path):
    out = tmp_path / "out"
    args = ["-m", str(tiny_var), "--classes", "1", "--per-class", "2", "--out", str(out)]
    assert ssgen_here("batch", *args).returncode == 0
    r = ssgen_here("batch", *args, "--cfg", "1.5")
    assert r.returncode == 2 and "another run" in r.stderr and "options" in r.stderr
    r = ssgen_here("batch", *args, "--cfg", "1.5", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert all(e["cfg"] == 1.5 for e in manifest(out))


def test_pack_npz(tiny_var, tmp_path):
    out = tmp_path / "run"
    r = ssgen_here("batch", "-m", str(tiny_var), "--classes", "3-4", "--per-class", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = ssgen_here("pack-npz", str(out))
    assert r.returncode == 0, r.stderr
    arr = np.load(tmp_path / "run.npz")["arr_0"]
    assert arr.shape == (4, 64, 64, 3) and arr.dtype == np.uint8
    for i in range(4):
        assert np.array_equal(arr[i], pixels(out / f"{i:06d}.png"))
    (out / "000003.png").unlink()
    r = ssgen_here("pack-npz", str(out))
    assert r.returncode == 2 and "missing 1 of 4" in r.stderr


def test_job_files_with_overrides(tiny_var, tmp_path):
    jl = tmp_path / "jobs.jsonl"
    jl.write_text('{"class": 1}\n{"class": 2, "seed": 99, "cfg": 1.5}\n\n{"class": 3, "ssg": false}\n'
                  '{"class": 4, "ssg": {"enabled": false, "beta": 2}}\n'
                  '{"class": 5, "ssg": {"beta": "0,0,0.5,1", "scales": "1-3"}}\n')
    out = tmp_path / "out"
    r = ssgen_here("batch", "-m", str(tiny_var), "--jobs", str(jl), "--out", str(out), "--seed", "5")
    assert r.returncode == 0, r.stderr
    m = manifest(out)
    assert [(e["class"], e["seed"], e["cfg"]) for e in m] == [(1, 5, 4.0), (2, 99, 1.5), (3, 7, 4.0), (4, 8, 4.0),
                                                               (5, 9, 4.0)]
    assert m[0]["ssg"] is not None and m[2]["ssg"] is None and m[3]["ssg"] is None  # enabled: false = off
    assert m[4]["ssg"]["beta"] == [0.0, 0.0, 0.5, 1.0] and m[4]["ssg"]["scales"] == [1, 3]


@pytest.mark.parametrize("ssg, msg", [
    ('{"betta": 1}', "unknown field(s) in ssg: section: betta"),
    ('{"beta": "lots"}', "malformed SSG beta 'lots'"),
    ('"on"', "ssg: must be a mapping"),
])
def test_job_ssg_is_checked_before_anything_loads(tiny_var, tmp_path, ssg, msg):
    jl = tmp_path / "jobs.jsonl"
    jl.write_text('{"class": 1}\n{"class": 2, "ssg": %s}\n' % ssg)
    out = tmp_path / "out"
    r = ssgen_here("batch", "-m", str(tiny_var), "--jobs", str(jl), "--out", str(out))
    assert r.exit_code == 2, r.output
    assert f"{jl}:2: {msg}" in r.stderr and len(r.stderr.strip().splitlines()) == 1  # one line naming the job
    assert not out.exists()  # nothing started: no folder, no weights


def test_run_checks_the_folder_before_loading_and_only_rank_0_shows_bars(tiny_var, tmp_path, monkeypatch):
    """batch.run from Python: the run folder is checked before any weights load, and ranks > 0 load
    without download bars (one set of bars per run, on rank 0)."""
    import torch.distributed as dist

    import ssgen.pipeline
    from ssgen import batch
    from ssgen.config import load_config

    class Loaded(Exception):
        pass

    calls = []

    def fake_load(config, **kw):
        calls.append((kw["progress"], (tmp_path / "out0" / "run.json").exists(), (tmp_path / "out1").exists()))
        raise Loaded

    monkeypatch.setattr(ssgen.pipeline, "load", fake_load)
    config, jobs = load_config(tiny_var), jobs_from_flags("1-2", 1, None, 1, 0)
    with pytest.raises(Loaded):
        batch.run(config, jobs, tmp_path / "out0")  # one process: rank 0 of 1
    for name in ("init_process_group", "barrier", "destroy_process_group"):
        monkeypatch.setattr(dist, name, lambda *a, **k: None)
    monkeypatch.setattr(dist, "broadcast_object_list", lambda box, src: None)  # rank 0 found the folder fine
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Loaded):
        batch.run(config, jobs, tmp_path / "out1")
    assert calls == [(True, True, False), (False, True, False)]  # rank 1: no bars, and it leaves the folder to rank 0


def test_read_jobs_formats(tmp_path):
    y = tmp_path / "j.yaml"
    y.write_text("- {class: 7, seed: 3, ssg: {beta: 1.0, scales: [1, 3]}}\n- prompt: a red fox\n")
    jobs = read_jobs(y, base_seed=100)
    assert (jobs[0].cls, jobs[0].seed, jobs[0].overrides["ssg"]["beta"]) == (7, 3, 1.0)
    assert (jobs[1].prompt, jobs[1].seed) == ("a red fox", 101)
    c = tmp_path / "j.csv"
    c.write_text("prompt,seed,cfg,more_smooth\na cat,,3.5,true\n\"a dog, running\",4,,\n")
    jobs = read_jobs(c)
    assert jobs[0].prompt == "a cat" and jobs[0].seed == 0 and jobs[0].overrides == {"cfg": 3.5, "more_smooth": True}
    assert jobs[1].prompt == "a dog, running" and jobs[1].seed == 4 and jobs[1].overrides == {}


@pytest.mark.parametrize("name, text, msg", [
    ("e.jsonl", "", "has no jobs"),
    ("e.yaml", "", "has no jobs"),
    ("e.csv", "", "is empty"),
    ("m.jsonl", '{"class": 1}\n{"class": 2\n', "m.jsonl:2: malformed JSON"),
    ("m.csv", "class,seed\n1,2\nx,3\n", "m.csv:3"),
    ("u.jsonl", '{"class": 1, "colour": "red"}\n', "u.jsonl:1: unknown field(s) colour"),
    ("b.jsonl", '{"class": 1, "prompt": "x"}\n', "exactly one of"),
    ("t.txt", "1\n", "must end in .yaml, .jsonl or .csv"),
])
def test_bad_job_files(tmp_path, name, text, msg):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        read_jobs(p)
    assert msg in str(e.value)


def test_flags_and_groups():
    assert parse_class_ranges("0-2,7") == [0, 1, 2, 7]
    jobs = jobs_from_flags("0-999", 50, None, 1, 0)
    assert len(jobs) == 50_000 and jobs[49].cls == 0 and jobs[50].cls == 1 and jobs[-1].seed == 49_999
    with pytest.raises(ConfigError):
        parse_class_ranges("5-1")
    js = jobs_from_flags("0-4", 1, None, 1, 0)
    js[2].overrides = {"cfg": 2.0}
    assert [[j.index for j in g] for g in groups(js, 2)] == [[0, 1], [2], [3, 4]]


@pytest.mark.parametrize("args, msg", [
    (["--classes", "0-1000"], "class 1000 is out of range"),
    (["--prompts-file", "PROMPTS"], "class-conditional"),
    ([], "nothing to generate"),
    (["--classes", "1", "--preset", "imagenet-fid"], None),  # preset with explicit classes is fine
    (["--preset", "coco"], "unknown preset"),
    (["--classes", "1", "--batch-size", "0"], "--batch-size must be at least 1"),
])
def test_batch_bad_input(tiny_var, tmp_path, args, msg):
    pf = tmp_path / "p.txt"
    pf.write_text("a fox\n")
    args = [str(pf) if a == "PROMPTS" else a for a in args]
    out = tmp_path / "out"
    r = ssgen_here("batch", "-m", str(tiny_var), "--out", str(out), *args)
    if msg is None:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() or not pngs(out)


def test_preset_needs_var(tmp_path):
    cfg = tmp_path / "t2i.yaml"
    cfg.write_text("name: t2i\nfamily: infinity\nweights: {}\n")
    r = ssgen_here("batch", "-m", str(cfg), "--out", str(tmp_path / "o"), "--preset", "imagenet-fid")
    assert r.returncode == 2 and "preset imagenet-fid is for VAR models" in r.stderr


def test_folder_with_foreign_images(tiny_var, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (8, 8)).save(out / "000000.png")
    r = ssgen_here("batch", "-m", str(tiny_var), "--classes", "1", "--out", str(out))
    assert r.returncode == 2 and "did not write" in r.stderr

"""`ssgen eval` through the command line: the table and --json, every bad input as one `error:` line with exit code
2 (before any image goes through the network), offline weights, and `python -m ssgen.tiny inception FILE`.

In this process (Typer's runner) except the entry-point checks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from eval_helpers import noise_images, shared, write_folder, write_npz
from helpers import one_line_error, ssgen, ssgen_here
from PIL import Image

from ssgen.inception import WEIGHTS_URL

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shared(tmp_path_factory)


def ev(files, *args, env=None):
    return ssgen_here("eval", *map(str, args), "--inception", str(files["weights"]), "--cache", str(files["cache"]),
                      "-b", "4", "--device", "cpu", env=env)


def test_json(files):
    r = ev(files, files["a"], "--ref", files["a_npz"], "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert abs(d["metrics"]["fid"]) < 1e-3 and abs(d["metrics"]["sfid"]) < 1e-3
    assert d["metrics"]["precision"] == d["metrics"]["recall"] == 1.0
    assert d["samples"]["count"] == d["ref"]["count"] == 6
    assert d["ref"]["sha256"] == hashlib.sha256(files["a_npz"].read_bytes()).hexdigest()
    assert d["extractor"]["weights_sha256"] == hashlib.sha256(files["weights"].read_bytes()).hexdigest()
    assert {"ssgen", "torch", "numpy", "scipy"} <= set(d["versions"]) and d["seconds"]["total"] > 0
    assert "note: the Inception weights" in r.stderr  # notes go to stderr: stdout is the JSON alone


def test_table(files):
    r = ev(files, files["a"], "--ref", files["b"], "--metrics", "is,precision", "--bootstrap", "10")
    assert r.exit_code == 0, r.stderr
    for needle in ("IS", "precision", "95% interval (10 resamples)", "samples: ", "reference: ", "extractor: ",
                   "versions: ssgen", "time: "):
        assert needle in r.stdout, (needle, r.stdout)
    assert "recall" not in r.stdout.split("samples:")[0]


def test_statistics_only_reference(files, tmp_path):
    stats = write_npz(tmp_path / "ref.npz", mu=np.zeros(2048, np.float32), sigma=np.eye(2048),
                      mu_s=np.zeros(2023, np.float32), sigma_s=np.eye(2023))
    r = ev(files, files["a"], "--ref", stats, "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert list(d["metrics"]) == ["fid", "sfid", "is"] and list(d["skipped"]) == ["precision", "recall"]
    assert "note: skipped precision, recall: the reference" in r.stderr
    one_line_error(ev(files, files["a"], "--ref", stats, "--metrics", "fid,precision"),
                   "cannot compute precision", "statistics only", "can give fid, sfid, is")


@pytest.mark.parametrize("case, needles", [
    ("no_arr_0", ["has no arr_0"]),
    ("float", ["arr_0 is float32", "expected uint8 (N, H, W, 3)"]),
    ("shape", ["arr_0 is uint8 (3, 8, 8)"]),
    ("mixed", ["mixed sizes"]),
    ("one_image", ["holds 1 image(s)"]),
    ("empty", ["holds no images"]),
    ("missing_batch_image", ["first: 000001.png"]),
    ("unknown_metric", ["unknown metric(s) kid"]),
    ("bad_bootstrap", ["--bootstrap must be 0"]),
    ("bad_batch", ["--batch-size must be at least 1"]),
    ("bad_device", ["unknown device"]),
    ("unreadable", ["cannot read the folder", "Permission denied"]),
    ("too_large", ["z.png is too large: 12000x12000", "at most 4096 px a side"]),
    ("bomb", ["z.png is too large", "decompression bomb", "at most 4096 px a side"]),
])
def test_bad_input_is_one_line(files, tmp_path, monkeypatch, forwards, case, needles):
    imgs = noise_images(0, n=3, h=8, w=8)
    samples, extra = files["a"], []
    if case == "no_arr_0":
        samples = write_npz(tmp_path / "x.npz", images=imgs)
    elif case == "float":
        samples = write_npz(tmp_path / "x.npz", arr_0=imgs.astype(np.float32))
    elif case == "shape":
        samples = write_npz(tmp_path / "x.npz", arr_0=imgs[..., 0])
    elif case == "mixed":
        samples = write_folder(tmp_path / "m", imgs)
        Image.fromarray(noise_images(1, n=1, h=9, w=8)[0]).save(samples / "z.png")
    elif case == "one_image":
        samples = write_folder(tmp_path / "one", imgs[:1])
    elif case == "empty":
        samples = tmp_path / "empty"
        samples.mkdir()
    elif case == "missing_batch_image":
        samples = write_folder(tmp_path / "run", imgs, [f"{i:06d}.png" for i in (0, 2)] + ["x.png"])
        (samples / "run.json").write_text(json.dumps({"count": 3}))
    elif case in ("too_large", "bomb"):  # headers claiming 144 and 400 megapixels, no pixels
        from helpers import png_header

        samples = write_folder(tmp_path / "big", imgs)
        png_header(samples / "z.png", *((12000, 12000) if case == "too_large" else (20000, 20000)))
    elif case == "unknown_metric":
        extra = ["--metrics", "fid,kid"]
    elif case == "bad_bootstrap":
        extra = ["--bootstrap", "-3"]
    elif case == "bad_batch":
        extra = ["-b", "0"]
    elif case == "bad_device":
        extra = ["--device", "tpu"]
    elif case == "unreadable":  # root reads a chmod 000 folder anyway: the refusal is simulated
        import ssgen.eval

        samples = write_folder(tmp_path / "locked", imgs)

        def scandir(path):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(ssgen.eval.os, "scandir", scandir)
    r = ssgen_here("eval", str(samples), "--ref", str(files["a"]), "--inception", str(files["weights"]),
                   "--cache", str(tmp_path / "cache"), *extra)
    one_line_error(r, *needles)
    assert forwards == []


def test_wrong_weights_file(files, tmp_path, forwards):
    other = tmp_path / "resnet.pth"
    torch.save({"layer1.weight": torch.zeros(2, 2)}, other)
    one_line_error(ssgen_here("eval", str(files["a"]), "--ref", str(files["b"]), "--inception", str(other)),
                   "is not Inception weights")
    truncated = tmp_path / "weights-tiny.pth"
    truncated.write_bytes(files["weights"].read_bytes()[:1000])
    one_line_error(ssgen_here("eval", str(files["a"]), "--ref", str(files["b"]), "--inception", str(truncated)))
    assert forwards == []


def test_missing_weights_offline(files, tmp_path):
    home = tmp_path / "hf"
    env = {"HF_HOME": str(home), "TORCH_HOME": str(tmp_path / "torch"), "HF_ASSETS_CACHE": None}
    want = home / "assets" / "ssgen" / "inception" / "weights-inception-2015-12-05-6726825d.pth"
    for flags, extra_env in ((["--offline"], {}), ([], {"HF_HUB_OFFLINE": "1"})):
        r = ssgen_here("eval", str(files["a"]), "--ref", str(files["b"]), *flags, env={**env, **extra_env})
        one_line_error(r, str(want), WEIGHTS_URL, "offline")


def test_entry_point(files):
    """The real `ssgen` process: features from the session's cache, JSON on stdout, nothing else."""
    r = ssgen("eval", str(files["a"]), "--ref", str(files["b"]), "--metrics", "is,precision,recall", "--json",
              "--inception", str(files["weights"]), "--cache", str(files["cache"]), "--device", "cpu",
              env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["metrics"]) == {"is", "precision", "recall"} and "Traceback" not in r.stderr
    r = ssgen("eval", str(files["a"]), "--ref", str(files["b"]) + ".nope")
    one_line_error(r, "does not exist")


def test_tiny_inception_command(files, tmp_path):
    out = tmp_path / "inception" / "weights-tiny.pth"  # the same stem: torch.save records it, so the same bytes
    r = subprocess.run([sys.executable, "-m", "ssgen.tiny", "inception", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(files["weights"].read_bytes()).digest()


def test_clip_score_of_a_text_to_image_batch(tiny_hart, tmp_path):
    """`ssgen eval RUN --clip-model DIR`: each image against its prompt from the batch's manifest, alone (no
    reference) and beside ADM's metrics; equal to ssgen.clip_score on the same images and prompts."""
    from helpers import make_tiny_clip

    from ssgen.clip_score import clip_score, load_clip

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox\na lighthouse at dusk\n")
    run = tmp_path / "run"
    r = ssgen_here("batch", "-m", str(tiny_hart), "--prompts-file", str(prompts), "--out", str(run), "--device", "cpu")
    assert r.exit_code == 0, r.output
    clip_dir = make_tiny_clip(tmp_path / "clip")
    r = ssgen_here("eval", str(run), "--clip-model", str(clip_dir), "--json", "--device", "cpu")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["metrics"]["clip"]
    images = [Image.open(run / f"{i:06d}.png").convert("RGB") for i in range(2)]
    want, _ = clip_score(load_clip(str(clip_dir)), images, ["a red fox", "a lighthouse at dusk"])
    assert got == pytest.approx(want, rel=1e-5)


def test_clip_score_needs_prompts(tiny_var, tmp_path):
    run = tmp_path / "run"
    assert ssgen_here("batch", "-m", str(tiny_var), "--classes", "1-2", "--out", str(run), "--device",
                      "cpu").exit_code == 0
    r = ssgen_here("eval", str(run), "--clip-model", str(tmp_path / "none"))
    assert r.exit_code == 2 and "names no prompt" in r.stderr, r.output
    r = ssgen_here("eval", str(run))
    assert r.exit_code == 2 and "give a reference (--ref)" in r.stderr, r.output

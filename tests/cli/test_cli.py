"""The CLI on a tiny random-weight VAR: most tests run it in this process through Typer's runner
(`ssgen_here`); a few run the real entry point as a subprocess (`ssgen`): the console script end to
end, `python -m ssgen`, and `--help` without torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import ssgen, ssgen_here
from PIL import Image


def test_generate_and_info(tiny_var, tmp_path):
    out = tmp_path / "grid.png"
    r = ssgen("generate", "--model", str(tiny_var), "--class", "22", "--class", "980", "-o", str(out),
              "--device", "cpu", "--seed", "5")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # on a non-terminal: no progress bar, no warning, nothing
    im = Image.open(out)
    assert im.size[0] > 2 * 64 and im.size[1] >= 64  # two 64 px images side by side, with padding
    r = ssgen("info", str(out), "--json")
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    assert [m["class"] for m in meta["images"]] == [22, 980]
    assert [m["seed"] for m in meta["images"]] == [5, 6]
    first = meta["images"][0]
    for key in ("model", "cfg", "top_k", "top_p", "more_smooth", "rng", "ssg", "ssgen", "dtype"):
        assert key in first
    r = ssgen("info", str(out))
    assert r.returncode == 0 and "980" in r.stdout


def test_generate_each_and_n(tiny_var, tmp_path):
    out = tmp_path / "g.png"
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-c", "2", "-n", "2", "-o", str(out), "--each",
                   "--no-ssg", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert len(summary["files"]) == 5
    assert [m["class"] for m in summary["images"]] == [1, 1, 2, 2]
    assert [m["seed"] for m in summary["images"]] == [0, 1, 2, 3]
    single = json.loads(ssgen_here("info", str(tmp_path / "g-003.png"), "--json").stdout)
    assert single["class"] == 2 and single["seed"] == 3 and single["ssg"] is None


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--model", "no-such-model", "--class", "1"], "unknown model"),
        (["--class", "1000"], "out of range"),
        (["--class", "-1"], "out of range"),
        (["--class", "1", "-n", "0"], "-n must be at least 1"),
        (["--prompt", "a fox"], "class-conditional"),
        ([], "nothing to generate"),
        (["--class", "1", "--cfg", "abc"], "malformed --cfg"),
        (["--class", "1", "--rng", "weird"], "rng mode"),
        (["--class", "1", "--dtype", "int3"], "unknown dtype"),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_var, tmp_path, args, needle):
    if not any(a in ("--model", "-m") for a in args):
        args = ["--model", str(tiny_var)] + args
    r = ssgen_here("generate", *args, "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.png").exists()


def test_unwritable_output(tiny_var, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: use a path under a file instead
            target = tmp_path / "afile"
            target.write_text("x")
            out = target / "x.png"
        else:
            out = ro / "x.png"
        r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-o", str(out))
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "cannot" in r.stderr
    finally:
        ro.chmod(0o700)


def test_truncated_checkpoint(tiny_var, tmp_path):
    import yaml

    cfg = yaml.safe_load(tiny_var.read_text())
    data = (tiny_var.parent / "transformer.pth").read_bytes()
    (tmp_path / "transformer.pth").write_bytes(data[: len(data) // 2])
    shutil.copy(tiny_var.parent / "vae.pth", tmp_path / "vae.pth")
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    r = ssgen_here("generate", "-m", str(tmp_path / "m.yaml"), "-c", "1", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "truncated or corrupted" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_wrong_model_checkpoint(tiny_var, tmp_path):
    """A config that says depth 3 with a depth-2 file: a clear error naming the field."""
    import yaml

    cfg = yaml.safe_load(tiny_var.read_text())
    cfg["model"]["depth"] = 3
    cfg["weights"] = {r: {"path": str(tiny_var.parent / s["path"])} for r, s in cfg["weights"].items()}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    r = ssgen_here("generate", "-m", str(tmp_path / "m.yaml"), "-c", "1", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "depth=2" in r.stderr and "depth=3" in r.stderr


def test_models_list():
    r = ssgen_here("models", "list", "--json")
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)}
    assert {"var-d16", "var-d20", "var-d24", "var-d30", "var-d36"} <= set(models)
    assert models["var-d36"]["family"] == "var" and models["var-d30"]["cached"] is False


def test_missing_weights_offline(tmp_path):
    r = ssgen_here("generate", "--model", "var-d30", "--class", "207", "-o", str(tmp_path / "x.png"), "--offline",
                   env={"HF_HOME": str(tmp_path / "hf")})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "offline" in r.stderr


def test_version_and_module_entry_point():
    import ssgen as pkg

    r = ssgen("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ssgen {pkg.__version__}"
    r = subprocess.run([sys.executable, "-m", "ssgen", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "generate" in r.stdout and "batch" in r.stdout


def test_help_does_not_import_torch():
    """`ssgen --help` (and every command's) answers without importing torch: it must stay instant."""
    code = ("import sys\nfrom ssgen.cli import app\n"
            "for args in (['--help'], ['generate', '--help'], ['compare', '--help'], ['batch', '--help'],\n"
            "             ['models', 'list', '--help'], ['info', '--help']):\n"
            "    try:\n        app(args)\n    except SystemExit:\n        pass\n"
            "print('torch imported:', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--dse-no-rescale" in r.stdout and "--per-class" in r.stdout  # the shared and the own options
    assert r.stdout.strip().endswith("torch imported: False")


def test_shared_options_on_every_generating_command(tiny_var, tmp_path):
    """generate, compare and batch take the same generation options (declared once)."""
    shared = ["--top-k", "2", "--top-p", "0.9", "--more-smooth", "--cfg", "1,2,3,4", "--ssg-scales", "1-3",
              "--ssg-prior", "area", "--dse-interp", "bicubic", "--dse-no-rescale", "--device", "cpu",
              "--dtype", "float32", "--offline", "--seed", "3"]
    runs = {"generate": ["-c", "7", "-o", str(tmp_path / "g.png"), "--ssg-beta", "0.5"],
            "compare": ["-c", "7", "-o", str(tmp_path / "c.png"), "--ssg-beta", "0.5"],
            "batch": ["--classes", "7", "--out", str(tmp_path / "b"), "--ssg-beta", "0.5"]}
    images = {}
    for cmd, own in runs.items():
        r = ssgen_here(cmd, "-m", str(tiny_var), *shared, *own, *(["--json"] if cmd != "batch" else []))
        assert r.exit_code == 0, (cmd, r.stderr)
        images[cmd] = json.loads(r.stdout)["images"][-1] if cmd != "batch" else json.loads(
            (tmp_path / "b" / "manifest.jsonl").read_text())
    for cmd, s in images.items():
        assert (s["top_k"], s["top_p"], s["more_smooth"], s["cfg"], s["seed"]) == (2, 0.9, True, [1, 2, 3, 4], 3), cmd
        assert s["ssg"] == {"beta": 0.5, "scales": [1, 3], "prior": "area", "interp": "bicubic", "rescale": False}, cmd
    assert Image.open(tmp_path / "b" / "000000.png").tobytes() == Image.open(tmp_path / "g.png").tobytes()
    # the same image, whichever command made it (one image: no grid border)


def test_info_says_how_an_image_reproduces(tmp_path):
    """rng "batch": only the whole batch reproduces an image; rng "per-image": its seed alone."""
    from ssgen.output import save_png

    base = {"model": "var-tiny", "class": 3, "ssg": None, "cfg": 4.0}
    batch = [dict(base, rng="batch", seed=5, batch_index=i, batch_size=4) for i in range(4)]
    save_png(Image.new("RGB", (8, 8)), tmp_path / "grid.png", {"grid": {"rows": 1, "cols": 4}, "images": batch})
    save_png(Image.new("RGB", (8, 8)), tmp_path / "one.png", dict(base, rng="per-image", seed=7, batch_index=1))
    r = ssgen_here("info", str(tmp_path / "grid.png"))
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "reproduce" in line]
    assert len(lines) == 4
    assert "whole batch (seed 5, 4 images" in lines[2] and "image 2" in lines[2]
    r = ssgen_here("info", str(tmp_path / "one.png"))
    lines = [line for line in r.stdout.splitlines() if "reproduce" in line]
    assert len(lines) == 1 and "alone from seed 7" in lines[0] and "batch" not in lines[0]

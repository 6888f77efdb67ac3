"""The CLI answers at once: help, listing, `info` and every bad-input error come before torch,
transformers or any model code is imported (each case in a fresh process, as a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from ssgen.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = [m for m in ("torch", "transformers", "safetensors") if m in sys.modules]
suffixes = (".model", ".family", ".vae", ".text", ".tokenizer", ".diffusion", ".common", "ssgen.pipeline", "ssgen.loop")
models = sorted(m for m in sys.modules if m.startswith("ssgen") and m.endswith(suffixes))
print(json.dumps({"code": code, "heavy": heavy, "model_code": models}), file=sys.stderr)
"""

CASES = [
    (["--help"], 0),
    (["models", "list"], 0),
    (["info", "README.md"], 2),
    (["generate", "-m", "var-d16", "-c", "1", "--rng", "foo"], 2),
    (["generate", "-m", "var-d16", "-c", "1000"], 2),
    (["generate", "-m", "nope", "-c", "1"], 2),
    (["generate", "-m", "infinity-2b", "-p", "a fox", "--tau", "0"], 2),
    (["compare", "-m", "hart-0.7b-1024px", "-p", "a fox", "--ssg-scales", "0-40"], 2),
    (["batch", "-m", "var-d16", "--classes", "0-1000", "--out", "never-written"], 2),
    (["edit", "-m", "var-d16", "--image", "missing.png", "--box", "0,0,0.5,0.5"], 2),
    (["edit", "-m", "var-d16", "--image", "missing.png", "--box", "0.5,0,0.2,1"], 2),
    (["edit", "-m", "hart-0.7b-1024px", "-p", "a fox", "--image", "in.png", "--keep-scales", "1"], 2),
    (["compare", "-m", "var-d16", "-c", "1", "--image", "missing.png", "--keep-scales", "1"], 2),
]


@pytest.mark.parametrize("args,code", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_answers_without_torch(args, code, tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path.parent if args[0] != "info" else None, env=env)
    report = json.loads(r.stderr.strip().splitlines()[-1])
    assert report["code"] in (code, None if code == 0 else code), r.stderr
    assert report["heavy"] == [] and report["model_code"] == [], report

"""Loading holds no second copy: a ~330 MB fp32 VAR-like checkpoint (VAR-d16's blocks, 4 of them; the
transformer as safetensors shards with their index, the VQVAE as a torch .pth) loaded in bf16 in a fresh process
peaks at most 1.15x the loaded model's bytes above what the process held before loading (RssAnon, sampled every
millisecond; file-backed pages of the memory-mapped files do not count). Reading the whole checkpoint before
casting it would peak at about 1.5x. `scripts/load_memory.py all` also measures an Infinity-like model (~6 s
here, ~14 s with it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssAnon from /proc (Linux)")
def test_bf16_load_of_fp32_files_holds_no_second_copy():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "load_memory.py"), "var", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    m = json.loads(r.stdout)["var"]
    assert m["model"] > 150 * 2**20  # the bf16 model really is that big (VAR + VQVAE)
    assert m["ratio"] <= 1.15, m

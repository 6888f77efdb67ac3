"""`hardware.use_huge_pages` (applied when ssgen.pipeline is imported): a fresh large tensor costs a page fault per
2 MB, not per 4 KiB (the 4 KiB faults made batch 16 slower per image than batch 1 on the CPU, README
"Performance"). Measured in fresh interpreters: PyTorch reads the setting once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
MEASURE = """
import resource, torch
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(16 * 1024 * 1024)  # 64 MiB of float32: a fresh mapping (glibc maps 32 MiB and more)
    t.fill_(1.0)  # first touch of every page
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
print(min(faults() for _ in range(3)))
"""


def faults(prelude: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    r = subprocess.run([sys.executable, "-c", prelude + MEASURE], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])


@pytest.mark.skipif(not THP.exists() or "[never]" in THP.read_text(), reason="no transparent huge pages here")
def test_a_fresh_large_tensor_faults_per_huge_page():
    assert faults("") > 10000  # PyTorch alone: 16384 faults of 4 KiB
    assert faults("import ssgen.pipeline\n") < 1000  # 32 huge pages of 2 MB (a few more where the kernel splits)

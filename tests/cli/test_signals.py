"""Killed runs through the real entry point: SIGTERM (torchrun's and schedulers' signal) cleans up as Ctrl-C does
and exits with 143; neither SIGTERM nor SIGKILL leaves a temporary file, an empty output or a claim that blocks
the retry, and the retry (a batch's resume) completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ssgen_here

ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def start(*args: str) -> subprocess.Popen:
    """`python -m ssgen ARGS` (what the `ssgen` script runs: `ssgen.cli.main`) in its own process."""
    return subprocess.Popen([sys.executable, "-m", "ssgen", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)


def wait_for(what, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not what():
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
        assert time.time() < deadline, "the run never got going"
        time.sleep(0.02)


def leftovers(d: Path) -> tuple[list[str], list[str]]:
    """Temporary files (`.NAME.*.tmp`) and empty files in `d`, lock files aside."""
    files = [p for p in d.iterdir() if p.is_file()]
    return ([p.name for p in files if p.name.endswith(".tmp")],
            [p.name for p in files if p.stat().st_size == 0 and not p.name.endswith(".lock")])


def pngs(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("[0-9]*.png"))


def test_sigterm_stops_a_batch_cleanly_and_it_resumes(tiny_var, tmp_path):
    out = tmp_path / "run"
    args = ["batch", "-m", str(tiny_var), "--classes", "0-15", "-b", "1", "--device", "cpu", "--out", str(out)]
    proc = start(*args)
    wait_for(lambda: len(pngs(out) if out.is_dir() else []) >= 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in stderr and "Traceback" not in stderr, stderr
    done = len(pngs(out))
    assert 2 <= done < 16, "the run must have been stopped mid-way"
    assert leftovers(out) == ([], [])
    r = ssgen_here(*args)
    assert r.exit_code == 0, r.output
    assert f"({done} of rank 0's 16 were already there)" in r.stdout
    assert len(pngs(out)) == 16 and leftovers(out) == ([], [])


def test_a_killed_generate_never_blocks_its_retry(tiny_var, tmp_path):
    """Two runs killed while generating (their -o claimed, --save-scales files coming), one by SIGTERM, one by
    SIGKILL (started together: the test waits once): no empty grid file, nothing the retry trips on. SIGTERM also
    leaves no temporary file and no lock, and exits with 143."""
    runs = {}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        d = tmp_path / sig.name
        (d / "out").mkdir(parents=True)
        proc = start("generate", "-m", str(tiny_var), "-c", "1", "-n", "64", "-b", "1", "--device", "cpu",
                     "-o", str(d / "out" / "g.png"), "--save-scales", str(d / "scales"))
        runs[sig] = (proc, d / "out" / "g.png", d / "scales")
    for sig, (proc, _, scales) in runs.items():
        wait_for(lambda scales=scales: scales.is_dir() and len(list(scales.glob("*.png"))) >= 2, proc)
        proc.send_signal(sig)
    for sig, (proc, out, scales) in runs.items():
        _, stderr = proc.communicate(timeout=60)
        assert leftovers(out.parent)[1] == [] and not out.exists(), stderr
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and "terminated (SIGTERM)" in stderr and "Traceback" not in stderr, stderr
            assert list(out.parent.iterdir()) == [] and leftovers(scales)[0] == []  # no temporary file, no lock
        else:
            assert proc.returncode == -signal.SIGKILL
        r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", "2", "--device", "cpu", "-o", str(out))
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 0
        assert [p.name for p in out.parent.iterdir() if not p.name.endswith(".tmp")] == ["g.png"]

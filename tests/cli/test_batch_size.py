"""The default batch size: chosen per device when --batch-size is not given (per-image randomness makes the images
independent of it), said in the load line, and what the calls really hold."""

from __future__ import annotations

import re

import pytest
from helpers import ssgen_here

from ssgen.cli import plan as plan_mod
from ssgen.output import read_metadata

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize("given,rng,device,gpu,want", [
    (3, "per-image", "cpu", False, (3, "--batch-size")),
    (None, "batch", "cpu", False, (20, "--rng batch: one batch")),
    (None, "per-image", "cpu", True, (plan_mod.DEFAULT_BATCH["cpu"], "the CPU default")),  # cpu named: a CPU
    (None, "per-image", "cuda:1", False, (plan_mod.DEFAULT_BATCH["gpu"], "the GPU default")),
    (None, "per-image", "auto", True, (plan_mod.DEFAULT_BATCH["gpu"], "the GPU default")),
    (None, "per-image", "auto", False, (plan_mod.DEFAULT_BATCH["cpu"], "the CPU default")),
])
def test_the_batch_size_follows_the_device(monkeypatch, given, rng, device, gpu, want):
    import ssgen.hardware

    monkeypatch.setattr(ssgen.hardware, "cuda_visible", lambda: gpu)
    assert plan_mod.batch_size_of(given, 20, rng, device) == want


def test_generate_without_batch_size_runs_cpu_default_calls_and_says_so(tiny_var, tmp_path, monkeypatch):
    """-n 10 on the CPU without -b: calls of 8 and 2 (each image's batch_index is its place in its call), and the
    load line names the choice."""
    from ssgen.cli.app import err

    monkeypatch.setattr(err, "_force_terminal", True)  # the load line shows on a terminal only
    out = tmp_path / "g.png"
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", "10", "-o", str(out), "--device", "cpu")
    assert r.exit_code == 0, r.output
    n = plan_mod.DEFAULT_BATCH["cpu"]
    assert f"{n} image(s) per call (the CPU default)" in " ".join(CSI.sub("", r.stderr).split())
    assert [s["batch_index"] for s in read_metadata(out)["images"]] == [i % n for i in range(10)]

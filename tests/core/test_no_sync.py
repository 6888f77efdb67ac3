"""No host-device sync in the next-scale loop: between a call's first `backend.logits` and its `backend.decode`,
no tensor is read back to the host.

On a GPU every such read (`.item()`, `.tolist()`, `if tensor:`, `int(tensor)`, `.cpu()`, `torch.nonzero`, ...)
waits for all queued kernels, so the loop could not run ahead of the GPU (nor be replayed as CUDA graphs).
The tiny models run on the CPU, where the same Python calls are trapped: they raise while the loop runs.
Set-up (text encoding, class embeddings) and the final decode / PNG conversion may read the host freely.
"""

from __future__ import annotations

import pytest
import torch

import ssgen
import ssgen.pipeline
from ssgen import loop

TRAPPED = ["item", "tolist", "__bool__", "__int__", "__float__", "numpy", "cpu", "nonzero"]  # + torch.nonzero


class HostRead(AssertionError):
    """A tensor was read back to the host inside the loop."""


class Trap:
    """Patches the host reads to raise while `armed`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.armed = False
        for name in TRAPPED:
            monkeypatch.setattr(torch.Tensor, name, self._guard(getattr(torch.Tensor, name), f"Tensor.{name}"))
        monkeypatch.setattr(torch, "nonzero", self._guard(torch.nonzero, "torch.nonzero"))

    def _guard(self, real, what: str):
        trap = self

        def guarded(*args, **kwargs):
            if trap.armed:
                raise HostRead(f"{what} inside the next-scale loop: a host-device sync on a GPU")
            return real(*args, **kwargs)

        return guarded


class CudaSyncTrap:
    """torch's own detector: while armed, every synchronizing CUDA call raises, C++ ones included (a blocking
    copy to or from the GPU, an `.item()` inside an op)."""

    def __init__(self):
        self._armed = False

    @property
    def armed(self) -> bool:
        return self._armed

    @armed.setter
    def armed(self, on: bool) -> None:
        self._armed = on
        torch.cuda.set_sync_debug_mode("error" if on else "default")


class Trapped:
    """A backend whose trap is armed from its first `logits` call until `decode`."""

    def __init__(self, backend, trap: Trap | CudaSyncTrap):
        self.backend, self.trap, self.steps = backend, trap, 0

    def __getattr__(self, name):  # grid, guide, sampling, categories, advance, preview
        return getattr(self.backend, name)

    def logits(self, k: int) -> torch.Tensor:
        self.trap.armed = True
        self.steps += 1
        return self.backend.logits(k)

    def decode(self, rng) -> torch.Tensor:
        self.trap.armed = False
        return self.backend.decode(rng)


def trap_loop(monkeypatch: pytest.MonkeyPatch, trap: Trap | CudaSyncTrap) -> list[Trapped]:
    """From now on every `pipe.generate` runs its loop with `trap`; returns the list of its Trapped backends."""
    runs: list[Trapped] = []
    real_run = loop.run

    def run(backend, *args, **kwargs):
        runs.append(Trapped(backend, trap))
        return real_run(runs[-1], *args, **kwargs)

    monkeypatch.setattr(ssgen.pipeline, "run_loop", run)
    return runs


@pytest.fixture
def trapped_loop(monkeypatch):
    trap = Trap(monkeypatch)
    yield trap_loop(monkeypatch, trap)
    trap.armed = False


def test_the_trap_catches_a_host_read(trapped_loop, tiny_var):
    """The trap works: an `.item()` in a backend's sampling step fails the loop (the test below can fail)."""
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="float32")
    real = pipe.family.start

    def start(*args, **kwargs):
        call = real(*args, **kwargs)
        guide = call.backend.guide
        call.backend.guide = lambda k, raw: guide(k, raw) * (raw.amax().item() > -1e30)  # a host read per scale
        return call

    pipe.family.start = start
    with pytest.raises(HostRead, match="Tensor.item inside the next-scale loop"):
        pipe.generate(classes=[1], seed=0)


CASES = {  # family fixture, conditions, options that take every sampling branch (SSG on in all configs)
    "var": ("tiny_var", dict(classes=[1, 7]), dict(top_k=50, top_p=0.9, more_smooth=True)),
    "infinity": ("tiny_inf", dict(prompts=["a red fox", "a cat on a mat"]), dict(top_k=2, top_p=0.9, cfg=3.0)),
    "hart": ("tiny_hart", dict(prompts=["a red fox", "a cat on a mat"]), dict(top_p=0.9, more_smooth=True)),
}


@pytest.mark.parametrize("rng", ["per-image", "batch"])
@pytest.mark.parametrize("family", list(CASES))
def test_loop_reads_nothing_back(trapped_loop, request, family, rng):
    fixture, conds, options = CASES[family]
    pipe = ssgen.load(str(request.getfixturevalue(fixture)), device="cpu", dtype="float32")
    res = pipe.generate(seed=3, rng=rng, **conds, **options)
    (run,) = trapped_loop
    assert run.steps == pipe.num_scales() and not run.trap.armed
    assert res.settings[0]["ssg"] is not None  # SSG's guidance ran inside the trap too
    assert res.pixels.shape[0] == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", list(CASES))
def test_loop_does_not_sync_the_gpu(monkeypatch, request, family):
    """On a GPU, after a first call (cuBLAS and the priors' matrices set up), the loop never waits for the GPU."""
    fixture, conds, options = CASES[family]
    pipe = ssgen.load(str(request.getfixturevalue(fixture)), device="cuda", dtype="float32")
    pipe.generate(seed=3, **conds, **options)
    trap = CudaSyncTrap()
    runs = trap_loop(monkeypatch, trap)
    try:
        pipe.generate(seed=3, **conds, **options)
    finally:
        trap.armed = False
    assert runs[0].steps == pipe.num_scales()


def test_an_edit_reads_nothing_back(trapped_loop, tiny_var):
    """Editing adds the keep step (and, when smoothing, the one-hot of the input's tokens) inside the loop;
    the input is encoded and the per-scale masks built before it."""
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="float32")
    image = torch.rand(3, 64, 64)  # the tiny VAR's 4x4 grid: 64 px
    from PIL import Image

    pil = Image.fromarray((image.permute(1, 2, 0) * 255).to(torch.uint8).numpy())
    res = pipe.generate(classes=[None, 7], image=pil, keep_mask=ssgen.Box(0.25, 0.25, 0.75, 0.75), seed=3,
                        more_smooth=True, top_k=50)
    (run,) = trapped_loop
    assert run.steps == pipe.num_scales() and not run.trap.armed
    assert res.reconstruction is not None

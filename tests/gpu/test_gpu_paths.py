"""What only a CUDA GPU runs: the tiny models on cuda in every dtype, the CUDA generators, and a loop that never
waits for the GPU. Marked `gpu` (`pytest -m gpu tests/gpu`, which scripts/gpu_check.py runs before its timings);
they skip without CUDA."""

from __future__ import annotations

import pytest
import torch

import ssgen
import ssgen.pipeline

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SSG_EVERY_SCALE = dict(beta=0.5, scales=(1, -1))  # the widest range: SSG runs at every scale it can


def same_tokens(a, b) -> bool:
    return len(a.tokens) == len(b.tokens) and all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_every_dtype_gives_finite_images_and_float32_logits(tiny_var, dtype):
    """The run dtype is the weights'; logits and the SSG math stay float32 whatever it is."""
    pipe = ssgen.load(str(tiny_var), device="cuda", dtype=dtype)
    res = pipe.generate(classes=[1, 2, 3], seed=0, ssg=ssgen.SSG(**SSG_EVERY_SCALE), keep_logits=True)
    assert res.pixels.shape[0] == 3 and torch.isfinite(res.pixels).all()
    assert res.logits[-1].dtype == torch.float32


def test_per_image_generators_are_batch_independent_and_repeatable(tiny_var):
    """rng="per-image" on CUDA: an image's tokens do not depend on the rest of its batch, and a call repeats."""
    pipe = ssgen.load(str(tiny_var), device="cuda", dtype="float32")
    both = pipe.generate(classes=[22, 980], seed=3, ssg=False)
    alone = pipe.generate(classes=[980], seeds=[4], ssg=False)
    again = pipe.generate(classes=[22, 980], seed=3, ssg=False)
    assert all(torch.equal(a[1], b[0]) for a, b in zip(both.tokens, alone.tokens))
    assert same_tokens(both, again)


def test_batch_rng_repeats_on_cuda(tiny_var):
    pipe = ssgen.load(str(tiny_var), device="cuda", dtype="float32")
    first = pipe.generate(classes=[1, 2], seed=7, rng="batch", ssg=False)
    second = pipe.generate(classes=[1, 2], seed=7, rng="batch", ssg=False)
    assert same_tokens(first, second)


def test_hart_batch_rng_repeats_on_cuda(tiny_hart):
    """HART's residual diffusion in batch mode: x_T comes from a CPU generator, the steps run on CUDA."""
    pipe = ssgen.load(str(tiny_hart), device="cuda", dtype="float32")
    first = pipe.generate(prompts=["a red fox", "a cat"], seed=7, rng="batch", ssg=False)
    second = pipe.generate(prompts=["a red fox", "a cat"], seed=7, rng="batch", ssg=False)
    assert torch.isfinite(first.pixels).all()
    assert torch.equal(first.pixels, second.pixels)


class SyncChecked:
    """A loop Backend under torch's sync debug mode from its first `logits` until `decode`: every call that
    synchronizes the host with the GPU raises there (C++ ones included). The decode may read the GPU (to PIL)."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):  # grid, guide, sampling, categories, advance, preview
        return getattr(self.backend, name)

    def logits(self, k: int) -> torch.Tensor:
        torch.cuda.set_sync_debug_mode("error")
        return self.backend.logits(k)

    def decode(self, rng) -> torch.Tensor:
        torch.cuda.set_sync_debug_mode("default")
        return self.backend.decode(rng)


def test_the_loop_never_waits_for_the_gpu(tiny_var, monkeypatch):
    """No host-device sync between the first logits and the decode, SSG included, so the GPU never waits for
    Python. The first call sets up cuBLAS and the priors' matrices; the second is checked."""
    pipe = ssgen.load(str(tiny_var), device="cuda", dtype="float32")
    ssg = ssgen.SSG(**SSG_EVERY_SCALE)
    pipe.generate(classes=[1, 2], seed=0, ssg=ssg)
    real_run = ssgen.pipeline.run_loop

    def checked_run(backend, *args, **kwargs):
        try:
            return real_run(SyncChecked(backend), *args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(ssgen.pipeline, "run_loop", checked_run)
    res = pipe.generate(classes=[1, 2], seed=0, ssg=ssg)
    assert res.pixels.shape[0] == 2

"""Switti through the generic loop on a tiny random model (no goldens, no text encoder: per-prompt random
encodings): per-image batch invariance, SSG on Switti's scales (Gumbel-mixed ones included), editing on
soft-only scales, and the AR variant's cache across calls and the CFG switch-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from switti_helpers import stub_pipe, write_tiny

import ssgen
from ssgen.edit import pixels

pytestmark = pytest.mark.usefixtures("one_thread")

A = "a photo of a cat sitting on a red sofa"  # the image under test; other prompts are longer and shorter
LONG, SHORT = "an oil painting of a lighthouse at sunset on a lake", "a dog"
SMOOTH = dict(more_smooth=True, smooth_start=2, cfg_stop=8, last_scale_temp=0.5)  # every kind of scale


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("switti-sampling"))


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    return stub_pipe(tiny_dir / "switti", tiny_dir / "vae")


@pytest.mark.parametrize("kw", [dict(more_smooth=False), SMOOTH], ids=["plain", "smooth"])
def test_an_image_does_not_depend_on_its_batch(pipe, kw):
    """rng="per-image": image (A, seed 7) alone, second of 2 and second of 3 (other prompts, seeds): the same
    tokens and pixels; logits within float noise (1e-4, as VAR and HART: a Linear's rows may be summed in
    another order for another row count), which the Gumbel mix may amplify in the pixels (1e-3)."""
    def gen(prompts, seeds):
        return pipe.generate(prompts=prompts, seeds=seeds, rng="per-image", keep_logits=True, ssg=False, **kw)

    alone = gen([A], [7])
    others = [(gen([SHORT, A, LONG], [1, 7, 2]), 1)] + ([(gen([LONG, A], [8, 7]), 1)] if not kw["more_smooth"] else [])
    for res, j in others:
        for k, (a, b) in enumerate(zip(alone.tokens, res.tokens)):
            assert torch.equal(a[0], b[j]), f"tokens differ at scale {k}"
        assert max((a[0] - b[j]).abs().max().item() for a, b in zip(alone.logits, res.logits)) <= 1e-4
        assert (alone.pixels[0] - res.pixels[j]).abs().max() <= (1e-3 if kw["more_smooth"] else 1e-4)


def test_ssg_changes_nothing_before_its_first_scale(pipe):
    """SSG from scale 3 (a Gumbel-mixed scale here) on Switti's square grids: scales 0-2 as without SSG, and
    scale 3's own logits before SSG too; from scale 3 on what is sampled changes."""
    grid = pipe.family.start(pipe.resolve(prompts=[A])).backend.grid
    assert grid == [(p, p) for p in pipe.family.patch_nums]
    kw = dict(prompts=[A, SHORT], seed=3, keep_logits=True, **SMOOTH)
    seen = {"off": [], "on": []}
    off = pipe.generate(ssg=False, on_scale=lambda k, b: seen["off"].append(b.h.clone()), **kw)
    on = pipe.generate(ssg=ssgen.SSG(beta=1.0, scales=(3, -1)), on_scale=lambda k, b: seen["on"].append(b.h.clone()),
                       **kw)
    for k in range(3):
        assert torch.equal(off.tokens[k], on.tokens[k]) and torch.equal(seen["off"][k], seen["on"][k]), k
    for k in range(4):
        assert torch.equal(off.logits[k], on.logits[k]), k  # the loop keeps the logits before SSG
    assert not torch.allclose(seen["off"][3], seen["on"][3], atol=1e-3)  # the soft mix of the SSG logits
    assert not torch.equal(off.logits[4], on.logits[4])
    assert on.settings[0]["ssg"]["scales"] == [3, -1]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 256x256 input (the tiny model's size, used as is) with some structure, as a file."""
    y, x = np.mgrid[0:256, 0:256]
    a = np.stack([x, y, (x + y) // 2], -1).clip(0, 255).astype(np.uint8)
    p = tmp_path_factory.mktemp("switti-edit") / "in.png"
    Image.fromarray(a).save(p)
    return p


def test_edit_keeps_the_input_on_soft_only_scales(pipe, photo):
    """Keep everything: every scale, Gumbel-mixed ones included (a kept position's soft weights are its input
    token's one-hot), reproduces the input's tokens, and the image is its reconstruction; keep nothing: plain
    generation."""
    backend = pipe.family.start(pipe.resolve(prompts=[A])).backend
    tokens, recon = backend.encode(pixels(Image.open(photo)))
    kw = dict(prompts=[A], seed=1, ssg=False, smooth_start=0, more_smooth=True, cfg_stop=10)
    res = pipe.generate(image=photo, keep_mask=torch.ones(16, 16), **kw)
    for k, t in enumerate(res.tokens):
        assert torch.equal(t, tokens[k]), f"scale {k}"
    assert (res.reconstruction - recon).abs().max() <= 1e-6
    assert (res.pixels - res.reconstruction).abs().max() <= 1e-4
    plain = pipe.generate(**kw)
    nothing = pipe.generate(image=photo, keep_mask=torch.zeros(16, 16), **kw)
    assert all(torch.equal(a, b) for a, b in zip(plain.tokens, nothing.tokens))
    assert torch.equal(plain.pixels, nothing.pixels)


def test_ar_variant_through_the_loop(tmp_path, tiny_dir):
    """The AR model's KV cache through whole calls: CFG switched off mid-way (the cache keeps the conditional
    rows), a second call with the same seed gives the same image (the cache starts empty), another batch size
    reuses nothing stale."""
    from ssgen.backends.switti.model import SwittiConfig
    from ssgen.backends.switti.tiny import write_transformer

    write_transformer(tmp_path / "switti", SwittiConfig(depth=2, reso=256, use_ar=True))
    ar = stub_pipe(tmp_path / "switti", tiny_dir / "vae")
    rows = []
    kw = dict(prompts=[A, SHORT], seed=4, ssg=False, **SMOOTH)
    first = ar.generate(on_scale=lambda k, b: rows.append(b.ctx.rows), **kw)
    assert rows == [4] * 8 + [2] * 2
    one = ar.generate(prompts=[A], seed=4, ssg=False, **SMOOTH)
    again = ar.generate(**kw)
    assert all(torch.equal(a, b) for a, b in zip(first.tokens, again.tokens))
    assert torch.equal(first.pixels, again.pixels)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(one.tokens, first.tokens))  # per-image: image 0 alone
    assert ar.family.model.blocks[0].attn.cache.k is None  # decode released the cache

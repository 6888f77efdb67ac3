"""The Python API on a tiny random-weight VAR: RNG modes, defaults, validation."""

from __future__ import annotations

import pytest
import torch

import ssgen
from ssgen.errors import ConfigError


@pytest.fixture(scope="module")
def pipe(tiny_var):
    return ssgen.load(str(tiny_var), device="cpu", dtype="float32")


def test_result_shapes(pipe):
    res = pipe.generate(classes=[3, 7], seed=11, ssg=False)
    assert res.pixels.shape == (2, 3, 64, 64) and res.pixels.dtype == torch.float32
    assert 0.0 <= res.pixels.min() and res.pixels.max() <= 1.0
    assert [t.shape for t in res.tokens] == [(2, 1), (2, 4), (2, 9), (2, 16)]
    assert all(t.dtype == torch.int64 for t in res.tokens)
    assert res.seeds == [11, 12]
    assert [im.size for im in res.images] == [(64, 64), (64, 64)]


def test_per_image_rng_is_batch_independent(pipe):
    """Two images generated in one batch equal the same seeds generated alone."""
    both = pipe.generate(classes=[22, 980], seed=3, ssg=False, top_k=0, top_p=0.0)
    a = pipe.generate(classes=[22], seeds=[3], ssg=False, top_k=0, top_p=0.0)
    b = pipe.generate(classes=[980], seeds=[4], ssg=False, top_k=0, top_p=0.0)
    for k in range(len(both.tokens)):
        assert torch.equal(both.tokens[k][0], a.tokens[k][0])
        assert torch.equal(both.tokens[k][1], b.tokens[k][0])
    assert torch.allclose(both.pixels[0], a.pixels[0], atol=1e-5)
    assert torch.allclose(both.pixels[1], b.pixels[0], atol=1e-5)


def test_batch_rng_depends_on_batch(pipe):
    """The official order draws one stream for the whole batch: image 1 differs from its solo run."""
    both = pipe.generate(classes=[22, 980], seed=3, ssg=False, rng="batch", top_k=0, top_p=0.0)
    solo = pipe.generate(classes=[980], seed=3, ssg=False, rng="batch", top_k=0, top_p=0.0)
    assert not all(torch.equal(both.tokens[k][1], solo.tokens[k][0]) for k in range(1, 4))


def test_seed_changes_and_repeats(pipe):
    a = pipe.generate(classes=[5], seed=1, ssg=False)
    b = pipe.generate(classes=[5], seed=1, ssg=False)
    c = pipe.generate(classes=[5], seed=2, ssg=False)
    assert torch.equal(a.pixels, b.pixels)
    assert not torch.equal(a.pixels, c.pixels)


def test_more_smooth_changes_image_not_tokens(pipe):
    plain = pipe.generate(classes=[5], seed=1, ssg=False)
    smooth = pipe.generate(classes=[5], seed=1, ssg=False, more_smooth=True)
    assert torch.equal(plain.tokens[0], smooth.tokens[0])  # the first draw is the same
    assert not torch.equal(plain.pixels, smooth.pixels)


def test_config_defaults_recorded(pipe):
    res = pipe.generate(classes=[1], ssg=False)
    s = res.settings[0]
    assert (s["cfg"], s["top_k"], s["top_p"], s["more_smooth"]) == (4.0, 900, 0.95, False)
    res = pipe.generate(classes=[1], ssg=False, cfg=1.5, top_k=10)
    assert (res.settings[0]["cfg"], res.settings[0]["top_k"]) == (1.5, 10)


def test_cfg_list_per_scale(pipe):
    """A cfg list gives the guidance weight of every scale; the official ramp is the same as its list."""
    K = pipe.num_scales()
    ramp = pipe.generate(classes=[9], seed=0, ssg=False, cfg=3.0)
    listed = pipe.generate(classes=[9], seed=0, ssg=False, cfg=[3.0 * k / (K - 1) for k in range(K)])
    assert all(torch.equal(a, b) for a, b in zip(ramp.tokens, listed.tokens))
    with pytest.raises(ConfigError, match="scales"):
        pipe.generate(classes=[9], cfg=[1.0, 2.0])


@pytest.mark.parametrize("kw, msg", [
    (dict(classes=[1000]), "out of range"),
    (dict(classes=[]), "nothing to generate"),
    (dict(classes=[1], rng="nope"), "rng mode"),
    (dict(classes=[1], seeds=[1, 2]), "one seed per image"),
    (dict(classes=[1], top_p=1.5), "top_p"),
    (dict(classes=[1], tau=0.5), "tau is not an option of VAR"),
])
def test_bad_arguments(pipe, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        pipe.generate(**kw)


def test_bf16_runs_and_keeps_fp32_logits(tiny_var):
    p = ssgen.load(str(tiny_var), device="cpu", dtype="bfloat16")
    res = p.generate(classes=[1, 2], seed=0, ssg=False, keep_logits=True)
    assert res.pixels.dtype == torch.float32 and res.logits[0].dtype == torch.float32
    assert torch.isfinite(res.pixels).all()


def test_old_checkpoint_without_scale_mul_is_detected(tiny_var, tmp_path):
    """Checkpoints from before VAR's L2-normalised attention have no scale_mul_1H11: run them with the
    old scaled attention even when the config says attn_l2_norm: true."""
    import shutil

    import yaml

    sd = torch.load(tiny_var.parent / "transformer.pth", weights_only=True)
    old = {k: v for k, v in sd.items() if not k.endswith("scale_mul_1H11")}
    assert len(old) < len(sd)
    torch.save(old, tmp_path / "transformer.pth")
    shutil.copy(tiny_var.parent / "vae.pth", tmp_path / "vae.pth")
    cfg = yaml.safe_load(tiny_var.read_text())
    assert cfg["model"]["attn_l2_norm"] is True
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(cfg))
    p = ssgen.load(str(tmp_path / "old.yaml"), device="cpu", dtype="float32")
    assert p.family.var_cfg.attn_l2_norm is False
    res = p.generate(classes=[1], seed=0, ssg=False)
    assert torch.isfinite(res.pixels).all()


def test_batch_rng_records_what_reproduces_an_image(pipe):
    """rng="batch": one generator seeded with the first seed drives the batch, so each image records the
    batch seed, its position and the batch size; re-running that batch reproduces it, its own seed alone does not."""
    res = pipe.generate(classes=[5, 6, 7], seed=40, ssg=False, rng="batch")
    assert [(s["seed"], s["batch_index"], s["batch_size"], s["rng"]) for s in res.settings] == [
        (40, 0, 3, "batch"), (40, 1, 3, "batch"), (40, 2, 3, "batch")]
    again = pipe.generate(classes=[5, 6, 7], seed=res.settings[2]["seed"], ssg=False, rng="batch")
    assert all(torch.equal(a[2], b[2]) for a, b in zip(res.tokens, again.tokens))
    per_image = pipe.generate(classes=[5, 6], seed=40, ssg=False)
    assert [s["seed"] for s in per_image.settings] == [40, 41] and "batch_size" not in per_image.settings[0]


def test_resolve_then_run_is_generate(tiny_var):
    """The README's two-step form: pipe.resolve(...) checks a call without running it; pipe.run(request) gives
    what pipe.generate(...) with the same arguments gives; a bad option fails at resolve."""
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="float32")
    req = pipe.resolve(classes=[207 % 10], seed=3, cfg=2.0)
    assert req.seeds == (3,) and req.options["cfg"] == 2.0 and req.num_scales == pipe.num_scales()
    a, b = pipe.run(req), pipe.generate(classes=[207 % 10], seed=3, cfg=2.0)
    assert all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens)) and torch.equal(a.pixels, b.pixels)
    with pytest.raises(ssgen.SSGenError, match="cfg must be"):
        pipe.resolve(classes=[1], cfg=-1.0)

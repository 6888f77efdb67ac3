"""The Switti transformer's structure beyond the goldens' variant (non-AR, RoPE, SwiGLU, crop conditioning), and
loading: the AR variant's KV cache against a full block-causal forward, the variants without RoPE, SwiGLU or
crop conditioning (upstream's position table and GELU MLP), and checkpoints that do not fit."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from switti_helpers import stub_pipe, write_tiny

from ssgen.backends.switti.model import Switti, SwittiConfig, apply_rope, fourier, heads, qk_norm
from ssgen.config import ModelConfig
from ssgen.errors import ConfigError, WeightsError

pytestmark = pytest.mark.usefixtures("one_thread")


def random_context(model: Switti, R: int, seed: int = 0):
    """A Context of R rows from random text (padding after a few tokens) and pooled features."""
    g = torch.Generator().manual_seed(seed)
    bias = torch.zeros(R, 77)
    for r in range(R):
        bias[r, 3 + 5 * r:] = float("-inf")
    return model.context(torch.randn(R, 77, 2048, generator=g), bias, torch.randn(R, 1280, generator=g))


def full_forward(model: Switti, xs: list[torch.Tensor], ctx) -> list[torch.Tensor]:
    """Every scale at once, without a cache, under upstream's training mask (models/switti.py:171-189): block-
    causal (d >= dT) with use_ar, block-diagonal (d == dT) without -> per-scale logits. Written from the blocks'
    parts, as upstream's training forward computes, to check the per-scale inference path against."""
    x = torch.cat(xs, dim=1)  # (R, L, C)
    sizes = [t.shape[1] for t in xs]
    d = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    allowed = d[:, None] >= d[None, :] if model.cfg.use_ar else d[:, None] == d[None, :]
    mask = torch.zeros(allowed.shape).masked_fill_(~allowed, float("-inf"))
    rope = None
    if model.cfg.rope:
        cos, sin = zip(*(model.rope(k) for k in range(len(xs))))
        rope = torch.cat(cos), torch.cat(sin)
    for blk, mod, (k, v, bias) in zip(model.blocks, ctx.mods, ctx.text):
        g1, g2, s1, s2, b1, b2 = mod
        a = blk.attn
        R, L, C = x.shape
        q, kk, vv = a.to_qkv(blk.self_attention_norm1(x).mul(s1).add(b1)).view(R, L, 3, C).unbind(2)
        q, kk, vv = heads(qk_norm(q), a.heads), heads(qk_norm(kk), a.heads), heads(vv, a.heads)
        if rope is not None:
            q, kk = apply_rope(q, *rope), apply_rope(kk, *rope)
        o = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, scale=a.scale)
        x = x + blk.self_attention_norm2(a.proj(o.transpose(1, 2).reshape(R, L, C))).mul(g1)
        x = x + blk.cross_attention_norm2(blk.cross_attn(blk.cross_attention_norm1(x), k, v, bias))
        x = x + blk.ffn_norm2(blk.ffn(blk.ffn_norm1(x).mul(s2).add(b2))).mul(g2)
    return list(model.head(model.head_nm(x, ctx.head_mod)).float().split(sizes, dim=1))


def inputs(model: Switti, ctx, seed: int = 1) -> list[torch.Tensor]:
    """Scale 0's real input and random inputs for the other scales (R, pn**2, C)."""
    g = torch.Generator().manual_seed(seed)
    R, C = ctx.rows, model.cfg.width
    return [model.first_input(ctx)] + [torch.randn(R, pn * pn, C, generator=g) for pn in model.patch_nums[1:]]


@pytest.mark.parametrize("use_ar", [True, False])
@torch.inference_mode()
def test_per_scale_path_equals_the_full_masked_forward(use_ar):
    """AR: the KV cache over scales computes the block-causal forward; non-AR: each scale alone computes the
    block-diagonal one. Also after dropping the unconditional rows mid-way (CFG off), caches included."""
    model = Switti(SwittiConfig(depth=2, reso=256, use_ar=use_ar)).init_random(3).eval()
    ctx = random_context(model, R=4)
    xs = inputs(model, ctx)
    ref = full_forward(model, xs, ctx)
    model.reset_cache()
    got = [model.forward_scale(x, ctx, k) for k, x in enumerate(xs)]
    for k, (a, b) in enumerate(zip(got, ref)):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max(), f"scale {k}"
    model.reset_cache()
    c = ctx
    for k, x in enumerate(xs):
        if k == 6:
            c = model.keep_rows(c, 2)
        out = model.forward_scale(x[: c.rows], c, k)
        assert out.shape[0] == c.rows and (out - ref[k][: c.rows]).abs().max() <= 1e-4 * ref[k].abs().max()
    # the structure itself: an AR scale sees the earlier scales, a non-AR one does not
    other = [xs[0]] + [x + 1 for x in xs[1:3]] + xs[3:]
    changed = full_forward(model, other, ctx)[4]
    assert torch.equal(changed, ref[4]) != use_ar


def test_kv_cache_is_kept_for_the_next_batch_and_released():
    model = Switti(SwittiConfig(depth=2, reso=256, use_ar=True)).init_random(0).eval()
    with torch.inference_mode():
        ctx = random_context(model, R=2)
        for k, x in enumerate(inputs(model, ctx)[:3]):
            model.forward_scale(x, ctx, k)
        cache = model.blocks[0].attn.cache
        assert cache.n == 1 + 4 + 9 and cache.k.shape == (2, 2, 680, 64)
        model.reset_cache()
        assert cache.n == 0 and cache.k is not None
        model.reset_cache(release=True)
        assert cache.k is None


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("switti-load"))


KW = dict(prompts=["a red fox"], seed=1, ssg=False, more_smooth=False, keep_logits=True)


@pytest.fixture(scope="module")
def base_result(tiny_dir):
    return stub_pipe(tiny_dir / "switti", tiny_dir / "vae").generate(**KW)


@pytest.mark.parametrize("over, present, absent", [
    (dict(rope=False), ["pos_1LC"], []),
    (dict(use_swiglu_ffn=False), ["blocks.0.ffn.fc1.weight", "blocks.0.ffn.fc2.bias"],
     ["blocks.0.ffn.gate_proj.weight"]),
    (dict(use_crop_cond=False), [], ["crop_proj.weight", "crop_embed.weight", "blocks.0.crop_cond_scales"]),
    (dict(use_ar=True), [], []),
])
def test_variants_load_and_generate(over, present, absent, tiny_dir, base_result, tmp_path):
    """Upstream builds an absolute position table without RoPE (models/switti.py:89-100), its GELU FFN (fc1, fc2,
    hidden 4C) without SwiGLU, no crop embedding without crop conditioning; each variant's folder loads through
    the released path and generates, and its logits differ from the base model's (the switch is used)."""
    from ssgen.backends.switti.tiny import write_transformer

    write_transformer(tmp_path / "switti", SwittiConfig(depth=2, reso=256, **over), seed=0)
    sd = load_file(str(tmp_path / "switti" / "model.safetensors"))
    assert set(present) <= set(sd) and not set(absent) & set(sd)
    if "use_swiglu_ffn" in over:
        assert sd["blocks.0.ffn.fc1.weight"].shape == (512, 128)
    pipe = stub_pipe(tmp_path / "switti", tiny_dir / "vae")
    assert pipe.family.cfg.fields() == {**SwittiConfig(depth=2, reso=256).fields(), **over}
    res = pipe.generate(**KW)
    assert torch.equal(res.logits[0], base_result.logits[0]) == ("use_ar" in over)  # AR: same weights, nothing before
    assert not torch.equal(res.logits[-1], base_result.logits[-1])


def test_crop_embedding_in_float32_as_upstream():
    """((x * w) * 2) * float32(pi) in float32, then [sin, cos] (diffusers' GaussianFourierProjection); a bf16
    model keeps crop_embed.weight in float32 and computes it the same."""
    w = torch.randn(16, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([512, 512, 0, 0])
    arg = x.float()[:, None] * w[None, :]
    arg = arg * 2
    arg = arg * torch.tensor(math.pi, dtype=torch.float32)
    assert torch.equal(fourier(x, w), torch.cat((arg.sin(), arg.cos()), dim=-1))
    in64 = (x.double()[:, None] * w.double()[None, :] * 2 * math.pi)
    assert (fourier(x, w).double() - torch.cat((in64.sin(), in64.cos()), -1)).abs().max() > 1e-5  # order matters


def test_bf16_load_keeps_the_crop_weights_float32(tiny_dir):
    from ssgen.backends.switti.family import load_transformer

    model, _, _ = load_transformer(tiny_dir / "switti", ModelConfig(name="t", family="switti"), torch.device("cpu"),
                                   torch.bfloat16)
    assert model.crop_embed.weight.dtype == torch.float32 and model.head.weight.dtype == torch.bfloat16
    with torch.inference_mode():
        crop = model.crop_cond(2)
    assert crop.dtype == torch.bfloat16 and crop.shape == (2, 128)


# ------------------------------------------------------------------------------------------------
# checkpoints that do not fit
# ------------------------------------------------------------------------------------------------


def edited(tiny_dir, tmp_path, sd_edit=None, cfg_edit=None):
    """A copy of the tiny transformer folder with its state dict and/or config.json edited."""
    out = tmp_path / "switti"
    shutil.copytree(tiny_dir / "switti", out)
    if sd_edit:
        sd = load_file(str(out / "model.safetensors"))
        sd_edit(sd)
        save_file(sd, str(out / "model.safetensors"))
    if cfg_edit:
        c = json.loads((out / "config.json").read_text())
        cfg_edit(c)
        (out / "config.json").write_text(json.dumps(c))
    return out


def load_error(path, vae, **model) -> str:
    with pytest.raises((WeightsError, ConfigError)) as e:
        stub_pipe(path, vae, **model)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_key_is_an_error_naming_it(tiny_dir, tmp_path):
    p = edited(tiny_dir, tmp_path, sd_edit=lambda sd: sd.pop("blocks.1.ffn.up_proj.weight"))
    assert "missing 1 key(s): blocks.1.ffn.up_proj.weight" in load_error(p, tiny_dir / "vae")


def test_wrong_shape_is_an_error_naming_it(tiny_dir, tmp_path):
    p = edited(tiny_dir, tmp_path, sd_edit=lambda sd: sd.update({"head.bias": torch.zeros(4095)}))
    msg = load_error(p, tiny_dir / "vae")
    assert "head.bias has shape (4095,)" in msg and "(4096,)" in msg


def test_unexpected_keys_are_ignored_with_a_note_buffers_silently(tiny_dir, tmp_path):
    """As the Hub mixin (strict=False): an extra key is ignored (said in a note); the training buffers are
    dropped before anything is read and never mentioned."""
    p = edited(tiny_dir, tmp_path, sd_edit=lambda sd: sd.update({"extra.weight": torch.zeros(3)}))
    pipe = stub_pipe(p, tiny_dir / "vae")
    assert pipe.family.notes == ["ignored 1 key(s) of switti/model.safetensors the model does not use (extra.weight)"]
    assert stub_pipe(tiny_dir / "switti", tiny_dir / "vae").family.notes == []


@pytest.mark.parametrize("cfg_edit, needle", [
    (lambda c: c.update(use_swiglu_ffn=False), "use_swiglu_ffn=True but"),
    (lambda c: c.update(reso=1024), "num_scales=10 but"),
    (lambda c: c.update(depth=3), "depth=2 but"),
    (lambda c: c.update(rope=False), "rope=True but"),
    (lambda c: c.update(use_crop_cond=False), "use_crop_cond=True but"),
    (lambda c: c.update(reso=300), "reso must be 256, 512 or 1024"),
    (lambda c: c.update(depth="2"), "depth must be a whole number"),
])
def test_config_json_must_fit_the_weights(tiny_dir, tmp_path, cfg_edit, needle):
    assert needle in load_error(edited(tiny_dir, tmp_path, cfg_edit=cfg_edit), tiny_dir / "vae")


def test_missing_reso_is_upstreams_default_512(tiny_dir, tmp_path):
    """The 512 px releases predate the `reso` key: SwittiHF's default 512 applies (here: the weights have 10
    scales of the 256 schedule, so the lengths agree but 512 is what is read)."""
    p = edited(tiny_dir, tmp_path, cfg_edit=lambda c: c.pop("reso"))
    assert stub_pipe(p, tiny_dir / "vae").family.cfg.reso == 512


def test_model_section_must_fit_config_json(tiny_dir):
    assert "gives depth=2 but config switti-test says depth=3" in load_error(tiny_dir / "switti", tiny_dir / "vae",
                                                                            depth=3)
    assert stub_pipe(tiny_dir / "switti", tiny_dir / "vae", reso=256, use_ar=False).num_scales() == 10


def test_folders_swapped_are_named(tiny_dir):
    assert "Switti's VAE folder" in load_error(tiny_dir / "vae", tiny_dir / "vae")
    assert "is a Switti transformer folder" in load_error(tiny_dir / "switti", tiny_dir / "switti")


def test_weights_file_missing_from_the_folder(tiny_dir, tmp_path):
    p = tmp_path / "switti"
    p.mkdir()
    shutil.copy(tiny_dir / "switti" / "config.json", p)
    assert "holds no model.safetensors or pytorch_model.bin" in load_error(p, tiny_dir / "vae")

"""VAR model conformance against the official implementation (teacher-forced, model level).

Uses the goldens of var/tiny256 (see goldens/README.md): a depth-2 VAR and a ch=32 VQVAE saved in
the official checkpoint formats, and the tokens/logits/f_hat/images the official code produced.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import os
from pathlib import Path

import pytest
import torch

from ssgen.backends.var.model import IGNORED_KEYS_VAR, VAR, VARConfig, fields_from_state_dict
from ssgen.backends.var.vae import IGNORED_KEYS_VAE, VQVAE, VQVAEConfig, phi_index

REPO = Path(__file__).resolve().parents[3]
GOLDENS = Path(os.environ.get("SSGEN_GOLDENS", REPO.parent / "shared" / "goldens"))
TINY = GOLDENS / "var" / "tiny256"
TOL = 1e-4


def _require_goldens():
    if not (TINY / "runs.safetensors").is_file():
        msg = f"VAR goldens not found at {TINY} (set SSGEN_GOLDENS to the goldens folder)"
        if os.environ.get("SSGEN_REQUIRE_GOLDENS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def _drop(sd: dict, patterns) -> dict:
    return {k: v for k, v in sd.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


@pytest.fixture(scope="module")
def tiny():
    _require_goldens()
    from safetensors.torch import load_file

    arch = json.loads((TINY / "model.json").read_text())
    with torch.device("meta"):
        model = VAR(VARConfig.from_dict(arch))
        vae = VQVAE(VQVAEConfig.from_dict(arch))
    model.load_state_dict(_drop(_load(TINY / "transformer.pth"), IGNORED_KEYS_VAR), strict=True, assign=True)
    vae.load_state_dict(_drop(_load(TINY / "vae.pth"), IGNORED_KEYS_VAE), strict=True, assign=True)
    runs = {r["name"]: r for r in json.loads((TINY / "runs.json").read_text())["runs"]}
    return model.eval(), vae.eval(), runs, load_file(TINY / "runs.safetensors")


def teacher_force(model: VAR, vae: VQVAE, classes, tokens, with_logits=True):
    """Feed the given per-scale tokens; return the raw (2B, l, V) logits per scale and the final f_hat."""
    pns = model.patch_nums
    K, B, Cv = len(pns), len(classes), vae.cfg.latent_channels
    model.reset_cache()
    cond = model.cond_embed(torch.tensor(classes))  # (2B, C)
    x = model.first_input(cond)  # (2B, 1, C)
    f_hat = torch.zeros(B, Cv, pns[-1], pns[-1])
    logits = []
    for k, pn in enumerate(pns):
        if with_logits:
            logits.append(model.forward_scale(x, cond))
        h = vae.embed(tokens[k]).transpose(1, 2).reshape(B, Cv, pn, pn)
        f_hat = vae.add_scale(f_hat, h, k, K)
        if k < K - 1 and with_logits:
            x = model.next_input(vae.next_map(f_hat, pns[k + 1]), k + 1)
    return logits, f_hat


def cfg_mix(raw: torch.Tensor, cfg: float, k: int, K: int) -> torch.Tensor:
    B = raw.shape[0] // 2
    t = cfg * k / (K - 1)
    return (1 + t) * raw[:B] - t * raw[B:]


@torch.inference_mode()
def test_teacher_forcing_reproduces_logits(tiny):
    model, vae, runs, gold = tiny
    run = runs["greedy_cfg4"]
    K = len(model.patch_nums)
    tokens = [gold[f"greedy_cfg4/tokens/{k}"] for k in range(K)]
    raw, _ = teacher_force(model, vae, run["classes"], tokens)
    n_checked = 0
    for k in range(K):
        assert raw[k].dtype == torch.float32
        mixed = cfg_mix(raw[k], run["cfg"], k, K)
        key = f"greedy_cfg4/logits/{k}"
        if key in gold:
            err = (mixed - gold[key]).abs().max().item()
            assert err <= TOL, f"scale {k}: max |logits - golden| = {err:.2e}"
            n_checked += 1
        assert torch.equal(mixed.argmax(-1), tokens[k]), f"scale {k}: greedy tokens differ"
    assert n_checked == 8


@torch.inference_mode()
def test_teacher_forcing_reproduces_fhat_and_image(tiny):
    model, vae, runs, gold = tiny
    K = len(model.patch_nums)
    checked = 0
    for name, run in runs.items():
        if run["more_smooth"]:
            continue  # its f_hat comes from soft (Gumbel) embeddings, not from the tokens
        tokens = [gold[f"{name}/tokens/{k}"] for k in range(K)]
        _, f_hat = teacher_force(model, vae, run["classes"], tokens, with_logits=False)
        err = (f_hat - gold[f"{name}/fhat"]).abs().max().item()
        assert err <= TOL, f"{name}: max |f_hat - golden| = {err:.2e}"
        img = vae.decode(gold[f"{name}/fhat"])
        assert img.dtype == torch.float32 and img.shape == gold[f"{name}/image"].shape
        err = (img - gold[f"{name}/image"]).abs().max().item()
        assert err <= TOL, f"{name}: max |image - golden| = {err:.2e}"
        checked += 1
    assert checked == 4


def test_phi_index_table():
    assert [phi_index(k, 10) for k in range(10)] == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    with torch.device("meta"):
        vae = VQVAE(VQVAEConfig())
    assert [vae.phi_index(k, 10) for k in range(10)] == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]


def test_strict_loading_and_ignored_keys(tiny):
    model, vae, _, _ = tiny
    sd = _load(TINY / "transformer.pth")
    ignored = set(sd) - set(_drop(sd, IGNORED_KEYS_VAR))
    assert ignored == {"lvl_1L", "attn_bias_for_masking", "blocks.0.attn.zero_k_bias", "blocks.1.attn.zero_k_bias"}
    vsd = _load(TINY / "vae.pth")
    vignored = set(vsd) - set(_drop(vsd, IGNORED_KEYS_VAE))
    assert vignored == {k for k in vsd if k.startswith(("encoder.", "quant_conv."))} | {"quantize.ema_vocab_hit_SV"}

    arch = json.loads((TINY / "model.json").read_text())
    good = _drop(sd, IGNORED_KEYS_VAR)
    f = fields_from_state_dict(sd)
    for name in ("depth", "width", "heads", "vocab_size", "num_classes", "shared_aln", "attn_l2_norm"):
        assert f[name] == arch[name], name
    missing = dict(good)
    del missing["blocks.1.ffn.fc2.bias"]
    with torch.device("meta"):
        fresh = VAR(VARConfig.from_dict(arch))
    with pytest.raises(RuntimeError, match=r"blocks\.1\.ffn\.fc2\.bias"):
        fresh.load_state_dict(missing, strict=True, assign=True)
    extra = dict(good, **{"blocks.0.attn.unknown_thing": torch.zeros(1)})
    with pytest.raises(RuntimeError, match=r"blocks\.0\.attn\.unknown_thing"):
        fresh.load_state_dict(extra, strict=True, assign=True)
    with pytest.raises(RuntimeError, match="lvl_1L"):  # the training buffers must be dropped first
        fresh.load_state_dict(sd, strict=True, assign=True)


def test_real_size_key_sets():
    """The meta-built real models have the released files' keys (minus the ignored ones) and sizes."""
    with torch.device("meta"):
        d16, vae = VAR(VARConfig(depth=16)), VQVAE(VQVAEConfig())
        d36 = VAR(VARConfig(depth=36, shared_aln=True, patch_nums=(1, 2, 3, 4, 6, 9, 13, 18, 24, 32)))
    sd = d16.state_dict()
    assert len(sd) == 220 - 2 - 16  # var_d16.pth: 220 keys, of which 18 buffers
    assert sum(t.numel() for t in sd.values()) == 310_283_520
    assert sd["pos_1LC"].shape == (1, 680, 1024) and sd["class_emb.weight"].shape == (1001, 1024)
    assert sd["blocks.15.ada_lin.1.weight"].shape == (6144, 1024)
    assert sd["blocks.15.attn.scale_mul_1H11"].shape == (1, 16, 1, 1)
    assert "blocks.0.attn.mat_qkv.bias" not in sd
    vsd = vae.state_dict()
    assert len(vsd) == 324 - 132 - 2 - 1  # vae_ch160v4096z32.pth: 324 keys
    assert sum(t.numel() for t in vsd.values()) == 64_831_235
    assert vsd["decoder.up.4.attn.2.qkv.weight"].shape == (1920, 640, 1, 1)
    assert vsd["decoder.up.1.block.0.nin_shortcut.weight"].shape == (160, 320, 1, 1)
    sd36 = d36.state_dict()
    assert sd36["shared_ada_lin.1.weight"].shape == (13824, 2304)
    assert sd36["blocks.35.ada_gss"].shape == (1, 1, 6, 2304)
    assert sd36["pos_1LC"].shape == (1, 2240, 2304)
    assert not any(k.startswith("blocks.0.ada_lin") for k in sd36)
    assert round(sum(t.numel() for t in sd36.values()) / 1e4) == 235389  # 2353.89M as built upstream
    with torch.device("meta"):
        old = VAR(VARConfig(depth=2, attn_l2_norm=False))
    assert not any("scale_mul" in k for k in old.state_dict())
    assert old.blocks[0].attn.scale == 0.25 / 8


@torch.inference_mode()
def test_bf16_close_to_fp32(tiny):
    model, vae, runs, gold = tiny
    run = runs["greedy_cfg4"]
    K = len(model.patch_nums)
    tokens = [gold[f"greedy_cfg4/tokens/{k}"] for k in range(K)]
    ref, ref_fhat = teacher_force(model, vae, run["classes"], tokens)
    m16, v16 = copy.deepcopy(model).to(torch.bfloat16), copy.deepcopy(vae).to(torch.bfloat16)
    out, fhat16 = teacher_force(m16, v16, run["classes"], tokens)
    for k in range(K):
        assert out[k].dtype == torch.float32
        rel = (out[k] - ref[k]).abs().mean() / ref[k].abs().mean()
        assert rel < 0.05, f"scale {k}: bf16 mean relative logit error {rel:.3f}"
    assert fhat16.dtype == torch.float32
    img, img16 = vae.decode(ref_fhat[:1]), v16.decode(ref_fhat[:1])
    assert img16.dtype == torch.float32 and (img16 - img).abs().mean() < 0.02
    assert math.isfinite(img16.sum().item())


@pytest.mark.parametrize("kw", [dict(shared_aln=True), dict(attn_l2_norm=False), dict()])
@torch.inference_mode()
def test_variants_run_and_cache_resets(kw):
    cfg = VARConfig(depth=2, width=128, heads=2, patch_nums=(1, 2, 3), vocab_size=64, latent_channels=8, **kw)
    model = VAR(cfg).init_random(std=0.1, seed=0).eval()
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 8, pn, pn, generator=g) for pn in cfg.patch_nums]

    def run():
        model.reset_cache()
        cond = model.cond_embed(torch.tensor([3, 7]))
        x, out = model.first_input(cond), []
        for k, pn in enumerate(cfg.patch_nums):
            out.append(model.forward_scale(x, cond))
            assert out[-1].shape == (4, pn * pn, 64) and out[-1].dtype == torch.float32
            if k + 1 < len(cfg.patch_nums):
                x = model.next_input(maps[k + 1], k + 1)
        return out

    first, again = run(), run()  # the second run reuses the cache buffers
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(torch.isfinite(a).all() for a in first)
    with pytest.raises(RuntimeError, match="reset_cache"):  # a 4th scale overflows the cache
        model.forward_scale(model.next_input(maps[2], 2), model.cond_embed(torch.tensor([3, 7])))

"""HART: conformance with the official code (goldens/hart/tiny), SSG on HART, a tiny random-weight HART
through the API and the CLI, config validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import load_tensors, need_goldens
from helpers import ssgen_here
from PIL import Image

import ssgen
from ssgen.errors import ConfigError, WeightsError

# ------------------------------------------------------------------------------------------------
# goldens: the official implementation on a tiny model
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hart_golden():
    d = need_goldens("hart", "tiny")
    return d, json.loads((d / "runs.json").read_text())["runs"], load_tensors(d / "runs.safetensors")


def golden_yaml(tmp: Path, d: Path, **model) -> Path:
    """A config whose weights point (absolute paths) at the golden folders where they lie."""
    info = json.loads((d / "model.json").read_text())
    K = len(info["patch_nums"])
    cfg = {"name": "hart-tiny-golden", "family": "hart", "description": "tiny HART of the goldens",
           "weights": {"transformer": {"path": str(d / "hart" / "llm")}, "vae": {"path": str(d / "hart" / "tokenizer")},
                       "text_encoder": {"path": str(d / "text_encoder")}},
           "model": {"patch_nums": info["patch_nums"], "vocab_size": info["vocab_size"],
                     "latent_channels": info["latent_channels"], "context_token": info["context_token"],
                     "resolution": info["resolution"], **model},
           "defaults": {"cfg": 4.5, "more_smooth": True, "top_k": [600 if k < 7 else 300 for k in range(K)]}}
    p = tmp / "hart-tiny-golden.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.fixture(scope="module")
def golden_pipe(hart_golden, tmp_path_factory):
    return ssgen.load(str(golden_yaml(tmp_path_factory.mktemp("hart-golden"), hart_golden[0])), device="cpu",
                      dtype="float32")


def test_text_features(hart_golden, golden_pipe):
    """Upstream's encode_prompts: ids, mask and position ids exact, features within 1e-5."""
    _, runs, g = hart_golden
    for r in runs:
        n = r["name"]
        enc = golden_pipe.family.encode(r["prompts"], system_prompt=r["use_llm_system_prompt"])
        assert torch.equal(enc.input_ids, g[f"{n}/text/input_ids"])
        assert torch.equal(enc.mask, g[f"{n}/text/mask"])
        assert torch.equal(enc.position_ids, g[f"{n}/text/position_ids"])
        assert (enc.features - g[f"{n}/text/features"]).abs().max() < 1e-5
        assert enc.mask.sum(1).tolist() == r["num_valid_text_tokens"]


@pytest.mark.parametrize("name", ["default_cfg45_smooth", "cfg3_nosmooth", "no_system_prompt"])
def test_golden_run(hart_golden, golden_pipe, name):
    _, runs, g = hart_golden
    r = next(x for x in runs if x["name"] == name)
    runs_seen = []
    res = golden_pipe.generate(prompts=r["prompts"], seed=r["seed"], cfg=r["cfg"], more_smooth=r["more_smooth"],
                               system_prompt=r["use_llm_system_prompt"], residual=r["final_stage"] == 0, ssg=False,
                               rng="batch", keep_logits=True, on_scale=lambda k, run: runs_seen.append(run))
    run = runs_seen[-1]
    assert run.t == pytest.approx(r["cfg_t_per_scale"])  # the ramp with the stale last-scale weight
    assert run.top_k == r["top_k_applied_per_scale"]
    for k in range(len(res.tokens)):
        assert torch.equal(res.tokens[k], g[f"{name}/tokens/{k}"]), f"tokens differ at scale {k}"
        key = f"{name}/logits/{k}"
        if key in g and (not r["more_smooth"] or k <= 2):
            assert (res.logits[k] - g[key]).abs().max() < 1e-4, f"logits differ at scale {k}"
    for what, mine in (("residual", run.residual), ("fhat", run.fhat), ("image", res.pixels)):
        err = (mine - g[f"{name}/{what}"]).abs()
        assert err.max() < 2e-2 and err.mean() < 1e-3, f"{what}: max {err.max():.3g} mean {err.mean():.3g}"


def test_golden_raw_weights(hart_golden, tmp_path):
    """model.use_ema: false loads llm/pytorch_model.bin (a perturbed copy): other logits."""
    d, runs, g = hart_golden
    pipe = ssgen.load(str(golden_yaml(tmp_path, d, use_ema=False)), device="cpu", dtype="float32")
    r = runs[1]
    res = pipe.generate(prompts=r["prompts"], seed=r["seed"], cfg=r["cfg"], more_smooth=False, ssg=False, rng="batch",
                        keep_logits=True)
    assert (res.logits[1] - g[f"{r['name']}/logits/1"]).abs().max() > 1e-3


# ------------------------------------------------------------------------------------------------
# a tiny random-weight HART made by ssgen (conftest's tiny_hart; runs everywhere)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipe(tiny_hart):
    return ssgen.load(str(tiny_hart), device="cpu", dtype="float32")


PROMPTS = ["a red fox in the snow", "a lighthouse at dusk"]


def test_tiny_shapes_and_settings(pipe):
    assert len(pipe.family.patch_nums) == 4 and pipe.num_scales() == 4
    res = pipe.generate(prompts=PROMPTS, seed=3)
    assert res.pixels.shape == (2, 3, 64, 64) and 0 <= res.pixels.min() and res.pixels.max() <= 1
    assert [t.shape for t in res.tokens] == [(2, 1), (2, 4), (2, 9), (2, 16)]
    s = res.settings[0]
    assert s["family"] == "hart" and s["prompt"] == PROMPTS[0] and s["top_k"] == [600] * 4
    assert s["system_prompt"] is True and s["residual"] is True and s["more_smooth"] is True
    assert s["cfg_per_scale"] == pytest.approx([0.0, 1.5, 3.0, 3.0])  # the stale last-scale weight


def test_ssg_on_hart_changes_tokens_and_is_deterministic(pipe):
    ssg = ssgen.SSG(beta=0.5, scales=(1, -1))
    off = pipe.generate(prompts=PROMPTS, seed=1, ssg=False, rng="batch")
    on1 = pipe.generate(prompts=PROMPTS, seed=1, ssg=ssg, rng="batch")
    on2 = pipe.generate(prompts=PROMPTS, seed=1, ssg=ssg, rng="batch")
    assert torch.equal(off.tokens[0], on1.tokens[0])  # scale 0 has no prior
    assert any(not torch.equal(a, b) for a, b in zip(off.tokens[1:], on1.tokens[1:]))
    assert all(torch.equal(a, b) for a, b in zip(on1.tokens, on2.tokens))
    assert torch.equal(on1.pixels, on2.pixels)


def test_residual_and_system_prompt_options(pipe):
    seen = []
    full = pipe.generate(prompts=PROMPTS, seed=2, ssg=False, on_scale=lambda k, r: seen.append(r))
    assert seen[-1].residual.shape == (2, 16, 8)
    seen.clear()
    plain = pipe.generate(prompts=PROMPTS, seed=2, ssg=False, residual=False, on_scale=lambda k, r: seen.append(r))
    assert seen[-1].residual is None
    assert all(torch.equal(a, b) for a, b in zip(full.tokens, plain.tokens))  # the head runs after sampling
    assert not torch.allclose(full.pixels, plain.pixels)
    nosys = pipe.generate(prompts=PROMPTS, seed=2, ssg=False, system_prompt=False)
    assert not torch.allclose(full.pixels, nosys.pixels)
    assert nosys.settings[0]["system_prompt"] is False


def test_per_image_rng_is_batch_independent(pipe):
    """Image i (residual noise included) does not depend on the rest of its batch."""
    both = pipe.generate(prompts=PROMPTS, seed=7, ssg=False)
    solo = pipe.generate(prompts=PROMPTS[1:], seeds=[8], ssg=False)
    assert all(torch.equal(a[1], b[0]) for a, b in zip(both.tokens, solo.tokens))
    assert torch.allclose(both.pixels[1], solo.pixels[0], atol=1e-3)  # float noise only (smoothing amplifies it)


def test_top_k_lists_and_long_prompt(pipe):
    seen = []
    res = pipe.generate(prompts=[" ".join(["fox"] * 400)], seed=0, top_k=[5, 3], on_scale=lambda k, r: seen.append(r))
    assert seen[-1].top_k == [5, 3, 3, 3]
    assert any("truncated" in n for n in res.notes)
    assert pipe.generate(prompts=PROMPTS[:1], top_k=7).settings[0]["top_k"] == [7] * 4


@pytest.mark.parametrize("kw, needle", [
    (dict(classes=[3]), "text-to-image"),
    (dict(prompts=["   "]), "empty"),
    (dict(prompts=["a fox"], negative_prompt="blurry"), "no negative prompt"),
    (dict(prompts=["a fox"], tau=0.5), "tau is not an option of HART"),
    (dict(prompts=["a fox"], cfg=[1.0, 2.0]), "4 scales"),
    (dict(prompts=["a fox"], top_k=[1, 2, 3, 4, 5]), "top_k list"),
    (dict(prompts=["a fox"], residual="no"), "residual must be"),
    (dict(prompts=["a fox"], top_k="many"), "top_k must be"),
])
def test_bad_options(pipe, kw, needle):
    with pytest.raises(ConfigError, match=needle):
        pipe.generate(**kw)


def test_safety_check_without_access_explains(tiny_hart, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    p = ssgen.load(str(tiny_hart), device="cpu", dtype="float32", offline=True)
    with pytest.raises(WeightsError) as e:
        p.generate(prompts=["a fox"], safety_check=True)
    msg = str(e.value)
    assert "licence" in msg and "HF_TOKEN" in msg and "google/shieldgemma-2b" in msg and "\n" not in msg


def _copy_tiny(tiny_hart: Path, tmp: Path) -> Path:
    shutil.copytree(tiny_hart.parent, tmp / "m", symlinks=True)
    return tmp / "m" / tiny_hart.name


@pytest.mark.parametrize("field, value, needle", [
    ("attn_type", "mamba", "attn_type='mamba'"),
    ("sep_aln_pooling_mode", "sum", "sep_aln_pooling_mode='sum'"),
    ("use_cross_attn", True, "use_cross_attn"),
    ("sampler", "ddim", "sampler='ddim'"),
])
def test_unsupported_config_values(tiny_hart, tmp_path, field, value, needle):
    y = _copy_tiny(tiny_hart, tmp_path)
    cj = y.parent / "hart" / "llm" / "config.json"
    cj.write_text(json.dumps(dict(json.loads(cj.read_text()), **{field: value})))
    with pytest.raises(ConfigError, match=needle):
        ssgen.load(str(y), device="cpu", dtype="float32")


def test_config_checkpoint_mismatch(tiny_hart, tmp_path):
    y = _copy_tiny(tiny_hart, tmp_path)
    cj = y.parent / "hart" / "llm" / "config.json"
    cj.write_text(json.dumps(dict(json.loads(cj.read_text()), depth=3)))
    with pytest.raises(WeightsError, match="depth=2.*depth=3"):
        ssgen.load(str(y), device="cpu", dtype="float32")
    cfg = yaml.safe_load(y.read_text())
    cfg["model"] = {"patch_nums": [1, 2, 4]}
    cj.write_text(json.dumps(dict(json.loads(cj.read_text()), depth=2)))
    y.write_text(yaml.safe_dump(cfg))
    with pytest.raises(WeightsError, match="patch_nums"):
        ssgen.load(str(y), device="cpu", dtype="float32")


def test_training_mask_is_never_loaded(tiny_hart):
    from ssgen.backends.hart.model import IGNORED_KEYS_HART
    from ssgen.checkpoint import drop_keys, read_state_dict

    sd = read_state_dict(tiny_hart.parent / "hart" / "llm" / "ema_model.bin")
    assert "attn_bias_for_masking" in sd and "attn_bias_for_masking" not in drop_keys(sd, IGNORED_KEYS_HART)


@pytest.mark.parametrize("over", [
    dict(attn_type="gpt2", mlp_type="gpt2", sep_aln_pooling_mode="avg", attn_l2_norm=False),
    dict(use_context_norm=True, disable_aln=True, shared_aln=True, use_timestep_embed=True),
    dict(mlp_type="gpt2", disable_aln=True),
])
def test_config_variants_load_and_run(tiny_hart, tmp_path, over):
    """Every variant upstream's config class allows: saved with ssgen's modules, reloaded, generated."""
    from ssgen.backends.hart.tiny import make_tiny_hart

    y = make_tiny_hart(tmp_path, patch_nums=(1, 2, 3), text_encoder=tiny_hart.parent / "text_encoder", **over)
    res = ssgen.load(str(y), device="cpu", dtype="float32").generate(prompts=["a fox"], seed=0)
    assert res.pixels.shape == (1, 3, 48, 48) and torch.isfinite(res.pixels).all()


# ------------------------------------------------------------------------------------------------
# the CLI (in this process, through Typer's runner; one thread, as every tiny-model test here)
# ------------------------------------------------------------------------------------------------


def test_cli_generate_and_info(tiny_hart, tmp_path):
    out = tmp_path / "grid.png"
    r = ssgen_here("generate", "--model", str(tiny_hart), "--prompt", "a red fox", "--prompt", "a cat", "-o", str(out),
                   "--device", "cpu", "--seed", "4")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size[0] > 2 * 64
    meta = json.loads(ssgen_here("info", str(out), "--json").stdout)
    first = meta["images"][0]
    assert first["prompt"] == "a red fox" and first["ssg"] is not None and first["residual"] is True


def test_cli_options_off(tiny_hart, tmp_path):
    out = tmp_path / "plain.png"
    r = ssgen_here("generate", "-m", str(tiny_hart), "-p", "a red fox", "-o", str(out), "--no-ssg", "--no-residual",
                   "--no-system-prompt", "--no-more-smooth", "--cfg", "3", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["images"][0]
    assert s["ssg"] is None and s["residual"] is False and s["system_prompt"] is False and s["more_smooth"] is False


def test_cli_compare(tiny_hart, tmp_path):
    out = tmp_path / "cmp.png"
    r = ssgen_here("compare", "-m", str(tiny_hart), "-p", "a red fox", "-o", str(out), "--ssg-beta", "0.5",
                   "--ssg-beta", "1.0", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["columns"][0] == "no SSG" and len(json.loads(r.stdout)["columns"]) == 3


@pytest.mark.parametrize("args, needle", [
    (["--class", "3"], "text-to-image"),
    (["--prompt", "   "], "empty"),
])
def test_cli_bad_input_is_one_line_exit_2(tiny_hart, tmp_path, args, needle):
    r = ssgen_here("generate", "--model", str(tiny_hart), *args, "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.png").exists()

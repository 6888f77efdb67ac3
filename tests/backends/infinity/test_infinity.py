"""Infinity: conformance with the official code (goldens/infinity/tiny), SSG, resolutions, bad input,
and the CLI on a tiny random-weight Infinity made by ssgen itself (conftest's tiny_inf; runs without the goldens).

Conformance (rng="batch", CPU, float32): T5 features within 1e-5, tokens equal, CFG-mixed logits
within 1e-2 (upstream rounds cross-attention to bf16), the summed latent exact and the image within
1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import goldens_dir, load_tensors, need_goldens
from helpers import ssgen_here
from PIL import Image

import ssgen
from ssgen.errors import ConfigError, WeightsError

# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inf_golden():
    d = need_goldens("infinity", "tiny")
    return d, json.loads((d / "runs.json").read_text())["runs"], load_tensors(d / "runs.safetensors")


def write_golden_yaml(tmp: Path, d: Path) -> Path:
    """A config whose `model:` is model.json's architecture entries and whose weights are the golden files."""
    info = json.loads((d / "model.json").read_text())
    skip = ("family", "official_repo", "official_commit", "layout_of", "pn", "tau", "top_k", "top_p")  # run settings
    model = {k: v for k, v in info.items() if not isinstance(v, dict) and k not in skip}
    cfg = {"name": "infinity-tiny-golden", "family": "infinity", "description": "tiny Infinity of the goldens",
           "weights": {"transformer": {"path": str(d / "transformer.pth")}, "vae": {"path": str(d / "vae.pth")},
                       "text_encoder": {"path": str(d / "text_encoder")}},
           "model": model, "defaults": {"cfg": 3.0, "tau": 0.5, "top_k": 900, "top_p": 0.97, "pn": "0.06M"}}
    p = tmp / "infinity-tiny-golden.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.fixture(scope="module")
def golden_pipe(inf_golden, tmp_path_factory):
    yml = write_golden_yaml(tmp_path_factory.mktemp("inf-golden"), inf_golden[0])
    return ssgen.load(str(yml), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def tiny_pipe(tiny_inf):
    return ssgen.load(str(tiny_inf), device="cpu", dtype="float32")


def golden_runs():
    p = goldens_dir() / "infinity" / "tiny" / "runs.json"
    return [r["name"] for r in json.loads(p.read_text())["runs"]] if p.exists() else ["goldens-missing"]


# ------------------------------------------------------------------------------------------------
# conformance
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", golden_runs())
def test_golden_run(name, inf_golden, golden_pipe):
    from ssgen.backends.infinity.text import encode_prompts

    _, runs, ref = inf_golden
    run = next(r for r in runs if r["name"] == name)
    text = golden_pipe.family.text
    packed, lens, _ = encode_prompts(text.tokenizer, text.encoder, run["prompts"])
    assert lens == ref[f"{name}/text/lens"].tolist()
    assert (packed - ref[f"{name}/text/features"]).abs().max().item() <= 1e-5
    if run["negative_prompt"]:
        npacked, nlens, _ = encode_prompts(text.tokenizer, text.encoder, [run["negative_prompt"]] * run["B"])
        assert nlens == ref[f"{name}/text/neg_lens"].tolist()
        assert (npacked - ref[f"{name}/text/neg_features"]).abs().max().item() <= 1e-5

    latent = {}

    def grab(k, backend):
        if k == len(backend.grid) - 1:
            latent["final"] = backend.latent.clone()

    res = golden_pipe.generate(
        prompts=run["prompts"], negative_prompt=run["negative_prompt"], seed=run["seed"], cfg=run["cfg"],
        tau=run["tau"], top_k=run["top_k"], top_p=run["top_p"], pn=run["pn"], h_div_w=run["h_div_w"],
        ssg=False, rng="batch", keep_logits=True, on_scale=grab,
    )
    K = len(run["scale_schedule"])
    assert len(res.tokens) == K
    for k in range(K):
        want = ref[f"{name}/tokens/{k}"]
        assert res.tokens[k].shape == want.shape
        assert torch.equal(res.tokens[k].long(), want.long()), f"bits differ at scale {k}"
        if f"{name}/logits/{k}" in ref:
            diff = (res.logits[k] - ref[f"{name}/logits/{k}"]).abs().max().item()
            assert diff <= 1e-2, f"logits at scale {k} differ by {diff}"
    assert torch.equal(latent["final"], ref[f"{name}/latent"])
    diff = (res.pixels - ref[f"{name}/image"]).abs().max().item()
    assert diff <= 1e-4, f"image differs by {diff}"
    H, W = run["image_hw"]
    assert res.pixels.shape == (run["B"], 3, H, W)
    assert res.settings[0]["pn"] == "0.06M" and res.settings[0]["size"] == f"{W}x{H}"


def test_ssg_runs_changes_tokens_and_is_deterministic(golden_pipe):
    kw = dict(prompts=["a photo of a cat sitting on a red sofa"], seed=4, pn="0.06M", rng="batch")
    plain = golden_pipe.generate(ssg=False, **kw)
    a = golden_pipe.generate(ssg=ssgen.SSG(beta=0.5, scales=(1, -1)), **kw)
    b = golden_pipe.generate(ssg=ssgen.SSG(beta=0.5, scales=(1, -1)), **kw)
    assert torch.equal(plain.tokens[0], a.tokens[0])  # scale 0 has no prior
    assert any(not torch.equal(p, s) for p, s in zip(plain.tokens[1:], a.tokens[1:]))
    assert all(torch.equal(x, y) for x, y in zip(a.tokens, b.tokens))
    assert torch.equal(a.pixels, b.pixels)
    assert a.settings[0]["ssg"]["scales"] == [1, -1]


# ------------------------------------------------------------------------------------------------
# the tiny model: resolutions, options, bad input
# ------------------------------------------------------------------------------------------------


def test_tiny_defaults_and_layout(tiny_pipe):
    res = tiny_pipe.generate(prompts=["a red fox"], seed=1, ssg=False, keep_logits=True)
    assert res.pixels.shape == (1, 3, 256, 256)
    assert [tuple(t.shape) for t in res.tokens][-1] == (1, 16, 16, 32)
    assert res.tokens[0].dtype == torch.uint8 and int(res.tokens[-1].max()) <= 1
    assert res.logits[-1].shape == (1, 256, 64) and res.logits[-1].dtype == torch.float32
    s = res.settings[0]
    assert (s["cfg"], s["tau"], s["top_p"], s["pn"], s["h_div_w"], s["size"]) == (3.0, 0.5, 0.97, "0.06M", 1.0,
                                                                                     "256x256")
    assert tiny_pipe.num_scales() == 7 and tiny_pipe.num_scales(pn="0.25M") == 10


def test_non_square_template(tiny_pipe):
    res = tiny_pipe.generate(prompts=["a boat on a lake"], seed=2, ssg=False, h_div_w=0.5)
    assert res.pixels.shape == (1, 3, 176, 352)  # the 1:2 template at 0.06M: 11 x 22 tokens
    assert res.images[0].size == (352, 176)
    assert res.tokens[-1].shape == (1, 11, 22, 32)
    assert res.settings[0]["h_div_w"] == 0.5 and res.settings[0]["size"] == "352x176" and not res.notes
    tall = tiny_pipe.generate(prompts=["a lighthouse"], seed=2, aspect="3:4", ssg=ssgen.SSG(beta=1.0, scales=(1, -1)))
    assert tall.settings[0]["h_div_w"] == 1.333 and tall.pixels.shape[-2:] == (320, 240)


def test_nearest_template_notes(tiny_pipe):
    from ssgen.backends.infinity.options import resolve_resolution

    res = tiny_pipe.generate(prompts=["a beach"], seed=0, ssg=False, aspect="5:1")
    assert res.settings[0]["h_div_w"] == 0.333 and res.pixels.shape[-2:] == (144, 432)
    assert any("not an official template" in n and "0.333" in n for n in res.notes)
    assert tiny_pipe.num_scales(size="512x512") == 10
    r = resolve_resolution({"size": "300x200", "pn": "1M"})  # size picks pn and template
    assert (r.pn, r.template, r.pixels) == ("0.06M", 0.666, (336, 224)) and "300x200" in r.notes[0]
    r = resolve_resolution({"size": "1024x1024"})
    assert (r.pn, r.template, r.notes) == ("1M", 1.0, [])
    assert resolve_resolution({"pn": "1M", "h_div_w": 4 / 3}).notes == []  # 1.333 is the template


def test_long_prompt_truncated_with_note(tiny_pipe):
    res = tiny_pipe.generate(prompts=["a red fox " * 200], seed=0, ssg=False, pn="0.06M")
    assert any("truncated" in n and "512" in n for n in res.notes)


def test_negative_prompt_and_cfg_one(tiny_pipe):
    kw = dict(prompts=["a red fox"], seed=0, ssg=False, rng="batch")
    base = tiny_pipe.generate(**kw)
    neg = tiny_pipe.generate(negative_prompt="blurry, low quality", offload=True, **kw)
    assert not torch.equal(base.pixels, neg.pixels)
    assert neg.settings[0]["negative_prompt"] == "blurry, low quality"
    one = tiny_pipe.generate(cfg=1.0, **kw)  # no unconditional rows at all
    assert one.pixels.shape == base.pixels.shape
    per_scale = tiny_pipe.generate(cfg=[1, 2, 3, 3, 3, 3, 3], tau=[1, 1, 0.5, 0.5, 0.5, 0.5, 0.5], **kw)
    assert per_scale.settings[0]["cfg"] == [1, 2, 3, 3, 3, 3, 3]


@pytest.mark.parametrize("kw, msg", [
    (dict(classes=[1]), "text-to-image"),
    (dict(prompts=["  "]), "prompt 0 is empty"),
    (dict(prompts=["a fox"], cfg=[3.0, 3.0]), "cfg list has 2 values"),
    (dict(prompts=["a fox"], tau=[0.5] * 10), "tau list has 10 values"),
    (dict(prompts=["a fox"], tau=0), "tau must be > 0"),
    (dict(prompts=["a fox"], pn="2M"), "pn .2M. is unknown"),
    (dict(prompts=["a fox"], size="big"), "size .big. is malformed"),
    (dict(prompts=["a fox"], aspect="16:9", h_div_w=1.0), "either aspect"),
    (dict(prompts=["a fox"], more_smooth=True), "more_smooth is not an option of Infinity"),
    (dict(prompts=["a fox"], negative_prompt=["a", "b"]), "negative_prompt has 2 texts for 1 prompts"),
])
def test_bad_options(tiny_pipe, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        tiny_pipe.generate(ssg=False, **kw)


def test_wrong_vae_names_the_right_file(tiny_inf, tmp_path):
    from ssgen.backends.infinity.tiny import make_tiny_infinity

    other = make_tiny_infinity(tmp_path / "p", patchify=True)  # a 14-bit patch-8 VAE
    cfg = yaml.safe_load(tiny_inf.read_text())
    cfg["weights"] = {r: {"path": str(tiny_inf.parent / s["path"])} for r, s in cfg["weights"].items()}
    cfg["weights"]["vae"] = {"path": str(other.parent / "vae.pth")}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(WeightsError, match="infinity_vae_d32reg.pth"):
        ssgen.load(str(tmp_path / "m.yaml"), device="cpu", dtype="float32")


def test_patchified_8b_layout(tmp_path):
    """The 8B token layout: 56-bit tokens of 2x2 patches of a 14-bit f8 latent, same pixel sizes."""
    from ssgen.backends.infinity.tiny import make_tiny_infinity

    pipe = ssgen.load(str(make_tiny_infinity(tmp_path, patchify=True)), device="cpu", dtype="float32")
    lat = {}
    res = pipe.generate(prompts=["a cat"], seed=0, ssg=ssgen.SSG(beta=0.5, scales=(1, -1)),
                        on_scale=lambda k, b: lat.update(x=b.latent))
    assert res.tokens[-1].shape == (1, 16, 16, 56) and res.pixels.shape == (1, 3, 256, 256)
    assert lat["x"].shape == (1, 14, 32, 32)


def test_bf16_keeps_fp32_logits_and_prepacked_blocks_match_f_linear(tiny_inf, monkeypatch):
    import torch.nn.functional as F

    from ssgen.backends.infinity.model import Infinity, linear

    pipe = ssgen.load(str(tiny_inf), device="cpu", dtype="bfloat16")
    res = pipe.generate(prompts=["a red fox"], seed=0, keep_logits=True)
    assert res.logits[-1].dtype == torch.float32 and res.pixels.dtype == torch.float32
    assert torch.isfinite(res.pixels).all()
    fc1 = pipe.family.model.blocks[0].ffn.fc1
    if "packed" in fc1.__dict__:  # oneDNN bf16 available: the packed bf16 block matmuls give F.linear's results
        monkeypatch.setattr(Infinity, "prepack_cpu", lambda self: False)
        plain = ssgen.load(str(tiny_inf), device="cpu", dtype="bfloat16").family.model.blocks[0].ffn.fc1
        x = torch.randn(2, 5, fc1.in_features, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
        with torch.no_grad():
            assert torch.equal(linear(fc1, x), F.linear(x, plain.weight, plain.bias))


def test_rope_positions_follow_the_1m_grid():
    from ssgen.backends.infinity.model import rope_2d
    from ssgen.backends.infinity.options import PN_SCALES, SCHEDULES, resolve_resolution

    r = resolve_resolution({"pn": "0.06M", "h_div_w": 1.0})
    assert r.grid[-1] == (16, 16) and r.full_hw == (64, 64) and r.pixels == (256, 256)
    cos, sin = rope_2d(6, 6, (64, 64), 64)  # rows 0, 11, 21, 32, 43, 53 of the 64-row grid
    ref_cos, _ = rope_2d(64, 64, (64, 64), 64)
    rows = [0, 11, 21, 32, 43, 53]
    assert torch.equal(cos.view(6, 6, -1)[:, 0], ref_cos.view(64, 64, -1)[rows, 0])
    assert len(SCHEDULES) == 15 and sorted(PN_SCALES.values()) == [7, 10, 12, 13]
    for sched in SCHEDULES.values():  # DSE only upsamples: grids never shrink
        assert all(h1 >= h0 and w1 >= w0 for (h0, w0), (h1, w1) in zip(sched, sched[1:]))


# ------------------------------------------------------------------------------------------------
# the CLI (in this process, through Typer's runner; tiny_inf is conftest's)
# ------------------------------------------------------------------------------------------------


def test_cli_generate(tiny_inf, tmp_path):
    out = tmp_path / "grid.png"
    r = ssgen_here("generate", "--model", str(tiny_inf), "--prompt", "a red fox", "--prompt", "a blue car",
                   "-o", str(out), "--device", "cpu", "--seed", "3", "--aspect", "4:3", "--tau", "0.7")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size[0] > 2 * 320
    meta = json.loads(ssgen_here("info", str(out), "--json").stdout)
    first = meta["images"][0]
    assert [m["prompt"] for m in meta["images"]] == ["a red fox", "a blue car"]
    assert first["ssg"]["beta"] == 0.5 and first["h_div_w"] == 0.75 and first["size"] == "320x240"
    assert first["tau"] == 0.7 and first["family"] == "infinity" and first["pn"] == "0.06M"


def test_cli_compare(tiny_inf, tmp_path):
    """Without and with SSG, side by side."""
    out = tmp_path / "cmp.png"
    r = ssgen_here("compare", "-m", str(tiny_inf), "-p", "a red fox", "-p", "a blue car", "--ssg-beta", "1.0",
                   "--ssg-scales", "1-6", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["columns"][0] == "no SSG" and len(summary["columns"]) == 2
    assert [c["prompt"] for c in summary["images"]] == ["a red fox"] * 2 + ["a blue car"] * 2
    assert summary["images"][0]["ssg"] is None and summary["images"][1]["ssg"]["scales"] == [1, 6]


@pytest.mark.parametrize("args, needle", [
    (["--prompt", " "], "prompt 0 is empty"),
    (["--class", "3"], "text-to-image"),
])
def test_cli_bad_input_is_one_line_exit_2(tiny_inf, tmp_path, args, needle):
    r = ssgen_here("generate", "-m", str(tiny_inf), *args, "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.png").exists()

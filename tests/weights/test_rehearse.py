"""The rehearsal's file makers (scripts/rehearse_files.py, rehearse_models.py) write what the real checkpoints
are, and `ssgen generate --json` reports the timings the rehearsal reads. The rehearsal itself (full-size
models) is `make rehearse`, never a test."""

from __future__ import annotations

import json
import random
import sys
import zipfile

import pytest
import torch
from conftest import ROOT, need_goldens
from helpers import ssgen_here

sys.path.insert(0, str(ROOT / "scripts"))
from rehearse_files import SafetensorsFile, TensorSpec, bit_mask, level_buffers, values, write_pth  # noqa: E402

NOTES = ROOT.parent / "shared" / "notes"


def specs() -> list[TensorSpec]:
    lvl, mask = level_buffers(torch.tensor([0, 1, 1, 1, 1, 2, 2, 2, 2]))
    return [TensorSpec("w", (2, 600_001), torch.float32, ("normal", 0.0, 1.0)),  # spans two random blocks
            TensorSpec("lvl_1L", (1, 9), torch.int64, lvl),
            TensorSpec("attn_bias_for_masking", (1, 1, 9, 9), torch.float32, mask),
            TensorSpec("h", (5, 3), torch.bfloat16, ("normal", 1.0, 0.1)),
            TensorSpec("zero_k_bias", (4,), torch.float32, ("const", 0.0)),
            TensorSpec("lfq.mask", (6,), torch.int64, bit_mask(6))]


@pytest.mark.parametrize("wrap", [None, "vae"])
def test_streamed_pth_is_a_torch_save_archive(tmp_path, wrap):
    p = tmp_path / "model.pth"
    write_pth(p, specs(), seed=3, key="repo/model.pth", wrap=wrap)
    with zipfile.ZipFile(p) as zf:
        assert zf.testzip() is None  # every record's CRC-32 matches its bytes
    for mmap in (True, False):
        sd = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
        sd = sd[wrap] if wrap else sd
        assert list(sd) == [s.name for s in specs()]
        for s in specs():
            assert sd[s.name].dtype == s.dtype
            assert torch.equal(sd[s.name], values(s, 3, "repo/model.pth", 0, s.numel).view(s.shape)), s.name
    assert torch.equal(sd["lfq.mask"], torch.tensor([32, 16, 8, 4, 2, 1]))
    assert sd["w"].std().item() == pytest.approx(1.0, abs=0.01)


def test_level_buffers_are_the_official_ones():
    """lvl_1L and the block-causal mask, computed for any element range, equal the tiny maker's whole ones."""
    from ssgen.backends.var.tiny import var_training_buffers

    pns = (1, 2, 3)
    ref = var_training_buffers({}, pns, 0, 8)
    levels = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(pns)])
    lvl, mask = level_buffers(levels)
    L = levels.numel()
    got = torch.cat([mask[1](a, min(7, L * L - a)) for a in range(0, L * L, 7)]).view(1, 1, L, L)
    assert torch.equal(got, ref["attn_bias_for_masking"])
    assert torch.equal(lvl[1](0, L).view(1, L), ref["lvl_1L"])


def test_generated_safetensors_serves_any_range():
    from safetensors.torch import load

    sp = [s for s in specs() if s.dtype != torch.int64]
    f = SafetensorsFile(sp, seed=1, key="k")
    data = b"".join(f.chunks(0, f.size - 1))
    assert len(data) == f.size
    sd = load(data)
    for s in sp:
        assert torch.equal(sd[s.name], values(s, 1, "k", 0, s.numel).view(s.shape))
    rng = random.Random(0)
    for _ in range(20):  # a resumed download asks for a byte range
        a = rng.randrange(f.size)
        b = rng.randrange(a, min(f.size, a + 1_000_000))
        assert b"".join(f.chunks(a, b)) == data[a:b + 1]


def test_var_d16_files_have_the_official_keys():
    """The rehearsal's var_d16.pth / VAE: the official key order and shapes (the notes' list of the real file)."""
    keys = NOTES / "var-keys-d16.txt"
    if not keys.is_file():
        pytest.skip(f"{keys} not found")
    from rehearse_models import plan

    def parse(text):
        return [(line.split("\t")[0], tuple(json.loads(line.split("\t")[1]))) for line in text.splitlines()[1:]
                if line.strip()]

    transformer, vae = keys.read_text().split("### vae")
    files = plan("var-d16").repos["FoundationVision/var"]
    assert [(s.name, s.shape) for s in files[0].tensors] == parse(transformer)
    assert [(s.name, s.shape) for s in files[1].tensors] == parse(vae)


def test_generate_json_reports_timings(tiny_var, tmp_path):
    r = ssgen_here("generate", "-m", str(tiny_var), "-c", "1", "-n", "3", "-b", "2", "-o", str(tmp_path / "g.png"),
                   "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["timings"]
    assert len(t["per_image_s"]) == 3 and t["per_image_s"][0] == t["per_image_s"][1]  # chunks of 2, then 1
    assert 0 < t["load_s"] < t["first_image_s"] <= t["load_s"] + t["generate_s"]


# ---------------------------------------------------------------------------------------------------
# Switti: the released layouts (../shared/notes/switti.md section 1), checked against the goldens' files,
# which the official code saved (transformer, VAE) and transformers 4.45 wrote (the CLIPs)
# ---------------------------------------------------------------------------------------------------

CLIP_REPOS = {"text_encoder": "openai/clip-vit-large-patch14",
              "text_encoder_2": "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k"}


@pytest.fixture(scope="module")
def switti_plans():
    from rehearse_models import plan

    return {name: plan(name) for name in ("switti", "switti-ar")}


def st_header(raw: bytes) -> dict:
    """A safetensors file's header (from its first bytes): {name: entry} in data order, plus __metadata__."""
    import struct

    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", None)
    return {"__metadata__": meta, **dict(sorted(head.items(), key=lambda kv: kv[1]["data_offsets"][0]))}


def golden_header(*parts: str) -> dict:
    p = need_goldens("switti", "tiny", *parts)
    with open(p, "rb") as f:
        return st_header(f.read(1 << 20))


def served_header(f) -> dict:
    src = SafetensorsFile(f.tensors, 0, "k", f.metadata)
    return st_header(b"".join(src.chunks(0, len(src.head) - 1)))


def layerless(names) -> set[str]:
    """Names with block / layer indices dropped (the goldens are 1-2 layers deep, the plans 12-48)."""
    import re

    return {re.sub(r"\.(blocks|layers)\.\d+\.", r".\1.N.", "." + n)[1:] for n in names}


def files_of(p, repo: str) -> dict:
    return {f.path: f for f in p.repos[repo]}


def test_switti_transformer_file_is_the_mixins(switti_plans):
    """Same tensors as the official save (modulo depth), same dtypes, no __metadata__, in safetensors' order
    (lvl_1L, the only int64, first); the released size: width 1920, 10 scales (L = 2240)."""
    gold = golden_header("switti", "model.safetensors")
    f = files_of(switti_plans["switti"], "yresearch/Switti")["model.safetensors"]
    head = served_header(f)
    assert head.pop("__metadata__") is None and gold.pop("__metadata__") is None
    assert {(layerless([n]).pop(), e["dtype"]) for n, e in head.items()} == \
        {(layerless([n]).pop(), e["dtype"]) for n, e in gold.items()}
    assert list(head)[0] == "lvl_1L" == list(gold)[0]
    assert head["word_embed.weight"]["shape"] == [1920, 32]
    assert head["attn_bias_for_masking"]["shape"] == [1, 1, 2240, 2240]
    assert sum(1 for n in head if n.endswith(".ffn.gate_proj.weight")) == 30
    cfg = json.loads(files_of(switti_plans["switti"], "yresearch/Switti")["config.json"].data)
    assert set(cfg) == set(json.loads(need_goldens("switti", "tiny", "switti", "config.json").read_text()))
    assert cfg == {"depth": 30, "reso": 512, "rope": True, "rope_size": 128, "rope_theta": 10000, "use_ar": False,
                   "use_crop_cond": True, "use_swiglu_ffn": True}


@pytest.mark.parametrize("name", ["switti", "switti-ar"])
def test_switti_mask_is_the_models(switti_plans, name):
    """attn_bias_for_masking: block-diagonal for Switti (a scale sees itself), block-causal for Switti-AR."""
    f = files_of(switti_plans[name], "yresearch/" + ("Switti-AR" if name.endswith("ar") else "Switti"))
    spec = next(t for t in f["model.safetensors"].tensors if t.name == "attn_bias_for_masking")
    L = 2240
    fill = spec.init[1]
    row1 = fill(1 * L, 5)  # token 1 (scale 1: tokens 1-4) against tokens 0-4
    assert row1[1:].eq(0).all()
    assert row1[0].item() == (0.0 if name == "switti-ar" else float("-inf"))
    assert fill(0, 2).tolist() == [0.0, float("-inf")]  # token 0 never sees a later scale


@pytest.mark.parametrize("use_ar", [False, True])
def test_level_buffers_match_switti_tiny(use_ar):
    """level_buffers(causal=use_ar) equals the buffers the tiny Switti maker (upstream's constructor) writes."""
    from ssgen.backends.switti.model import SwittiConfig
    from ssgen.backends.switti.tiny import training_buffers

    cfg = SwittiConfig(depth=1, reso=256, use_ar=use_ar)
    ref = training_buffers(cfg)
    levels = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(cfg.patch_nums)])
    lvl, mask = level_buffers(levels, causal=use_ar)
    L = levels.numel()
    assert torch.equal(mask[1](0, L * L).view(1, 1, L, L), ref["attn_bias_for_masking"])
    assert torch.equal(lvl[1](0, L).view(1, L), ref["lvl_1L"])


def test_switti_vae_file_has_the_official_keys(switti_plans):
    gold = golden_header("vae", "model.safetensors")
    head = served_header(files_of(switti_plans["switti"], "yresearch/VQVAE-Switti")["model.safetensors"])
    assert list(head) == list(gold)  # same names in the same order, no __metadata__
    assert {e["dtype"] for n, e in head.items() if n != "__metadata__"} == {"F16"}
    assert head["decoder.conv_in.weight"]["shape"][0] == 160 * 4  # ch 160, ch_mult ending in 4


@pytest.mark.parametrize("role", ["text_encoder", "text_encoder_2"])
def test_switti_clip_folders_are_full_clip_models(switti_plans, role):
    """The CLIP repos hold CLIPModel checkpoints (text and vision towers) at the real sizes, CLIP-bigG in 2 shards +
    index, with the goldens' key set (modulo depth) and header metadata."""
    files = files_of(switti_plans["switti"], CLIP_REPOS[role])
    weights = [f for p, f in files.items() if p.endswith(".safetensors")]
    heads = [served_header(f) for f in weights]
    names = [n for h in heads for n in h if n != "__metadata__"]
    if role == "text_encoder":
        assert [f.path for f in weights] == ["model.safetensors"] and "model.safetensors.index.json" not in files
        gold = golden_header(role, "model.safetensors")
    else:
        assert [f.path for f in weights] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        index = json.loads(files["model.safetensors.index.json"].data)
        assert index["weight_map"] == {n: f.path for f, h in zip(weights, heads) for n in h if n != "__metadata__"}
        gold = {**golden_header(role, "model-00001-of-00002.safetensors"),
                **golden_header(role, "model-00002-of-00002.safetensors")}
    assert all(h["__metadata__"] == gold["__metadata__"] == {"format": "pt"} for h in heads)
    assert layerless(names) == layerless(n for n in gold if n != "__metadata__")
    width = {"text_encoder": 768, "text_encoder_2": 1280}[role]
    shape = {n: e["shape"] for h in heads for n, e in h.items() if n != "__metadata__"}
    assert shape["text_model.embeddings.token_embedding.weight"] == [49408, width]
    vision = {"text_encoder": (1024, 24), "text_encoder_2": (1664, 48)}[role]
    assert shape["vision_model.post_layernorm.weight"] == [vision[0]]
    assert sum(1 for n in names if n.startswith("vision_model.") and n.endswith(".fc1.weight")) == vision[1]


def test_switti_serves_every_allowed_file(switti_plans):
    """Each `allow:` entry of the Switti configs names a served file (a pattern matches at least one), and
    what the real repos hold beyond them (cards, preprocessor config) is served but not fetched."""
    import fnmatch

    from rehearse import fetched
    from rehearse_models import config

    for name, p in switti_plans.items():
        for role, w in config(name)["weights"].items():
            served = [f.path for f in p.repos[w["repo"]]]
            for pat in w["allow"]:
                assert any(fnmatch.fnmatch(s, pat) for s in served), (name, role, pat)
        got = {path for _, path in fetched(p)}
        assert "README.md" not in got and "preprocessor_config.json" not in got
        assert {"model.safetensors", "config.json", "special_tokens_map.json"} <= got


def test_safetensors_order_and_metadata_are_save_files(tmp_path):
    """st_order is the order safetensors.torch.save_file writes; metadata None writes no __metadata__."""
    from rehearse_files import st_order
    from safetensors.torch import save_file

    sp = [TensorSpec(n, (3,), dt, ("normal", 0.0, 1.0)) for n, dt in
          [("b", torch.float16), ("a", torch.float32), ("z", torch.int64), ("c", torch.bfloat16), ("y", torch.float32)]]
    save_file({s.name: torch.zeros(s.shape, dtype=s.dtype) for s in sp}, str(tmp_path / "m.safetensors"))
    ref = st_header((tmp_path / "m.safetensors").read_bytes())
    got = st_header(b"".join(SafetensorsFile(st_order(sp), 0, "k", None).chunks(0, 10**6)))
    assert list(got) == list(ref)
    assert got["__metadata__"] is None

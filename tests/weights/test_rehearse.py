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
from conftest import ROOT
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

"""Infinity rng="batch" against the official code on the 0.75 template (tests/data/infinity_batch, made with
the official code on the goldens' tiny Infinity; README.md there says how).

rng="batch" promises upstream's numbers for the same batch, and the bf16 rounding of Infinity's
cross-attention turns any float-order difference (1e-7) into logit differences of ~3e-3 and then into
flipped bits, so only upstream's own arithmetic reproduces its tokens: every Linear as nn.Linear (F.linear,
MKL), T5 over the whole batch padded to 512 tokens, the running sum in upstream's memory layout. Each
reference run has a bit within float rounding of its draw.

Conformance (CPU, float32, 2 threads as the reference): tokens equal at every scale, logits (scales 0-3)
within 1e-5, T5 features within 1e-5, the summed latent exact, the image (every 8th pixel) within 1e-4.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import need_goldens
from safetensors import safe_open
from test_infinity import write_golden_yaml

import ssgen

REFS = Path(__file__).resolve().parents[2] / "data" / "infinity_batch" / "refs.safetensors"


def ref_runs() -> dict[str, dict]:
    with safe_open(str(REFS), "pt") as f:
        return json.loads(f.metadata()["runs"])


@pytest.fixture(scope="module")
def refs() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(REFS))


@pytest.fixture(scope="module")
def official_pipe(tmp_path_factory):
    """The goldens' tiny Infinity (the checkpoint the reference was made with), CPU float32."""
    d = need_goldens("infinity", "tiny")
    yml = write_golden_yaml(tmp_path_factory.mktemp("inf-batch"), d)
    return ssgen.load(str(yml), device="cpu", dtype="float32")


@pytest.mark.parametrize("name", sorted(ref_runs()))
def test_batch_mode_reproduces_official(name, refs, official_pipe):
    run = ref_runs()[name]
    latent = {}

    def grab(k, backend):
        if k == len(backend.grid) - 1:
            latent["final"] = backend.latent.clone()

    res = official_pipe.generate(
        prompts=run["prompts"], negative_prompt=run["negative_prompt"], seed=run["seed"], cfg=run["cfg"],
        tau=run["tau"], top_k=run["top_k"], top_p=run["top_p"], pn=run["pn"], h_div_w=run["h_div_w"],
        ssg=False, rng="batch", keep_logits=True, on_scale=grab,
    )
    schedule = run["scale_schedule"]
    assert len(res.tokens) == len(schedule)
    for k, (_, h, w) in enumerate(schedule):
        want = refs[f"{name}/tokens/{k}"]  # (B, h, w, 32) uint8
        assert want.shape == (run["B"], h, w, 32) and res.tokens[k].shape == want.shape
        flipped = (res.tokens[k] != want).sum().item()
        assert flipped == 0, f"{flipped} of {want.numel()} bits differ from upstream's at scale {k}"
    for k in range(len(schedule)):  # upstream's arithmetic itself, not only its draws (stored: scales 0-3)
        if f"{name}/logits/{k}" in refs:
            diff = (res.logits[k] - refs[f"{name}/logits/{k}"]).abs().max().item()
            assert diff <= 1e-5, f"logits at scale {k} differ from upstream's by {diff}"
    assert torch.equal(latent["final"], refs[f"{name}/latent"])
    H, W = run["image_hw"]
    assert res.pixels.shape == (run["B"], 3, H, W)
    diff = (res.pixels[:, :, ::8, ::8] - refs[f"{name}/image_sub8"]).abs().max().item()
    assert diff <= 1e-4, f"image differs by {diff}"


@pytest.mark.parametrize("name", sorted(ref_runs()))
def test_batched_t5_is_upstreams_encoding(name, refs, official_pipe):
    """rng="batch" encodes all prompts in one batch padded to 512 tokens, as upstream's encode_prompt."""
    from ssgen.backends.infinity.text import encode_prompts

    run = ref_runs()[name]
    text = official_pipe.family.text
    packed, lens, _ = encode_prompts(text.tokenizer, text.encoder, run["prompts"], batched=True)
    assert lens == refs[f"{name}/text/lens"].tolist()
    assert (packed - refs[f"{name}/text/features"]).abs().max().item() <= 1e-5
    if run["negative_prompt"]:
        negs = [run["negative_prompt"]] * run["B"]
        npacked, nlens, _ = encode_prompts(text.tokenizer, text.encoder, negs, batched=True)
        assert nlens == refs[f"{name}/text/neg_lens"].tolist()
        assert (npacked - refs[f"{name}/text/neg_features"]).abs().max().item() <= 1e-5


def test_official_linear_is_f_linear_on_the_plain_weight():
    """A prepacked Linear keeps only oneDNN's copy of its weight; rng="batch" rebuilds the plain weight
    from it and gets F.linear's (MKL's) result exactly, one row included; per-image mode keeps oneDNN's."""
    from ssgen.backends.infinity.model import Linear, lin
    from ssgen.backends.onednn import linear, prepack_linears

    torch.manual_seed(0)
    m = Linear(256, 384)
    plain = m.weight.detach().clone()  # (out, in)
    if not prepack_linears(m):
        pytest.skip("no oneDNN for float32 in this PyTorch build")
    assert m.weight.numel() == 0 and "packed" in m.__dict__
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for rows in (1, 7, 96):
            x = torch.randn(2, rows, 256, generator=g)
            want = F.linear(x, plain, m.bias)
            assert torch.equal(linear(m, x, official=True), want)
            assert torch.equal(lin(m, x, official=True), want)
            assert torch.equal(lin(m, x), m(x))  # the packed path
            bias = torch.randn(384, generator=g)
            assert torch.equal(lin(m, x[0], bias, official=True), F.linear(x[0], plain, bias))


def test_text_attention_is_per_sequence_as_upstreams_varlen_kernel():
    """Upstream's flash-attn varlen call attends every row to its own packed text tokens (no padding): the
    rows grouped by text length give exactly what each row alone gives, in both modes."""
    from ssgen.backends.infinity.model import TextRows, split_kv, text_attention

    g = torch.Generator().manual_seed(0)
    lens = [11, 3, 11, 5]  # (bs,) text tokens per row: two rows share a length
    rows = TextRows.of(lens)
    H, hd, L = 2, 64, 12
    q = torch.randn(len(lens), H, L, hd, generator=g)  # (bs, H, L, hd)
    kv = torch.randn(sum(lens), 2 * H * hd, generator=g)  # packed (N, 2C)
    out = text_attention(q, [split_kv(t, H) for t in rows.split(kv)], rows.index, 1 / math.sqrt(hd))
    for i, seq in enumerate(kv.split(lens)):
        k, v = split_kv(seq[None], H)  # (1, H, n_i, hd) each
        bf = torch.bfloat16
        alone = F.scaled_dot_product_attention(q[i:i + 1].to(bf).float(), k.to(bf).float(), v.to(bf).float(),
                                               scale=1 / math.sqrt(hd)).to(bf).float()
        assert torch.equal(out[i:i + 1], alone), f"row {i}"

"""VAR's encoder side (ssgen/backends/var/encoder.py): image -> per-scale tokens, as upstream's img_to_idxBl.

Conformance: the official `vae.img_to_idxBl` tokens of tests/data/var_edit/input.png, made with the goldens'
tiny256 VAE (tests/data/var_edit/README.md), reproduced exactly. Loading: lazily, on the first edit, from
the VAE file; a file without the encoder side is a WeightsError naming the missing keys.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import need_goldens, write_var_golden_yaml
from PIL import Image

import ssgen
from ssgen.backends import families
from ssgen.backends.var.encoder import f_to_idxBl
from ssgen.errors import WeightsError

DATA = Path(__file__).resolve().parents[2] / "data" / "var_edit"


def read_input() -> torch.Tensor:
    """input.png as upstream's notebook reads it: RGB, [0, 1] (ToTensor), then x + x - 1 -> (1, 3, 256, 256)."""
    u8 = np.array(Image.open(DATA / "input.png").convert("RGB"))
    x = torch.from_numpy(u8).permute(2, 0, 1).float().div(255)[None]
    return x.add(x).add_(-1)


def backend(pipe, cls: int = 1):
    return pipe.family.start(pipe.resolve([cls])).backend


def test_encoder_matches_official_tokens(tmp_path):
    from safetensors.torch import load_file

    d = need_goldens("var", "tiny256")
    pipe = ssgen.load(str(write_var_golden_yaml(tmp_path, d)), device="cpu", dtype="float32")
    assert pipe.family._encoder is None  # not read at load: generation never needs it
    ref = load_file(str(DATA / "refs.safetensors"))
    run = backend(pipe)
    assert run.image_size == (256, 256)
    tokens, recon = run.encode(read_input())
    assert len(tokens) == 10
    for k, pn in enumerate((1, 2, 3, 4, 5, 6, 8, 10, 13, 16)):
        assert tokens[k].dtype == torch.int64 and tokens[k].shape == (1, pn * pn)
        assert torch.equal(tokens[k], ref[f"input.tokens.{k}"]), f"tokens differ at scale {k}"
    # the reconstruction is the decoding of upstream's f_hat (the quantizer's sum over scales)
    with torch.inference_mode():
        diff = (recon - pipe.family.vae.decode(ref["input.fhat"])).abs().max().item()
    assert diff <= 1e-4, f"reconstruction differs by {diff}"
    assert recon.shape == (1, 3, 256, 256) and recon.dtype == torch.float32
    enc = pipe.family._encoder
    assert enc is not None and pipe.family.encoder() is enc  # loaded on the first encode, once


def test_family_can_edit(tiny_var):
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="float32")
    assert families()["var"].can_edit is True
    assert backend(pipe).image_size == (64, 64)  # tiny: last scale 4 x 16 px


def test_decoding_tokens_rebuilds_f_hat(tiny_var):
    """Embedding the tokens scale by scale (as generation does: vae.add_scale) rebuilds the quantizer's f_hat, and
    the reconstruction is that f_hat decoded; image by image, so a batch encodes as its images alone."""
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="float32")
    vae, run = pipe.family.vae, backend(pipe)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    tokens, recon = run.encode(x)
    with torch.inference_mode():
        _, f_hat = f_to_idxBl(vae, pipe.family.encoder()(x[:1]))
        pns = vae.cfg.patch_nums
        rebuilt = torch.zeros_like(f_hat)
        for k, pn in enumerate(pns):
            h = vae.embed(tokens[k][:1]).transpose(1, 2).reshape(1, -1, pn, pn)
            rebuilt = vae.add_scale(rebuilt, h, k, len(pns))
        assert (rebuilt - f_hat).abs().max().item() <= 1e-5
        assert f_hat.abs().max().item() > 0.1  # the test means something: a non-trivial latent
        assert (recon[:1] - vae.decode(f_hat)).abs().max().item() <= 1e-5
    assert sum(t.unique().numel() for t in tokens) > 2 * len(tokens)  # the random encoder gives varied codes
    alone, recon1 = run.encode(x[1:])
    assert all(torch.equal(t[1:], a) for t, a in zip(tokens, alone))
    assert torch.equal(recon[1:], recon1)
    assert 0.0 <= recon.min().item() and recon.max().item() <= 1.0


def test_encode_checks_the_image_size(tiny_var):
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="float32")
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        backend(pipe).encode(torch.zeros(1, 3, 32, 32))


def test_encoder_in_the_run_dtype(tiny_var):
    pipe = ssgen.load(str(tiny_var), device="cpu", dtype="bfloat16")
    tokens, recon = backend(pipe).encode(torch.zeros(1, 3, 64, 64))
    assert {p.dtype for p in pipe.family.encoder().parameters()} == {torch.bfloat16}
    assert tokens[0].dtype == torch.int64 and recon.dtype == torch.float32


def copy_with_vae(tiny_var: Path, dest: Path, edit) -> Path:
    """A copy of the tiny VAR whose vae.pth is `edit(state_dict)`."""
    shutil.copytree(tiny_var.parent, dest)
    sd = torch.load(dest / "vae.pth", weights_only=True)
    torch.save(edit(sd), dest / "vae.pth")
    return dest / tiny_var.name


def test_decoder_only_vae_file(tiny_var, tmp_path):
    """Generation does not need the encoder side; the first edit names what the file lacks."""
    yml = copy_with_vae(tiny_var, tmp_path / "m", lambda sd: {k: v for k, v in sd.items()
                                                                 if not k.startswith(("encoder.", "quant_conv."))})
    pipe = ssgen.load(str(yml), device="cpu", dtype="float32")
    pipe.generate(classes=[1], seed=0)  # generation loads and runs
    msg = r"has no encoder weights \(a decoder-only file\?\).*encoder\.conv_in\.weight"
    with pytest.raises(WeightsError, match=msg):
        backend(pipe).encode(torch.zeros(1, 3, 64, 64))


def test_vae_file_lacking_quant_conv(tiny_var, tmp_path):
    yml = copy_with_vae(tiny_var, tmp_path / "m", lambda sd: {k: v for k, v in sd.items()
                                                                 if not k.startswith("quant_conv.")})
    pipe = ssgen.load(str(yml), device="cpu", dtype="float32")
    with pytest.raises(WeightsError, match=r"2 key\(s\) missing: quant_conv\.weight, quant_conv\.bias"):
        pipe.family.encoder()


def test_encoder_weights_of_another_size(tiny_var, tmp_path):
    def wrong(sd):
        sd["encoder.conv_out.weight"] = torch.zeros(16, *sd["encoder.conv_out.weight"].shape[1:])
        return sd

    pipe = ssgen.load(str(copy_with_vae(tiny_var, tmp_path / "m", wrong)), device="cpu", dtype="float32")
    with pytest.raises(WeightsError, match=r"encoder\.conv_out\.weight has shape \(16, "):
        pipe.family.encoder()

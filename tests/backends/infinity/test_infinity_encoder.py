"""Infinity's BSQ encoder side (editing is ssgen's own; encoder.py): the per-scale bits equal upstream training's
ground truth (tests/data/infinity_edit, made with the official code on the goldens' tiny VAE), the bits fed
through the family's own `advance` rebuild the encoder's latent and reconstruction exactly (so an edit that keeps
every bit reproduces the reconstruction), lazy loading and its errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, load_tensors, need_goldens
from safetensors import safe_open
from test_infinity import write_golden_yaml

import ssgen
from ssgen.errors import WeightsError

REFS = ROOT / "tests" / "data" / "infinity_edit" / "refs.safetensors"


def test_image(B: int, H: int, W: int) -> torch.Tensor:
    """The references' input (README.md): integer arithmetic -> uint8, then upstream's [-1, 1] transform."""
    y, x = torch.arange(H)[:, None], torch.arange(W)[None, :]
    u8 = torch.empty(B, 3, H, W, dtype=torch.uint8)
    for b in range(B):
        for c in range(3):
            u8[b, c] = ((x * (3 + c + b) + y * (5 - c) + (x * y) // (17 + b) + 80 * ((x // 32 + y // 32) % 2))
                        % 256).to(torch.uint8)
    im = u8.float().div(255)
    return im.add(im).add_(-1)


test_image.__test__ = False  # a helper, not a test


def start(pipe, B: int = 1, **options):
    """One generation call's backend (the run class) for B images at pn 0.06M."""
    return pipe.family.start(pipe.resolve(None, ["a cat"] * B, pn="0.06M", **options)).backend


def keep_all(run, tokens: list[torch.Tensor]) -> torch.Tensor:
    """Feed every scale's bits through the run's own advance (what the loop does when the keep mask is all
    ones); return the final image."""
    for k, t in enumerate(tokens):
        run.advance(k, t, None)
    return run.decode()


# ------------------------------------------------------------------------------------------------
# upstream's ground truth (goldens' tiny VAE)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden_pipe(tmp_path_factory):
    d = need_goldens("infinity", "tiny")
    return ssgen.load(str(write_golden_yaml(tmp_path_factory.mktemp("inf-enc"), d)), device="cpu", dtype="float32")


@pytest.mark.parametrize("name", ["square", "wide"])
def test_bits_equal_upstream_training_ground_truth(name, golden_pipe):
    ref = load_tensors(REFS)
    with safe_open(str(REFS), "pt") as f:
        r = json.loads(f.metadata()["runs"])[name]
    run = start(golden_pipe, r["B"], h_div_w=r["h_div_w"])
    H, W = run.image_size
    assert (H, W) == {"square": (256, 256), "wide": (240, 320)}[name]
    x = test_image(r["B"], H, W)
    feats = golden_pipe.family.encoder().features(x)
    assert (feats - ref[f"{name}/features"]).abs().max().item() <= 1e-4
    tokens, recon = run.encode(x)
    assert len(tokens) == len(run.grid)
    for k, ((h, w), t) in enumerate(zip(run.grid, tokens)):
        assert t.dtype == torch.int64 and t.shape == (r["B"], h * w * 32)
        assert torch.equal(t, ref[f"{name}/bits/{k}"].long().reshape(r["B"], -1)), f"scale {k}"
    assert recon.shape == (r["B"], 3, H, W) and recon.dtype == torch.float32
    for k, t in enumerate(tokens):  # keep every bit: the latent is upstream's summed codes of its labels
        run.advance(k, t, None)
    assert (run.latent - ref[f"{name}/latent"]).abs().max().item() <= 1e-6


# ------------------------------------------------------------------------------------------------
# properties on ssgen's own tiny models (no goldens needed)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pipe(tiny_inf):
    return ssgen.load(str(tiny_inf), device="cpu", dtype="float32")


def test_keep_all_through_advance_reproduces_the_encoders_latent(tiny_pipe):
    from ssgen.backends.infinity.encoder import encode_image

    run = start(tiny_pipe, 2, aspect="4:3")
    H, W = run.image_size
    assert (H, W) == (240, 320)
    x = test_image(2, H, W)
    tokens, recon = run.encode(x)
    _, latent = encode_image(tiny_pipe.family.encoder(), tiny_pipe.family.vae, x[1:], run.vae_grid, False)
    assert all(t.shape == (2, h * w * 32) and set(t.unique().tolist()) <= {0, 1} for (h, w), t in zip(run.grid, tokens))
    assert sum(t.float().mean().item() for t in tokens) / len(tokens) == pytest.approx(0.5, abs=0.15)  # not constant
    image = keep_all(run, tokens)
    assert torch.equal(run.latent[1:], latent)  # exactly the encoder's latent (image 1, encoded alone)
    assert torch.equal(image, recon)


def test_tokens_are_in_the_sampled_layout(tiny_pipe):
    """Index p*d + j of scale k's tokens is bit j of grid position p: what `categories` makes of the logits."""
    run = start(tiny_pipe)
    tokens, _ = run.encode(test_image(1, *run.image_size))
    k = 2
    h, w = run.grid[k]
    logits = torch.zeros(1, h * w, 64)
    logits.view(1, h * w * 32, 2)[..., 1] = tokens[k].float() * 10  # logit pair j of position p favours bit t
    sampled = run.categories(logits).argmax(-1)  # (1, h*w*d)
    assert torch.equal(sampled, tokens[k])
    assert torch.equal(run.advance(0, tokens[0], None), tokens[0].view(1, 1, 1, 32).to(torch.uint8))


def test_patchified_8b_layout_inverts_advance(tmp_path):
    """8B: the 14-bit f8 latent's bits are pixel-unshuffled 2x2 to 56-bit tokens, the inverse of advance."""
    from ssgen.backends.infinity.encoder import multiscale_bits
    from ssgen.backends.infinity.tiny import make_tiny_infinity

    pipe = ssgen.load(str(make_tiny_infinity(tmp_path, patchify=True)), device="cpu", dtype="float32")
    run = start(pipe)
    x = test_image(1, *run.image_size)
    tokens, recon = run.encode(x)
    assert [t.shape for t in tokens] == [(1, h * w * 56) for h, w in run.grid]
    vbits = multiscale_bits(pipe.family.encoder().features(x), run.vae_grid)  # (1, 2h, 2w, 14)
    for k, t in enumerate(tokens):
        assert torch.equal(run.advance(k, t, None).long(), tokens[k].view(1, *run.grid[k], 56))
    from ssgen.backends.infinity.vae import unpatchify_bits

    assert torch.equal(unpatchify_bits(tokens[-1].view(1, *run.grid[-1], 56)), vbits[-1])
    assert torch.equal(run.decode(), recon)


def test_encoder_is_float32_in_a_bf16_run(tiny_inf, tiny_pipe):
    """The encoder runs in float32 whatever the run's dtype (a bit is a sign): a bf16 run gets float32's bits."""
    pipe = ssgen.load(str(tiny_inf), device="cpu", dtype="bfloat16")
    run, ref = start(pipe), start(tiny_pipe)
    x = test_image(1, *run.image_size)
    tokens, recon = run.encode(x)
    assert pipe.family.encoder().encoder.conv_in.conv.weight.dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(tokens, ref.encode(x)[0]))
    assert recon.dtype == torch.float32 and torch.isfinite(recon).all()


def test_encode_checks_the_image_size(tiny_pipe):
    run = start(tiny_pipe)
    with pytest.raises(ValueError, match=r"\(B, 3, 256, 256\)"):
        run.encode(torch.zeros(1, 3, 128, 128))


# ------------------------------------------------------------------------------------------------
# loading: lazy, strict
# ------------------------------------------------------------------------------------------------


def with_vae(tiny_inf: Path, tmp: Path, change) -> Path:
    """A copy of the tiny config whose VAE file is the tiny's with `change(state_dict)` applied."""
    cfg = yaml.safe_load(tiny_inf.read_text())
    cfg["weights"] = {r: {"path": str(tiny_inf.parent / s["path"])} for r, s in cfg["weights"].items()}
    sd = torch.load(tiny_inf.parent / "vae.pth", weights_only=True)
    change(sd["vae"])
    torch.save(sd, tmp / "vae.pth")
    cfg["weights"]["vae"] = {"path": str(tmp / "vae.pth")}
    (tmp / "m.yaml").write_text(yaml.safe_dump(cfg))
    return tmp / "m.yaml"


def drop_encoder(sd):
    for k in [k for k in sd if k.startswith("encoder.")]:
        del sd[k]


@pytest.mark.parametrize("change, msg", [
    (drop_encoder, r"has no encoder weights \(encoder\.\*\), which editing needs"),
    (lambda sd: sd.pop("encoder.mid.block_2.conv2.conv.bias"),
     r"missing 1 key\(s\): encoder\.mid\.block_2\.conv2\.conv\.bias"),
    (lambda sd: sd.update({"encoder.conv_in.conv.weight": torch.zeros(8, 3, 3, 3)}),
     r"encoder\.conv_in\.conv\.weight has shape"),
    (lambda sd: sd.update({"encoder.mid.attn_1.q.conv.weight": torch.zeros(1)}),
     r"unexpected key\(s\): encoder\.mid\.attn_1"),
], ids=["no-encoder", "missing-key", "wrong-shape", "unexpected-key"])
def test_encoder_weights_load_lazily_and_strictly(tiny_inf, tmp_path, change, msg):
    pipe = ssgen.load(str(with_vae(tiny_inf, tmp_path, change)), device="cpu", dtype="float32")
    res = pipe.generate(prompts=["a cat"], seed=0, ssg=False, pn="0.06M")  # generation never reads the encoder
    assert res.pixels.shape == (1, 3, 256, 256) and pipe.family._encoder is None
    run = start(pipe)
    with pytest.raises(WeightsError, match=msg):
        run.encode(test_image(1, *run.image_size))

"""Loading as upstream does, and no stricter, and the cast-while-assigning loader.

What the official loaders tolerate, ssgen tolerates and says in one note:
- Infinity (`Infinity.load_state_dict(strict=False)`): the training-only buffers lvl_1L,
  attn_bias_for_masking, Infinity_visible_kvlen and Infinity_invisible_qlen are dropped (silently, as
  VAR's); `cfg_uncond` is truncated or padded to the config's text_maxlen, padded with the rows
  upstream's constructor gives; keys the model lacks are ignored (the VAE's `load_cnn` ignores them too).
- HART: tokenizer/ and pytorch_model.bin through from_pretrained semantics (keys the model lacks ignored,
  the config's torch_dtype ignored, any file dtype loads); ema_model.bin strictly, as upstream's
  `load_state_dict` on top of the from_pretrained model.
- VAR: strict, as upstream's `load_state_dict(strict=True)`.
Missing weights and wrong shapes stay errors that name the file. Everything on the tiny models.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import model_with
from torch import nn

import ssgen
from ssgen.checkpoint import empty_model, load_into
from ssgen.errors import WeightsError


def load(yml: Path, dtype: str = "float32"):
    return ssgen.load(str(yml), device="cpu", dtype=dtype)


def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter, and the oneDNN-prepacked Linear weights (Infinity on the CPU) as dense tensors."""
    out = {k: v.detach() for k, v in module.named_parameters()}
    for name, m in module.named_modules():
        if "packed" in m.__dict__:
            out[f"{name}.weight"] = m.packed.to_dense()
    return out


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def inf_ref(tiny_inf):
    return load(tiny_inf)


@pytest.fixture(scope="module")
def inf_sd(tiny_inf) -> dict[str, torch.Tensor]:
    return torch.load(tiny_inf.parent / "transformer.pth", weights_only=True)


# ------------------------------------------------------------------------------------------------
# Infinity
# ------------------------------------------------------------------------------------------------


def test_infinity_drops_upstream_training_buffers(tiny_inf, inf_ref, inf_sd, tmp_path):
    L = 30
    sd = dict(inf_sd, lvl_1L=torch.zeros(1, L, dtype=torch.long), attn_bias_for_masking=torch.zeros(1, 1, L, L),
              Infinity_visible_kvlen=torch.arange(L, dtype=torch.int32),
              Infinity_invisible_qlen=torch.arange(L, dtype=torch.int32))
    torch.save(sd, tmp_path / "t.pth")
    pipe = load(model_with(tiny_inf, tmp_path, transformer=tmp_path / "t.pth"))
    assert same_weights(pipe.family.model, inf_ref.family.model)
    assert pipe.family.notes == []  # training-only buffers carry no weights: dropped without a word, as VAR's


def upstream_initial_null_text(rows: int, Ct5: int) -> torch.Tensor:
    """What upstream's constructor puts in cfg_uncond (infinity.py): trunc_normal_(std=1.2) from a CPU
    generator seeded 0, divided by sqrt(Ct5)."""
    t = torch.empty(rows, Ct5)
    torch.nn.init.trunc_normal_(t, std=1.2, generator=torch.Generator(device="cpu").manual_seed(0))
    return t / Ct5**0.5


@pytest.mark.parametrize("rows", [300, 600])
def test_infinity_cfg_uncond_fitted_to_text_maxlen(rows, tiny_inf, inf_ref, inf_sd, tmp_path):
    """The model's size comes from the config (text_maxlen 512): a longer cfg_uncond is truncated, a shorter
    one completed with upstream's initial rows; everything else loads unchanged, and one note says so."""
    old = inf_sd["cfg_uncond"]  # (512, Ct5)
    Ct5 = old.shape[1]
    g = torch.Generator().manual_seed(1)
    file_rows = old[:rows] if rows < 512 else torch.cat((old, torch.randn(rows - 512, Ct5, generator=g)))
    torch.save(dict(inf_sd, cfg_uncond=file_rows), tmp_path / "t.pth")
    pipe = load(model_with(tiny_inf, tmp_path, transformer=tmp_path / "t.pth"))

    got = pipe.family.model.cfg_uncond
    want = old if rows > 512 else torch.cat((old[:rows], upstream_initial_null_text(512, Ct5)[rows:]))
    assert got.shape == (512, Ct5) and torch.equal(got, want)
    ref, new = weights(inf_ref.family.model), weights(pipe.family.model)
    assert all(torch.equal(ref[k], new[k]) for k in ref if k != "cfg_uncond")
    (note,) = pipe.family.notes
    action = "padded" if rows < 512 else "truncated"
    assert f"cfg_uncond of t.pth {action} from {rows} to the model's text_maxlen 512 rows" in note
    assert "\n" not in note and note.startswith("infinity-tiny loaded as upstream's loader does")
    call = pipe.family.start(pipe.resolve(None, ["a red fox"]))  # a generation call, not run
    assert note in call.notes  # what reaches GenerationResult.notes and the CLI's output


def test_infinity_ignores_keys_it_does_not_use_with_a_note(tiny_inf, inf_ref, inf_sd, tmp_path):
    torch.save(dict(inf_sd, **{"extra_head.weight": torch.zeros(3, 4)}), tmp_path / "t.pth")
    vsd = torch.load(tiny_inf.parent / "vae.pth", weights_only=True)
    vsd["vae"]["discriminator.conv.weight"] = torch.zeros(2, 2)
    torch.save(vsd, tmp_path / "v.pth")
    pipe = load(model_with(tiny_inf, tmp_path, transformer=tmp_path / "t.pth", vae=tmp_path / "v.pth"))
    assert same_weights(pipe.family.model, inf_ref.family.model) and same_weights(pipe.family.vae, inf_ref.family.vae)
    (note,) = pipe.family.notes
    assert "ignored 1 key(s) of t.pth the model does not use (extra_head.weight)" in note
    assert "ignored 1 key(s) of v.pth the model does not use (discriminator.conv.weight)" in note


def test_infinity_wrong_checkpoints_still_rejected(tiny_inf, inf_sd, tmp_path):
    from ssgen.backends.infinity.vae import BSQVAE, VAEConfig

    p = tmp_path / "t.pth"
    torch.save({k: v for k, v in inf_sd.items() if k != "head_nm.ada_lin.1.bias"}, p)
    with pytest.raises(WeightsError, match=rf"checkpoint {p} is missing 1 key\(s\): head_nm.ada_lin.1.bias"):
        load(model_with(tiny_inf, tmp_path, transformer=p))
    torch.save(dict(inf_sd, **{"head_nm.ada_lin.1.bias": torch.zeros(7)}), p)
    with pytest.raises(WeightsError, match=rf"{p}: head_nm.ada_lin.1.bias has shape \(7,\) but this model expects"):
        load(model_with(tiny_inf, tmp_path, transformer=p))
    torch.save(dict(inf_sd, cfg_uncond=inf_sd["cfg_uncond"][:, :64]), p)  # only the rows are fitted, never the width
    with pytest.raises(WeightsError, match="cfg_uncond has shape"):
        load(model_with(tiny_inf, tmp_path, transformer=p))
    # the 8B's 14-bit patchify VAE given to a 2B-layout transformer: named, with the file that belongs there
    torch.save({"vae": BSQVAE(VAEConfig(codebook_dim=14, base_ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1))
                .state_dict()}, tmp_path / "v.pth")
    with pytest.raises(WeightsError, match="has 14-bit codes with patch size 8 .* use infinity_vae_d32reg.pth"):
        load(model_with(tiny_inf, tmp_path, vae=tmp_path / "v.pth"))


# ------------------------------------------------------------------------------------------------
# HART
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def hart_copy(tiny_hart, tmp_path) -> tuple[Path, Path]:
    """(YAML, hart/ folder) of a copy of the tiny HART that a test may edit."""
    hart = Path(shutil.copytree(tiny_hart.parent / "hart", tmp_path / "hart"))
    return model_with(tiny_hart, tmp_path, transformer=hart / "llm", vae=hart / "tokenizer"), hart


@pytest.fixture(scope="module")
def hart_ref(tiny_hart):
    return load(tiny_hart)


def test_hart_tokenizer_and_raw_weights_load_as_from_pretrained(hart_copy, hart_ref, tmp_path):
    from safetensors.torch import load_file, save_file

    yml, hart = hart_copy
    tok = hart / "tokenizer" / "model.safetensors"
    save_file(dict(load_file(str(tok)), **{"vae.extra_norm.weight": torch.ones(4)}), str(tok))
    llm = hart / "llm"
    sd = torch.load(llm / "pytorch_model.bin", weights_only=True)
    torch.save(dict(sd, **{"extra_proj.weight": torch.zeros(2, 2)}), llm / "pytorch_model.bin")
    cfg = yaml.safe_load(yml.read_text())
    cfg["model"] = {"use_ema": False}
    yml.write_text(yaml.safe_dump(cfg))
    pipe = load(yml)
    assert same_weights(pipe.family.tokenizer, hart_ref.family.tokenizer)
    (note,) = pipe.family.notes
    assert note.startswith("hart-tiny loaded as upstream's from_pretrained does")
    assert "ignored 1 key(s) of llm/pytorch_model.bin the model does not use (extra_proj.weight)" in note
    assert "ignored 1 key(s) of tokenizer/model.safetensors the model does not use (extra_norm.weight)" in note


def test_hart_ema_is_strict_as_upstream(hart_copy, hart_ref):
    """Upstream loads ema_model.bin with load_state_dict(strict=True): a key the model lacks is an error; the
    training-only buffers are neither needed nor required."""
    yml, hart = hart_copy
    ema = hart / "llm" / "ema_model.bin"
    sd = torch.load(ema, weights_only=True)
    torch.save({k: v for k, v in sd.items() if k not in ("lvl_1L", "attn_bias_for_masking")}, ema)
    assert same_weights(load(yml).family.model, hart_ref.family.model)
    torch.save(dict(sd, **{"extra_proj.weight": torch.zeros(2, 2)}), ema)
    with pytest.raises(WeightsError, match=rf"{ema} has 1 unexpected key\(s\): extra_proj.weight"):
        load(yml)
    torch.save({k: v for k, v in sd.items() if k != "head.bias"}, ema)
    with pytest.raises(WeightsError, match=rf"{ema} is missing 1 key\(s\): head.bias"):
        load(yml)


def test_hart_bf16_files_and_torch_dtype_field(hart_copy, hart_ref):
    """A folder saved in bf16 (config torch_dtype: bfloat16) loads in the run's dtype, as from_pretrained does
    (transformers 4.42 ignores the field unless told otherwise and loads in float32)."""
    yml, hart = hart_copy
    ema = hart / "llm" / "ema_model.bin"
    sd = torch.load(ema, weights_only=True)
    torch.save({k: v.bfloat16() if v.is_floating_point() else v for k, v in sd.items()}, ema)
    cj = hart / "llm" / "config.json"
    cj.write_text(json.dumps(dict(json.loads(cj.read_text()), torch_dtype="bfloat16")))
    model = load(yml).family.model
    want = {k: v.bfloat16().float() for k, v in weights(hart_ref.family.model).items()}
    got = weights(model)
    assert all(v.dtype == torch.float32 for v in got.values())
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


# ------------------------------------------------------------------------------------------------
# VAR, and the loader itself
# ------------------------------------------------------------------------------------------------


def test_var_stays_strict(tiny_var, tmp_path):
    sd = torch.load(tiny_var.parent / "transformer.pth", weights_only=True)
    torch.save(dict(sd, **{"extra.weight": torch.zeros(2)}), tmp_path / "t.pth")
    with pytest.raises(WeightsError, match=r"has 1 unexpected key\(s\): extra.weight"):
        load(model_with(tiny_var, tmp_path, transformer=tmp_path / "t.pth"))


def test_each_family_casts_as_it_assigns(tiny_var, tiny_inf, tiny_hart):
    """bf16 runs of fp32 files: VAR and HART all bf16, Infinity only its blocks (the rest float32, as upstream's
    block.bfloat16()), the text encoders loaded in bf16 directly; a float32 run keeps T5 in float32."""
    var = load(tiny_var, "bfloat16").family
    assert {p.dtype for m in (var.var, var.vae) for p in m.parameters()} == {torch.bfloat16}
    inf = load(tiny_inf, "bfloat16").family
    for name, w in weights(inf.model).items():
        if w.numel():  # a prepacked Linear's plain weight is an empty placeholder
            assert w.dtype == (torch.bfloat16 if name.startswith("block_chunks.") else torch.float32), name
    assert {p.dtype for p in inf.vae.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in inf.text.encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in load(tiny_inf).family.text.encoder.parameters()} == {torch.float32}
    hart = load(tiny_hart, "bfloat16").family
    assert {p.dtype for m in (hart.model, hart.tokenizer, hart.text.model) for p in m.parameters()} == {torch.bfloat16}


def test_loaded_weights_own_their_memory(tiny_var, tmp_path):
    """The tensors are copies, not views of the memory-mapped file: a cached file rewritten later cannot
    change (or, truncated, crash) a running model."""
    for name in ("transformer.pth", "vae.pth"):
        shutil.copy(tiny_var.parent / name, tmp_path / name)
    yml = model_with(tiny_var, tmp_path, transformer=tmp_path / "transformer.pth", vae=tmp_path / "vae.pth")
    var = load(yml).family.var
    before = {k: v.clone() for k, v in var.state_dict().items()}
    p = tmp_path / "transformer.pth"
    size = p.stat().st_size
    with open(p, "r+b") as f:  # overwritten in place: a mapped view would now read zeros
        f.write(bytes(size))
    assert all(torch.equal(v, before[k]) for k, v in var.state_dict().items())


def test_load_into_consumes_and_casts_by_policy():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(2, 2)
            self.register_buffer("steps", torch.zeros(2, dtype=torch.long))

    with empty_model():
        m = M()
    assert m.a.weight.is_meta
    src = M()
    sd = dict(src.state_dict(), unused=torch.zeros(1))
    ignored = load_into(m, sd, "test", dtype=torch.bfloat16, cast=lambda k: k.startswith("a."), unexpected_ok=True)
    assert ignored == ["unused"] and sd == {}  # every entry consumed: the sources are released as they are copied
    assert m.a.weight.dtype == torch.bfloat16 and m.b.weight.dtype == torch.float32 and m.steps.dtype == torch.long
    assert isinstance(m.a.weight, nn.Parameter) and "steps" in dict(m.named_buffers())
    assert torch.equal(m.a.weight, src.a.weight.bfloat16()) and torch.equal(m.b.bias, src.b.bias)


def test_empty_model_skips_initialisers_of_meta_tensors_only():
    saved = nn.init.normal_
    with empty_model():
        lin = nn.Linear(4, 4)
        real = nn.init.ones_(torch.empty(3, device="cpu"))  # a real tensor is still initialised
    assert lin.weight.is_meta and torch.equal(real, torch.ones(3))
    assert nn.init.normal_ is saved  # restored

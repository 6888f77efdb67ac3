"""Bad weights files answer with one line that names the real cause and the real fix.

Truncated, empty, corrupted or foreign files in every role of the three families, files given for the
wrong part, and `ssgen models path|remove|download` of models that are not downloaded or unknown. The
headline cases run the CLI (one as a subprocess, the rest in this process through Typer's runner: exit
code 2, one `error:` line, no traceback); the others call `ssgen.load`, which is what the CLI runs. All
on the tiny models (conftest's, never written to: a damaged file is always a copy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import copy_folder, model_with, one_line_error, ssgen, ssgen_here, truncated

import ssgen as ssgen_api
from ssgen.checkpoint import read_state_dict
from ssgen.errors import SSGenError, WeightsError

HTML = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>\n"
LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 1803182080\n"


def load_error(yml: Path, *needles: str) -> str:
    """ssgen.load fails with a one-line WeightsError holding every needle; returns its message."""
    with pytest.raises(SSGenError) as info:
        ssgen_api.load(str(yml), device="cpu", dtype="float32")
    message = str(info.value)
    assert isinstance(info.value, WeightsError), message
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# ------------------------------------------------------------------------------------------------
# through the CLI
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["infinity", "hart"])
def test_truncated_text_encoder(family, tiny_inf, tiny_hart, tmp_path):
    """A half-downloaded text-encoder model.safetensors (T5 for Infinity, Qwen2 for HART) is named, with the fix.
    Infinity's runs the installed `ssgen` as a subprocess, HART's the same CLI in this process."""
    src = tiny_inf if family == "infinity" else tiny_hart
    te = copy_folder(src.parent / "text_encoder", tmp_path / "text_encoder")
    truncated(te / "model.safetensors", te / "model.safetensors")
    out = tmp_path / "x.png"
    run = ssgen if family == "infinity" else ssgen_here
    r = run("generate", "-m", str(model_with(src, tmp_path, text_encoder=te)), "-p", "a red fox", "-o", str(out),
            "--device", "cpu")
    one_line_error(r, str(te / "model.safetensors"), "truncated", "download it again")
    assert not out.exists()


def test_random_bytes_pth_is_not_called_pickled_code(tiny_var, tmp_path):
    bad = tmp_path / "transformer.pth"
    bad.write_bytes(os.urandom(4096).replace(b"\x80", b"\x00"))  # no pickle opcode at the start by chance
    r = ssgen_here("generate", "-m", str(model_with(tiny_var, tmp_path, transformer=bad)), "-c", "1",
                   "-o", str(tmp_path / "x.png"))
    line = one_line_error(r, "not a PyTorch checkpoint (corrupted or not a checkpoint)")
    assert "pickle" not in line


def test_vae_given_as_transformer(tiny_var, tmp_path):
    r = ssgen_here("generate", "-m", str(model_with(tiny_var, tmp_path, transformer=tiny_var.parent / "vae.pth")),
                   "-c", "1", "-o", str(tmp_path / "x.png"))
    line = one_line_error(r, "is a VAR VQVAE checkpoint, not a VAR transformer", "weights.transformer",
                          "var_d16.pth")
    assert "max()" not in line


@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """An empty HF_HOME, online as far as the settings go, and a Hub that cannot be reached."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def test_models_path_not_downloaded(hf_env, tmp_path):
    """Not offline, just not downloaded: say so and how to get the weights."""
    r = ssgen_here("models", "path", "var-d16")
    line = one_line_error(r, "var-d16 is not downloaded", "ssgen models download var-d16", str(tmp_path / "hf"))
    assert "offline" not in line


def test_models_remove_nothing_cached(hf_env):
    """Nothing cached: no prompt, exit 0, and it says so (no "removed 0.0 MB")."""
    r = ssgen_here("models", "remove", "var-d16")
    assert r.exit_code == 0, r.output
    assert "nothing of var-d16 is in the cache" in r.stdout
    assert "remove the cached" not in r.stdout + r.stderr and "MB" not in r.stdout


@pytest.mark.parametrize("command", ["download", "path", "remove"])
def test_models_unknown_name(command, hf_env, tmp_path):
    r = ssgen_here("models", command, "no-such-model")
    one_line_error(r, "unknown model 'no-such-model'", "var-d16")
    assert not (tmp_path / "hf").exists()


# ------------------------------------------------------------------------------------------------
# broken files, through ssgen.load
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["transformer", "vae"])
@pytest.mark.parametrize("damage, needles", [
    ("truncated", ("incomplete zip archive", "truncated", "download it again")),
    ("empty", ("is empty (0 bytes)", "download it again")),
    ("html", ("not a PyTorch checkpoint", "an HTML page")),
    ("lfs", ("not a PyTorch checkpoint", "Git LFS pointer", "git lfs pull")),
    ("folder", ("is a folder", "must be a checkpoint file")),
])
def test_damaged_var_file(role, damage, needles, tiny_var, tmp_path):
    src, bad = tiny_var.parent / f"{role}.pth", tmp_path / f"{role}.pth"
    if damage == "truncated":
        truncated(src, bad)
    elif damage == "folder":
        bad.mkdir()
    else:
        bad.write_bytes({"empty": b"", "html": HTML, "lfs": LFS}[damage])
    message = load_error(model_with(tiny_var, tmp_path, **{role: bad}), str(bad), *needles)
    assert "pickled" not in message


def test_damaged_infinity_and_hart_files(tiny_inf, tiny_hart, tmp_path):
    """Infinity's .pth files and HART's llm/*.bin, tokenizer safetensors and JSON configs."""
    inf = tiny_inf.parent
    bad = truncated(inf / "vae.pth", tmp_path / "vae.pth", 0.1)
    load_error(model_with(tiny_inf, tmp_path, vae=bad), str(bad), "truncated")
    (tmp_path / "t.pth").write_bytes(HTML)
    load_error(model_with(tiny_inf, tmp_path, transformer=tmp_path / "t.pth"), "an HTML page")

    hart = copy_folder(tiny_hart.parent / "hart", tmp_path / "hart")
    yml = model_with(tiny_hart, tmp_path, transformer=hart / "llm", vae=hart / "tokenizer")
    tok = hart / "tokenizer" / "model.safetensors"
    good = tok.read_bytes()
    truncated(tok, tok)
    load_error(yml, str(tok), "its header describes more bytes than the file has", "download it again")
    tok.write_bytes(HTML)
    load_error(yml, str(tok), "not a safetensors file", "an HTML page")
    tok.write_bytes(good)
    truncated(hart / "llm" / "ema_model.bin", hart / "llm" / "ema_model.bin")
    load_error(yml, "ema_model.bin", "incomplete zip archive")
    (hart / "llm" / "config.json").write_text('{"depth": 2, "embed_')
    load_error(yml, str(hart / "llm" / "config.json"), "not valid JSON", "truncated")
    (hart / "llm" / "config.json").write_text("[1, 2]")
    load_error(yml, "holds a JSON list, not HART's llm/config.json")


def test_damaged_text_encoder_files(tiny_inf, tiny_hart, tmp_path):
    """Broken tokenizer/config files, a missing tokenizer, and weights of another model in the folder."""
    te = copy_folder(tiny_inf.parent / "text_encoder", tmp_path / "t5")
    yml = model_with(tiny_inf, tmp_path, text_encoder=te)
    (te / "tokenizer.json").write_bytes(HTML)
    load_error(yml, str(te / "tokenizer.json"), "not valid JSON", "an HTML page")
    (te / "tokenizer.json").unlink()
    load_error(yml, "has no tokenizer file (tokenizer.json, spiece.model)")
    shutil.copy(tiny_inf.parent / "text_encoder" / "tokenizer.json", te / "tokenizer.json")
    shutil.copy(tiny_hart.parent / "text_encoder" / "model.safetensors", te / "model.safetensors")
    load_error(yml, "T5 text encoder weights", "lack 22 of the model's 22 tensors", "another model")

    qwen = copy_folder(tiny_hart.parent / "text_encoder", tmp_path / "qwen")
    yml = model_with(tiny_hart, tmp_path, text_encoder=qwen)
    (qwen / "config.json").write_text("")
    load_error(yml, str(qwen / "config.json"), "is empty (0 bytes)")
    load_error(model_with(tiny_hart, tmp_path, text_encoder=qwen / "model.safetensors"),
               "is a file, but weights.text_encoder must be the model's folder")


def test_pickled_objects_are_named_as_such(tmp_path):
    """Only a well-formed file that pickles Python objects is refused for holding code."""
    p = tmp_path / "train.pth"
    torch.save({"w": torch.zeros(2), "args": argparse.Namespace(lr=1e-4)}, p)
    with pytest.raises(WeightsError, match=r"holds Python objects besides tensors \(argparse\.Namespace\)"):
        read_state_dict(p)
    torch.save({0: torch.zeros(2)}, p)
    with pytest.raises(WeightsError, match="key 0 is not a parameter name"):
        read_state_dict(p)
    torch.save({"w": torch.zeros(2)}, p, _use_new_zipfile_serialization=False)  # the legacy format still loads
    assert read_state_dict(p)["w"].shape == (2,)
    p.write_bytes(b"not a checkpoint at all, just some text\n")
    not_pth = r"not a PyTorch checkpoint \(corrupted or not a checkpoint\): it holds text;"
    with pytest.raises(WeightsError, match=not_pth):
        read_state_dict(p)


class _Runs:
    """Pickled as a call of `fn(*args)`: what a checkpoint that runs code on loading holds."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _Unknown:
    """A class weights_only does not know: the unpickler would import and build it."""


def test_checkpoint_that_would_run_code_is_refused_for_safety(tiny_var, tmp_path):
    """A pickle calling a global of a blocked module (os.system), a builtin (eval) or an unknown class is refused
    for safety, never called "damaged", and never runs: torch's weights_only unpickler stops at the global."""
    ran = tmp_path / "ran"
    cases = {"system": (_Runs(os.system, f"touch {ran}"), f"{os.system.__module__}.system"),
             "eval": (_Runs(eval, f"open({str(ran)!r}, 'w')"), "eval"),
             "unknown": (_Unknown(), f"{__name__}._Unknown")}
    for name, (obj, global_name) in cases.items():
        p = tmp_path / f"{name}.pth"
        torch.save({"w": torch.zeros(2), "x": obj}, p)
        with pytest.raises(WeightsError, match="holds Python objects besides tensors") as info:
            read_state_dict(p)
        assert f"({global_name})" in str(info.value) and "damaged" not in str(info.value)
    r = ssgen_here("generate", "-m", str(model_with(tiny_var, tmp_path, transformer=tmp_path / "system.pth")),
                   "-c", "1", "-o", str(tmp_path / "x.png"))
    line = one_line_error(r, f"system.pth holds Python objects besides tensors ({os.system.__module__}.system)",
                          "could run code")
    assert "download it again" not in line
    assert not ran.exists()


def test_sharded_checkpoint_with_missing_or_truncated_shard(tiny_inf, tmp_path):
    from safetensors.torch import save_file

    sd = torch.load(tiny_inf.parent / "transformer.pth", weights_only=True)
    folder = tmp_path / "transformer"
    folder.mkdir()
    keys = sorted(sd)
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for name, part in zip(names, (keys[: len(keys) // 2], keys[len(keys) // 2:])):
        save_file({k: sd[k].contiguous() for k in part}, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    yml = model_with(tiny_inf, tmp_path, transformer=folder)
    ssgen_api.load(str(yml), device="cpu", dtype="float32")  # the sharded layout loads
    truncated(folder / names[1], folder / names[1])
    load_error(yml, str(folder / names[1]), "truncated")
    (folder / names[1]).unlink()
    load_error(yml, "names 1 shard(s) missing", names[1], "download them again")


# ------------------------------------------------------------------------------------------------
# a file of another part or another model
# ------------------------------------------------------------------------------------------------


def test_files_of_another_part_or_model(tiny_var, tiny_inf, tiny_hart, tmp_path):
    var, inf, hart = tiny_var.parent, tiny_inf.parent, tiny_hart.parent
    load_error(model_with(tiny_var, tmp_path, vae=var / "transformer.pth"),
               "is a VAR transformer checkpoint, not a VAR VQVAE (it belongs in weights.transformer)",
               "vae_ch160v4096z32.pth")
    load_error(model_with(tiny_var, tmp_path, vae=inf / "vae.pth"),
               "is an Infinity BSQ VAE checkpoint, not a VAR VQVAE (it belongs to an Infinity model)")
    load_error(model_with(tiny_inf, tmp_path, transformer=inf / "vae.pth"),
               "is an Infinity BSQ VAE checkpoint, not an Infinity transformer (it belongs in weights.vae)",
               "infinity_2b_reg.pth")
    load_error(model_with(tiny_inf, tmp_path, vae=var / "vae.pth"), "is a VAR VQVAE checkpoint",
               "infinity_vae_d32reg.pth")
    load_error(model_with(tiny_inf, tmp_path, text_encoder=hart / "text_encoder"),
               "is a Qwen2 text encoder folder, not a T5 text encoder", "google/flan-t5-xl")
    load_error(model_with(tiny_hart, tmp_path, transformer=hart / "hart" / "tokenizer"),
               "is a HART tokenizer (tokenizer/) folder, not a HART transformer (llm/)", "weights.vae")
    load_error(model_with(tiny_hart, tmp_path, transformer=hart / "hart"),
               "holds one: point weights.transformer at", str(hart / "hart" / "llm"))
    load_error(model_with(tiny_hart, tmp_path, text_encoder=inf / "text_encoder"),
               "is a T5 text encoder folder, not a Qwen2 text encoder")
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 3}, tmp_path / "nested.pth")
    load_error(model_with(tiny_var, tmp_path, transformer=tmp_path / "nested.pth"), "nested under 'model'")


# ------------------------------------------------------------------------------------------------
# the file system and the config's sha256
# ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tiny_var, tmp_path):
    bad = tmp_path / "vae.pth"
    shutil.copy(tiny_var.parent / "vae.pth", bad)
    bad.chmod(0)
    try:
        load_error(model_with(tiny_var, tmp_path, vae=bad), "Permission denied", "check the file's permissions")
    finally:
        bad.chmod(0o644)


def test_sha256_of_local_weights(tiny_var, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = yaml.safe_load(model_with(tiny_var, tmp_path).read_text())
    cfg["weights"]["vae"]["sha256"] = "0" * 64
    (tmp_path / "sha.yaml").write_text(yaml.safe_dump(cfg))
    load_error(tmp_path / "sha.yaml", "sha256 mismatch", str(tiny_var.parent / "vae.pth"), "`sha256:`")
    cfg["weights"]["vae"] = {"path": str(tmp_path), "sha256": "0" * 64}
    (tmp_path / "sha.yaml").write_text(yaml.safe_dump(cfg))
    load_error(tmp_path / "sha.yaml", "which is a folder: a sha256 checks one file")


def test_transformer_without_blocks(tiny_var, tmp_path):
    """The kind is right but the blocks are gone (an incomplete export): named, not `max() arg is an empty sequence`."""
    sd = torch.load(tiny_var.parent / "transformer.pth", weights_only=True)
    torch.save({k: v for k, v in sd.items() if not k.startswith("blocks.")}, tmp_path / "t.pth")
    load_error(model_with(tiny_var, tmp_path, transformer=tmp_path / "t.pth"), "without transformer blocks (blocks.*)")

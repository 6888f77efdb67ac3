"""Switti's text conditioning (ssgen/backends/switti/text.py) against the official code's encodings
(goldens/switti/tiny: two tiny CLIPModel checkpoints with the real widths 768 / 1280, float32 on the CPU):
ids, context, pooled and attn_bias of every golden run, the null / negative prompt encoded alone, CLIP-bigG's
"!" (= its pad id) told apart from padding by the mask, upstream's slow-tokenizer text cleaning (ftfy), and
one-line errors for wrong folders.
"""

from __future__ import annotations

import json
import shutil
import sys
import types

import pytest
import torch
from conftest import load_tensors, need_goldens

from ssgen.backends.switti.text import MAX_TOKENS, TextEncoders
from ssgen.errors import OptionError, WeightsError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def golden():
    d = need_goldens("switti", "tiny")
    return d, json.loads((d / "runs.json").read_text()), load_tensors(d / "runs.safetensors")


@pytest.fixture(scope="module")
def encoders(golden):
    d = golden[0]
    return TextEncoders.load(d / "text_encoder", d / "text_encoder_2", CPU, torch.float32)


def _run_names() -> list[str]:  # the golden runs, read at collection when the goldens are there
    try:
        d = need_goldens("switti", "tiny")
    except BaseException:  # skipped (or failed) again by the fixtures with the message
        return ["goldens-missing"]
    return [r["name"] for r in json.loads((d / "runs.json").read_text())["runs"]]


@pytest.mark.parametrize("name", _run_names())
def test_encodings_match_the_official_code(golden, encoders, name):
    """Every run: ids equal, context (cond rows = R/prompt_embeds, uncond rows = the null prompt's encoding
    repeated), pooled [cond; uncond] and attn_bias within 1e-5 (the bias exactly 0 / -inf). Covers the
    negative-prompt run ("blurry, low quality"), the two prompts of different lengths and a prompt with "!"."""
    d, runs, R = golden
    run = next(r for r in runs["runs"] if r["name"] == name)
    null = runs["null_prompts"][str(run["null_key"])]
    assert null == (run["null_prompt"] or "")
    B = len(run["prompts"])
    out = encoders.encode(run["prompts"], negative_prompt=null)
    assert out.notes == []
    assert out.input_ids.dtype == torch.long and torch.equal(out.input_ids, R[f"{name}/input_ids"])
    assert torch.equal(out.input_ids_2, R[f"{name}/input_ids_2"])
    assert out.context.shape == (2 * B, MAX_TOKENS, 2048) and out.context.dtype == torch.float32
    torch.testing.assert_close(out.context[:B], R[f"{name}/prompt_embeds"], atol=1e-5, rtol=0)
    N = f"null/{run['null_key']}"
    torch.testing.assert_close(out.context[B:], R[f"{N}/prompt_embeds"].expand(B, -1, -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.pooled, R[f"{name}/pooled"], atol=1e-5, rtol=0)
    assert out.attn_bias.dtype == torch.float32 and torch.equal(out.attn_bias, R[f"{name}/attn_bias"])


def test_exclamation_is_text_not_padding(encoders):
    """CLIP-bigG pads with "!" (id 0) and tokenises a typed "!" as id 0 too: the bias comes from the tokenizer's
    mask, so the typed ones are attended to and only the padding is -inf."""
    out = encoders.encode(["wow! a fox!"])
    ids, bias = out.input_ids_2[0], out.attn_bias[0]
    n = int((bias == 0).sum())  # start, 5 tokens (wow ! a fox !), end
    assert n == int((out.input_ids[0] != encoders.tok_1.pad).sum()) + 1  # CLIP-L: the end token is its pad id
    assert (ids[:n] == 0).sum() == 2, ids  # the two typed "!" ...
    assert torch.isinf(bias[n:]).all() and (ids[n:] == 0).all()  # ... are not padding, which has the same id
    assert int((ids != 0).sum()) < n  # a mask derived from the ids would drop the typed "!"


def test_long_prompt_is_truncated_with_a_note(encoders):
    prompt, negative = "a red fox " * 30, "blurry " * 80
    out = encoders.encode([prompt, "a cat"], negative_prompt=negative)
    assert (out.attn_bias[0] == 0).all() and (out.attn_bias[2] == 0).all()  # all 77 tokens attended
    assert out.input_ids[0, -1] == encoders.tok_1.eos and out.input_ids_2[0, -1] == encoders.tok_2.eos
    count = [len(encoders.tok_1.tok(t).input_ids) for t in (prompt, negative)]  # transformers' own count
    assert min(count) > MAX_TOKENS
    assert out.notes == [f"prompt 0 has {count[0]} tokens; truncated to CLIP's 77",
                         f"the negative prompt has {count[1]} tokens; truncated to CLIP's 77"]


def test_prompts_are_checked(encoders):
    with pytest.raises(OptionError, match="empty"):
        encoders.encode(["a cat", "  "])
    with pytest.raises(OptionError, match="negative_prompt must be text"):
        encoders.encode(["a cat"], negative_prompt=None)


def test_bfloat16_run_loads_quietly(golden, encoders, capfd):
    """Loaded in the run dtype: context and pooled in bfloat16, the bias stays float32; values near fp32's. The
    load prints nothing (transformers would list the CLIPModel's unused vision keys and show progress bars)."""
    d = golden[0]
    enc = TextEncoders.load(d / "text_encoder", d / "text_encoder_2", CPU, torch.bfloat16)
    assert capfd.readouterr() == ("", "")
    out, ref = enc.encode(["a cat"]), encoders.encode(["a cat"])
    assert out.context.dtype == out.pooled.dtype == torch.bfloat16 and out.attn_bias.dtype == torch.float32
    assert (out.context.float() - ref.context).abs().max() < 0.1 * ref.context.abs().max()
    assert enc.to(CPU) is enc


# ------------------------------------------------------------------------------------------------
# text cleaning: upstream's slow CLIPTokenizer runs ftfy.fix_text on each piece between added tokens
# ------------------------------------------------------------------------------------------------


def _fake_ftfy(monkeypatch):
    """A stand-in ftfy whose fix_text uncurls the apostrophe and narrows the full-width "！" (as ftfy does)."""
    mod = types.ModuleType("ftfy")
    mod.fix_text = lambda s: s.replace("\u2019", "'").replace("\uff01", "!")
    monkeypatch.setitem(sys.modules, "ftfy", mod)


def test_text_is_repaired_piece_by_piece_when_ftfy_is_there(encoders, monkeypatch):
    _fake_ftfy(monkeypatch)
    out = encoders.encode(["don\u2019t stop", "wow\uff01", "wow"], negative_prompt="don\u2019t")
    assert out.notes == []
    straight = encoders.encode(["don't stop"], negative_prompt="don't")
    assert torch.equal(out.input_ids_2[0], straight.input_ids_2[0])
    assert torch.equal(out.context[3], straight.context[1])  # the negative prompt is repaired too
    # the "!" that ftfy makes of "！" is text for the slow tokenizer: BPE-encoded, not CLIP-bigG's pad id 0
    ids, n = out.input_ids_2[1], int((out.attn_bias[1] == 0).sum())
    assert n == int((out.attn_bias[2] == 0).sum()) + 1 and (ids[:n] != 0).all(), ids  # "wow" and one more token


def test_without_ftfy_the_text_is_used_as_typed_with_a_note(encoders, monkeypatch):
    """No ftfy: the text goes as typed (NFC, lowercased), and a note names the prompts ftfy could change."""
    from transformers import CLIPTokenizer

    monkeypatch.setitem(sys.modules, "ftfy", None)  # import ftfy -> ImportError
    out = encoders.encode(["don\u2019t stop", "a cat"], negative_prompt="rock &amp; roll")
    assert len(out.notes) == 1 and "ftfy is not installed: prompt 0, the negative prompt" in out.notes[0]
    assert "prompt 1" not in out.notes[0]
    ref = CLIPTokenizer.from_pretrained(str(need_goldens("switti", "tiny", "text_encoder_2")))
    expect = ref(["don\u2019t stop"], padding="max_length", max_length=MAX_TOKENS, truncation=True).input_ids[0]
    assert out.input_ids_2[0].tolist() == expect  # what transformers' own (Rust) CLIPTokenizer gives
    assert encoders.encode(["a cat"]).notes == []  # plain ASCII: nothing ftfy would change


def test_real_ftfy_uncurls_quotes(encoders):
    """With the real ftfy (upstream's environment has it): a curly apostrophe reads as a straight one."""
    pytest.importorskip("ftfy")
    a, b = encoders.encode(["don\u2019t stop", "don't stop"]).input_ids
    assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------
# wrong folders: one-line WeightsErrors naming the folder
# ------------------------------------------------------------------------------------------------


def _one_line(e: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def test_swapped_folders_are_refused_by_width(golden):
    d = golden[0]
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(d / "text_encoder_2", d / "text_encoder", CPU, torch.float32)
    _one_line(e, str(d / "text_encoder_2"), "1280 wide", "CLIP-L (768)", "weights.text_encoder")


def test_second_encoder_of_the_wrong_width(golden, tmp_path):
    d = golden[0]
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(d / "text_encoder", d / "text_encoder", CPU, torch.float32)
    _one_line(e, str(d / "text_encoder"), "768 wide", "CLIP-bigG (1280)", "weights.text_encoder_2")


def test_folder_without_config(golden, tmp_path):
    d = golden[0]
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(tmp_path, d / "text_encoder_2", CPU, torch.float32)
    _one_line(e, str(tmp_path), "no config.json")
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(d / "text_encoder" / "config.json", d / "text_encoder_2", CPU, torch.float32)
    _one_line(e, "is a file")


def test_folder_without_tokenizer_or_of_another_model(golden, tmp_path):
    d = golden[0]
    bad = tmp_path / "clip"
    shutil.copytree(d / "text_encoder", bad)
    for f in ("vocab.json", "tokenizer.json"):
        (bad / f).unlink()
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(bad, d / "text_encoder_2", CPU, torch.float32)
    _one_line(e, str(bad), "no tokenizer")
    shutil.copy(d / "text_encoder" / "vocab.json", bad / "vocab.json")
    (bad / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 768}))
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(bad, d / "text_encoder_2", CPU, torch.float32)
    _one_line(e, str(bad), "'t5' model, not CLIP")


def test_truncated_weights_file(golden, tmp_path):
    d = golden[0]
    bad = tmp_path / "clip"
    shutil.copytree(d / "text_encoder", bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as e:
        TextEncoders.load(bad, d / "text_encoder_2", CPU, torch.float32)
    _one_line(e, str(bad / "model.safetensors"), "truncated")

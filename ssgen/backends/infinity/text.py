"""Infinity's text encoder glue: google/flan-t5-xl's encoder through `transformers`.

As upstream's `encode_prompt`: tokenise with truncation to 512 tokens, run the encoder, keep each
prompt's len_i rows (len_i = its tokens including `</s>`) and concatenate them: `packed (sum(lens),
Ct5)` float32 plus `lens`. Two ways to run the encoder:
- prompt by prompt (default, rng="per-image"): each prompt runs alone on exactly its own tokens: the
  same features as upstream's within float rounding (~1e-6), at a fraction of the cost, and a prompt's
  features do not depend on the other prompts of its batch (with padding they move by ~1e-6, which the
  transformer's bf16 cross-attention rounding turns into flipped bits);
- `batched=True` (rng="batch", upstream's numbers): as upstream, all prompts in one batch, each padded
  to 512 tokens, the padding masked out of every attention.

    enc = TextEncoder.load(folder, device, dtype)
    packed, lens, notes = enc.encode(["a red fox", "a blue car"])                 # per prompt
    packed, lens, notes = enc.encode(["a red fox", "a blue car"], batched=True)   # as upstream
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...checkpoint import check_pretrained, load_pretrained
from ...errors import WeightsError
from ...quiet import quiet_transformers
from ..checks import check_prompts

MAX_TOKENS = 512
TOKENIZER_FILES = ("tokenizer.json", "spiece.model")  # fast or sentencepiece: flan-t5-xl ships both


def encode_prompts(tokenizer, encoder, prompts: list[str], max_tokens: int = MAX_TOKENS,
                   what: str = "prompt", batched: bool = False) -> tuple[torch.Tensor, list[int], list[str]]:
    """prompts -> (packed (sum(lens), Ct5) float32 on the encoder's device, lens, notes).

    Prompts longer than `max_tokens` tokens (with `</s>`) are truncated, as upstream does, and a note
    says so. `batched`: one padded batch, as upstream (`encode_batch`), else prompt by prompt. The
    module-level entry point the conformance tests compare with the goldens.
    """
    prompts = check_prompts(prompts, what)
    notes = []
    for i, p in enumerate(prompts):
        n = len(tokenizer(p, truncation=False)["input_ids"])
        if n > max_tokens:
            notes.append(f"{what} {i} has {n} tokens; truncated to the text encoder's {max_tokens}")
    if batched:
        packed, lens = encode_batch(tokenizer, encoder, prompts, max_tokens)
        return packed, lens, notes
    dev = next(encoder.parameters()).device
    feats: dict[str, torch.Tensor] = {}  # prompt -> (len, Ct5); a repeated prompt (negative prompts) runs once
    with torch.inference_mode():
        for p in prompts:
            if p not in feats:
                ids = tokenizer(text=p, max_length=max_tokens, truncation=True, return_tensors="pt").input_ids
                feats[p] = encoder(input_ids=ids.to(dev)).last_hidden_state[0].float()  # (len, Ct5)
    packed = torch.cat([feats[p] for p in prompts])  # (sum(lens), Ct5)
    return packed, [feats[p].shape[0] for p in prompts], notes


def encode_batch(tokenizer, encoder, prompts: list[str],
                 max_tokens: int = MAX_TOKENS) -> tuple[torch.Tensor, list[int]]:
    """Upstream's arithmetic: every prompt padded to `max_tokens`, all in one batch, the padding masked
    -> (packed (sum(lens), Ct5) float32, lens). A prompt's features depend on the batch (its size sets
    the encoder's matmul shapes), which is what upstream computes for that batch."""
    dev = next(encoder.parameters()).device
    tok = tokenizer(text=prompts, max_length=max_tokens, padding="max_length", truncation=True, return_tensors="pt")
    ids, mask = tok.input_ids.to(dev), tok.attention_mask.to(dev)  # (B, max_tokens) each
    with torch.inference_mode():
        feats = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # (B, max_tokens, Ct5)
    lens = [int(n) for n in mask.sum(dim=-1).tolist()]
    return torch.cat([f[:n] for f, n in zip(feats, lens)]), lens  # (sum(lens), Ct5)


class TextEncoder:
    """The T5 tokenizer + encoder of one Infinity model; `offload` keeps the encoder on the CPU
    between prompts (moved to `device` only while encoding)."""

    def __init__(self, tokenizer, encoder, device: torch.device):
        self.tokenizer, self.encoder, self.device = tokenizer, encoder, device

    @classmethod
    def load(cls, folder: Path, device: torch.device, dtype: torch.dtype) -> "TextEncoder":
        """T5 encoder (+ tokenizer) from a Hugging Face model folder (flan-t5-xl or a tiny stand-in).

        The encoder loads directly in the run's precision: float32 for a float32 run, else bfloat16 (T5
        is known to overflow in float16, where upstream uses float16 on CUDA) on the CPU and CUDA, and
        float32 on MPS. transformers reads the weights memory-mapped and casts them tensor by tensor, so
        a bf16 load never holds an fp32 copy (flan-t5-xl's encoder: 2.45 GB instead of 4.9).
        """
        try:
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError:
            raise WeightsError("Infinity needs the `transformers` package for its T5 text encoder: "
                               "pip install 'transformers>=5' (an ssgen dependency)") from None
        folder = Path(folder)
        if folder.is_file():
            raise WeightsError(f"{folder} is a file, but weights.text_encoder must be the model's folder (config.json, "
                               f"tokenizer and weights files), e.g. {folder.parent}")
        if not (folder / "config.json").is_file():
            raise WeightsError(f"text encoder folder {folder} has no config.json; check weights.text_encoder")
        if not any((folder / name).is_file() for name in TOKENIZER_FILES):  # transformers would build an empty one
            raise WeightsError(f"text encoder folder {folder} has no tokenizer file ({', '.join(TOKENIZER_FILES)}); "
                               "download it again (a Hub config lists it in weights.text_encoder.allow)")
        t5_dtype = torch.bfloat16 if device.type in ("cpu", "cuda") and dtype != torch.float32 else torch.float32
        tok, (enc, info) = load_pretrained(
            folder, lambda: (AutoTokenizer.from_pretrained(str(folder), legacy=True),
                             T5EncoderModel.from_pretrained(str(folder), dtype=t5_dtype, output_loading_info=True)),
            "T5 text encoder", "check weights.text_encoder (config, tokenizer and encoder weights)")
        check_pretrained(folder, enc, info, "T5 text encoder")
        tok.model_max_length = MAX_TOKENS
        return cls(tok, enc.to(device).eval(), device)

    @property
    def channels(self) -> int:
        return int(self.encoder.config.d_model)

    def encode(self, prompts: list[str], offload: bool = False, what: str = "prompt", batched: bool = False):
        """-> (packed (sum(lens), Ct5) float32 on self.device, lens, notes). See `encode_prompts`;
        `batched`: all prompts in one padded batch, as upstream (rng="batch")."""
        if offload or next(self.encoder.parameters()).device != self.device:
            self.encoder.to(self.device)
        with quiet_transformers():
            packed, lens, notes = encode_prompts(self.tokenizer, self.encoder, prompts, what=what, batched=batched)
        if offload:
            self.encoder.to("cpu")
        return packed.to(self.device), lens, notes

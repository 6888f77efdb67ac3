"""HART's text conditioning: a Qwen2 LM (mit-han-lab/Qwen2-VL-1.5B-Instruct, text-only despite the
name) through transformers' AutoTokenizer/AutoModel, and upstream's prompt encoding.

`encode_prompts` reproduces upstream's `encode_prompts`:
1. every prompt is tokenised raw (no chat template), padded with the tokenizer's pad token to
   `max_length` (the transformer's `context_token`, 300) and truncated to it;
2. mask = ids != pad id; position ids = cumsum(mask) - 1 (they feed HART's 1-D RoPE, not Qwen);
3. with the system prompt (default) the conditioning prefix below is tokenised without padding and
   prepended; Qwen sees [prefix, prompt] with attention mask [1..., mask] and its last hidden state
   (after the final norm) is kept **only at the 300 prompt positions**, padding included;
4. features are cast to float32.
The "system prompt" is no LLM rewrite: it is a fixed prefix the released model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...checkpoint import check_pretrained, load_pretrained
from ...errors import ConfigError, WeightsError

# HART's conditioning prefix (upstream `llm_system_prompt`), verbatim: the released weights were
# trained with exactly this text in front of every prompt.
SYSTEM_PROMPT = (
    'Given a user prompt, generate an "Enhanced prompt" that provides detailed visual descriptions suitable '
    "for image generation.\n\n"
    "Examples:\n"
    "- User Prompt: A cat sleeping -> A small, fluffy white cat curled up in a round shape, sleeping "
    "peacefully on a warm sunny windowsill, surrounded by pots of blooming red flowers.\n"
    "- User Prompt: A busy city street -> A bustling city street scene at dusk, featuring glowing street "
    "lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by towering "
    "glass skyscrapers.\n\n"
    "Please generate only the enhanced description for the prompt below and DO NOT include any additional "
    'sentences. Start your response with "Enhanced Prompt:".\n\n'
    "User Prompt:\n"
)

TOKENIZER_FILES = ("tokenizer.json", "vocab.json")  # fast, or the BPE vocab (+ merges.txt)


@dataclass
class EncodedPrompts:
    input_ids: torch.Tensor  # (B, T) int64, padded/truncated to T
    mask: torch.Tensor  # (B, T) bool, True on real tokens
    position_ids: torch.Tensor  # (B, T) int64, cumsum(mask) - 1
    features: torch.Tensor  # (B, T, D) float32, last hidden state at the prompt positions
    notes: list[str] = field(default_factory=list)  # e.g. truncation


class TextEncoder:
    """A Qwen2 tokenizer + base model (no LM head) on one device and dtype."""

    def __init__(self, tokenizer, model):
        self.tokenizer, self.model = tokenizer, model
        if tokenizer.pad_token_id is None:
            raise WeightsError("the text encoder's tokenizer has no pad token; HART pads prompts with it")

    @classmethod
    def load(cls, folder: str | Path, device: torch.device, dtype: torch.dtype) -> "TextEncoder":
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise WeightsError("HART needs the `transformers` package for its Qwen2 text encoder: "
                               "pip install 'transformers>=5' (an ssgen dependency)") from None
        folder = Path(folder)
        if folder.is_file():
            raise WeightsError(f"{folder} is a file, but weights.text_encoder must be the model's folder (config.json, "
                               f"tokenizer and weights files), e.g. {folder.parent}")
        if not (folder / "config.json").is_file():
            raise WeightsError(f"text encoder folder {folder} has no config.json; check weights.text_encoder "
                               "(a Qwen2 folder with config.json, weights and tokenizer files)")
        if not any((folder / name).is_file() for name in TOKENIZER_FILES):  # transformers would build an empty one
            raise WeightsError(f"text encoder folder {folder} has no tokenizer file ({', '.join(TOKENIZER_FILES)}); "
                               "download it again (a Hub config lists it in weights.text_encoder.allow)")
        tok, (model, info) = load_pretrained(
            folder, lambda: (AutoTokenizer.from_pretrained(str(folder), local_files_only=True),
                             AutoModel.from_pretrained(str(folder), dtype=dtype, local_files_only=True,
                                                       output_loading_info=True)),
            "text encoder", "check weights.text_encoder (a Qwen2 folder with config.json, weights and tokenizer files)")
        check_pretrained(folder, model, info, "Qwen2 text encoder")
        return cls(tok, model.to(device).eval())

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, prompts: list[str], max_length: int = 300, system_prompt: bool = True) -> EncodedPrompts:
        """Prompts -> EncodedPrompts (see the module docstring). Empty prompts are ConfigErrors;
        prompts longer than max_length tokens are truncated with a note."""
        return encode_prompts(self.tokenizer, self.model, prompts, max_length, system_prompt)


def encode_prompts(tokenizer, model, prompts: list[str], max_length: int = 300,
                   system_prompt: bool = True) -> EncodedPrompts:
    """Upstream's prompt encoding with any HF tokenizer/base model (see the module docstring)."""
    notes = []
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ConfigError(f"prompt {i} is empty; give a text prompt (--prompt \"a red fox\")")
    dev = next(model.parameters()).device
    ids = []
    for i, p in enumerate(prompts):
        n = len(tokenizer(p).input_ids)
        if n > max_length:
            notes.append(f"prompt {i} has {n} tokens; truncated to the model's {max_length}")
        ids.append(tokenizer(p, padding="max_length", max_length=max_length, truncation=True,
                             return_tensors="pt").input_ids[0])
    input_ids = torch.stack(ids).to(dev)  # (B, T)
    mask = input_ids != tokenizer.pad_token_id  # (B, T)
    position_ids = mask.long().cumsum(dim=1) - 1  # (B, T)
    if system_prompt:
        pre = tokenizer(SYSTEM_PROMPT, return_tensors="pt").input_ids.to(dev)  # (1, S)
        pre = pre.expand(len(prompts), -1)
        all_ids = torch.cat((pre, input_ids), dim=1)  # (B, S + T)
        all_mask = torch.cat((torch.ones_like(pre, dtype=torch.bool), mask), dim=1)
    else:
        all_ids, all_mask = input_ids, mask
    hidden = model(input_ids=all_ids, attention_mask=all_mask).last_hidden_state  # (B, S + T, D)
    features = hidden[:, -max_length:].float()  # (B, T, D): the prompt positions only
    return EncodedPrompts(input_ids, mask, position_ids, features, notes)

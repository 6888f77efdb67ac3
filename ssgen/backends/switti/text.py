"""Switti's text conditioning: two CLIP text towers, CLIP-L (openai/clip-vit-large-patch14, width 768) and
CLIP-bigG (laion/CLIP-ViT-bigG-14-laion2B-39B-b160k, width 1280), as upstream's `FrozenCLIPEmbedder` and
`SwittiPipeline.encode_prompt` use them:

1. each tokenizer: truncation to 77 tokens, padding to 77 ("max_length"); the model gets the ids and the
   attention mask;
2. context = cat(L.last_hidden_state, G.last_hidden_state) on the last dim (B, 77, 2048): the final-LN
   output; pooled = G.pooler_output (B, 1280): the final-LN row at argmax(input_ids), no text_projection;
3. attn_bias = CLIP-G's attention mask as 0 / -inf (float32). The mask comes from the tokenizer, never from
   the ids: CLIP-G pads with "!" (id 0), and a "!" typed in a prompt is id 0 too;
4. the negative (null) prompt, "" by default, is encoded alone (a batch of 1) and its row repeated B
   times: every tensor is [cond rows; uncond rows] (2B rows), except the ids (cond rows only).

Tokenisation reproduces upstream's *slow* `CLIPTokenizer` (transformers 4.45), which transformers 5 no
longer has (its CLIPTokenizer is the Rust one): split on the added tokens (CLIP-G's "!" among them), then
each piece is repaired by `ftfy.fix_text` (upstream's environment has ftfy: openai/CLIP requires it),
whitespace-collapsed and lowercased, cut by CLIP's word pattern and byte-pair encoded with the tokenizer's
own vocabulary and merges. The Rust tokenizer alone differs on curly quotes, ligatures, full-width
characters, HTML entities and mojibake (ftfy repairs them), and on a full-width "！", which ftfy turns into
a "!" that the slow tokenizer BPE-encodes but the Rust one would take for CLIP-G's pad token. Without ftfy
the text is used as typed (NFC) and a note says so for prompts ftfy could change.

    enc = TextEncoders.load(folder_l, folder_g, device, dtype)
    out = enc.encode(["a red fox", "a blue car"], negative_prompt="blurry")
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...checkpoint import check_pretrained, load_pretrained, read_json
from ...errors import OptionError, WeightsError
from ..checks import check_prompts

MAX_TOKENS = 77  # upstream's max_length, start and end tokens included
WIDTHS = {"text_encoder": ("CLIP-L", 768), "text_encoder_2": ("CLIP-bigG", 1280)}  # Switti hard-codes 768 + 1280
TOKENIZER_FILES = (("vocab.json", "merges.txt"), ("tokenizer.json",))  # the BPE files, or the fast tokenizer's
# CLIP's word pattern (upstream's slow tokenizer), applied to the cleaned, lowercased text
WORD_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@dataclass
class EncodedPrompts:
    context: torch.Tensor  # (2B, 77, 2048) run dtype: [cond; uncond], cat(CLIP-L, CLIP-bigG last_hidden_state)
    pooled: torch.Tensor  # (2B, 1280) run dtype: CLIP-bigG pooler_output, [cond; uncond]
    attn_bias: torch.Tensor  # (2B, 77) float32: 0 where CLIP-bigG's attention mask is 1, -inf where 0
    input_ids: torch.Tensor  # (B, 77) int64, tokenizer 1 (CLIP-L), cond rows only
    input_ids_2: torch.Tensor  # (B, 77) int64, tokenizer 2 (CLIP-bigG), cond rows only
    notes: list[str] = field(default_factory=list)  # truncation, ftfy missing


def _fix_text():
    """ftfy.fix_text, or None when ftfy is not installed."""
    try:
        import ftfy
    except ImportError:
        return None
    return ftfy.fix_text


def _ftfy_could_change(text: str) -> bool:
    """Whether ftfy.fix_text might change `text`: it only touches non-ASCII characters, control characters
    and HTML entities (conservative: a True may still be left unchanged)."""
    return "&" in text or any(not (" " <= c <= "~") and c not in "\t\n" for c in text)


class SlowCLIPTokenizer:
    """Upstream's slow CLIPTokenizer (transformers 4.45 `CLIPTokenizer` with ftfy) on top of a transformers 5
    CLIPTokenizer's vocabulary and merges. Only `ids(text)` differs from the Rust tokenizer: framing,
    truncation and padding are the plain CLIP ones, done by `frame`."""

    def __init__(self, tok):
        import regex  # a transformers dependency; \p{L} needs it
        from tokenizers import pre_tokenizers

        self.tok = tok
        self.bpe = tok.backend_tokenizer.model  # the BPE with the "</w>" end-of-word suffix
        self.bytes = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)  # CLIP's byte -> unicode map
        self.words = regex.compile(WORD_PATTERN, regex.IGNORECASE)
        added = sorted(tok.added_tokens_encoder, key=len, reverse=True)  # "!" (CLIP-G), start, end: longest first
        self.added = dict(tok.added_tokens_encoder)
        self.split = re.compile("(" + "|".join(map(re.escape, added)) + ")") if added else None
        self.specials = {tok.bos_token: tok.bos_token_id, tok.eos_token: tok.eos_token_id}  # upstream's BPE cache
        self.bos, self.eos, self.pad = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id

    def ids(self, text: str, fix) -> list[int]:
        """The ids of `text` without start/end tokens. Added tokens are cut out of the raw text first (so a
        "!" that ftfy makes from a full-width "！" stays text), then each piece is cleaned and encoded."""
        out = []
        for piece in self.split.split(text) if self.split else [text]:
            if piece in self.added:
                out.append(self.added[piece])
                continue
            piece = fix(piece) if fix else unicodedata.normalize("NFC", piece)
            piece = re.sub(r"\s+", " ", piece).strip().lower()
            for word in self.words.findall(piece):
                if word in self.specials:
                    out.append(self.specials[word])
                    continue
                ((mapped, _),) = self.bytes.pre_tokenize_str(word)
                out += [t.id for t in self.bpe.tokenize(mapped)]
        return out

    def frame(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """[start] + ids (cut to 75) + [end], padded to 77 -> (ids, attention mask)."""
        ids = [self.bos] + ids[: MAX_TOKENS - 2] + [self.eos]
        n = len(ids)
        return ids + [self.pad] * (MAX_TOKENS - n), [1] * n + [0] * (MAX_TOKENS - n)


def _check_folder(folder: Path, role: str) -> None:
    """Cheap checks before transformers reads anything: a folder, a CLIP config of the right width, a tokenizer."""
    name, width = WIDTHS[role]
    if folder.is_file():
        raise WeightsError(f"{folder} is a file, but weights.{role} must be the {name} model's folder (config.json, "
                           f"tokenizer and weights files), e.g. {folder.parent}")
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{name} text encoder folder {folder} has no config.json; check weights.{role} "
                           "(a CLIP folder with config.json, weights and tokenizer files)")
    if not any(all((folder / f).is_file() for f in files) for files in TOKENIZER_FILES):
        raise WeightsError(f"{name} text encoder folder {folder} has no tokenizer (vocab.json + merges.txt, or "
                           f"tokenizer.json); download it again or check weights.{role}")
    cfg = read_json(folder / "config.json", "a model config")
    kind = cfg.get("model_type")
    text_cfg = cfg.get("text_config") if kind == "clip" else cfg
    if kind not in ("clip", "clip_text_model") or not isinstance(text_cfg, dict):
        raise WeightsError(f"{folder} holds a {kind!r} model, not CLIP; weights.{role} must be {name}'s folder")
    got = text_cfg.get("hidden_size", 512)  # transformers' default CLIPTextConfig width
    if got != width:
        raise WeightsError(f"the text encoder in {folder} is {got} wide, but Switti needs {name} ({width}) there; "
                           f"check weights.{role}")


def _load_one(folder: str | Path, role: str, device, dtype: torch.dtype):
    """One CLIP text tower (+ its tokenizer) from a CLIPModel or CLIPTextModel folder; a CLIPModel's vision
    tower and projections are not loaded (as upstream's `CLIPTextModel.from_pretrained`)."""
    try:
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError:
        raise WeightsError("Switti needs the `transformers` package for its CLIP text encoders: "
                           "pip install 'transformers>=5' (an ssgen dependency)") from None
    folder = Path(folder)
    _check_folder(folder, role)
    tok, (model, info) = load_pretrained(  # quietly: also hides the report of the unused vision keys
        folder, lambda: (CLIPTokenizer.from_pretrained(str(folder), local_files_only=True),
                         CLIPTextModel.from_pretrained(str(folder), dtype=dtype, local_files_only=True,
                                                       output_loading_info=True)),
        f"{WIDTHS[role][0]} text encoder",
        f"check weights.{role} (a CLIP folder with config.json, weights and tokenizer files)")
    check_pretrained(folder, model, info, f"{WIDTHS[role][0]} text encoder")
    if None in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
        raise WeightsError(f"the tokenizer in {folder} lacks a start, end or pad token; download it again")
    if model.config.max_position_embeddings < MAX_TOKENS:
        raise WeightsError(f"the text encoder in {folder} takes {model.config.max_position_embeddings} tokens, "
                           f"Switti feeds it {MAX_TOKENS}; check weights.{role}")
    return SlowCLIPTokenizer(tok), model.to(device).eval()


class TextEncoders:
    """CLIP-L and CLIP-bigG (tokenizers + text towers) on one device, in the run dtype."""

    def __init__(self, tok_1: SlowCLIPTokenizer, model_1, tok_2: SlowCLIPTokenizer, model_2):
        self.tok_1, self.model_1, self.tok_2, self.model_2 = tok_1, model_1, tok_2, model_2

    @classmethod
    def load(cls, folder_1: Path, folder_2: Path, device, dtype: torch.dtype) -> "TextEncoders":
        """folder_1: CLIP-L (width 768), folder_2: CLIP-bigG (width 1280); CLIPModel checkpoints (sharded or
        not) or bare CLIPTextModel ones. A wrong folder is a WeightsError naming it."""
        tok_1, model_1 = _load_one(folder_1, "text_encoder", device, dtype)
        tok_2, model_2 = _load_one(folder_2, "text_encoder_2", device, dtype)
        return cls(tok_1, model_1, tok_2, model_2)

    @property
    def device(self) -> torch.device:
        return next(self.model_1.parameters()).device

    def to(self, device) -> "TextEncoders":
        """Move both towers (offloading); returns self."""
        self.model_1.to(device)
        self.model_2.to(device)
        return self

    def _tokenize(self, tok: SlowCLIPTokenizer, texts: list[str], fix) -> tuple[torch.Tensor, torch.Tensor, list]:
        """-> ids (N, 77) int64, attention mask (N, 77) int64, the untruncated lengths (start/end included)."""
        framed, lengths = [], []
        for t in texts:
            ids = tok.ids(t, fix)
            lengths.append(len(ids) + 2)
            framed.append(tok.frame(ids))
        ids = torch.tensor([f[0] for f in framed], dtype=torch.long, device=self.device)
        mask = torch.tensor([f[1] for f in framed], dtype=torch.long, device=self.device)
        return ids, mask, lengths

    @torch.no_grad()
    def _run(self, texts: list[str], fix) -> tuple[torch.Tensor, ...]:
        """One upstream `_encode_prompt` call (one batch): -> context, pooled, attn_bias, ids_1, ids_2, lengths."""
        ids_1, mask_1, len_1 = self._tokenize(self.tok_1, texts, fix)
        ids_2, mask_2, len_2 = self._tokenize(self.tok_2, texts, fix)
        out_1 = self.model_1(input_ids=ids_1, attention_mask=mask_1)
        out_2 = self.model_2(input_ids=ids_2, attention_mask=mask_2)
        context = torch.cat((out_1.last_hidden_state, out_2.last_hidden_state), dim=-1)  # (N, 77, 2048)
        attn_bias = torch.zeros(mask_2.shape, dtype=torch.float32, device=mask_2.device)
        attn_bias = attn_bias.masked_fill(mask_2 == 0, float("-inf"))  # (N, 77)
        lengths = [max(a, b) for a, b in zip(len_1, len_2)]
        return context, out_2.pooler_output, attn_bias, ids_1, ids_2, lengths

    def encode(self, prompts: list[str], negative_prompt: str = "") -> EncodedPrompts:
        """Prompts (non-blank) and one negative prompt ("" = upstream's null prompt) -> EncodedPrompts (see the
        module docstring). Prompts over 77 tokens are truncated, as upstream, with a note."""
        prompts = check_prompts(prompts)
        if not isinstance(negative_prompt, str):
            raise OptionError("negative_prompt", f"must be text, got {negative_prompt!r}")
        fix = _fix_text()
        notes = []
        context, pooled, attn_bias, ids_1, ids_2, lengths = self._run(prompts, fix)
        # upstream encodes the null prompt alone (batch of 1) and repeats its row
        n_context, n_pooled, n_bias, _, _, n_lengths = self._run([negative_prompt], fix)
        for what, n in [(f"prompt {i}", n) for i, n in enumerate(lengths)] + [("the negative prompt", n_lengths[0])]:
            if n > MAX_TOKENS:
                notes.append(f"{what} has {n} tokens; truncated to CLIP's {MAX_TOKENS}")
        if fix is None:
            odd = [f"prompt {i}" for i, p in enumerate(prompts) if _ftfy_could_change(p)]
            odd += ["the negative prompt"] if _ftfy_could_change(negative_prompt) else []
            if odd:
                notes.append(f"ftfy is not installed: {', '.join(odd)} tokenised as typed (non-ASCII characters, "
                             "control characters or HTML entities), where upstream repairs the text with ftfy "
                             "first: pip install ftfy")
        B = len(prompts)
        return EncodedPrompts(
            context=torch.cat((context, n_context.expand(B, -1, -1))),
            pooled=torch.cat((pooled, n_pooled.expand(B, -1))),
            attn_bias=torch.cat((attn_bias, n_bias.expand(B, -1))),
            input_ids=ids_1,
            input_ids_2=ids_2,
            notes=notes,
        )

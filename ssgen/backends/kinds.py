"""Which checkpoint is this? The key signatures of the released files and the model types of their folders.

A file given for the wrong part (the VAE as the transformer, Infinity's VAE to VAR, HART's tokenizer/
folder as llm/, the T5 folder to HART) would otherwise fail deep in the loader on a missing key
("max() arg is an empty sequence"). `expect_kind` names what the file is and what the role needs:

    sd = read_state_dict(path, "transformer")
    expect_kind(sd, "var", "transformer", path)   # WeightsError: "... is a VAR VQVAE checkpoint, not ..."

A signature lists fnmatch patterns that each match at least one key; every signature key is a
parameter the model cannot do without, so a file that matches no signature cannot load either.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError


@dataclass(frozen=True)
class Kind:
    family: str  # the family whose role this file fills: var | infinity | hart
    role: str  # transformer | vae | text_encoder
    what: str  # how a message names it
    released: str  # the released file or folder of this kind (the hint)
    keys: tuple[str, ...] = ()  # fnmatch patterns that each match a key of such a state dict
    model_types: tuple[str, ...] = ()  # the `model_type` of such a folder's config.json


KINDS = (
    Kind("var", "transformer", "a VAR transformer", "var_d16.pth ... var_d36.pth of FoundationVision/var",
         keys=("class_emb.weight", "pos_1LC")),
    Kind("var", "vae", "a VAR VQVAE", "vae_ch160v4096z32.pth of FoundationVision/var",
         keys=("quantize.embedding.weight", "decoder.conv_in.weight")),
    Kind("infinity", "transformer", "an Infinity transformer", "infinity_2b_reg.pth of FoundationVision/Infinity",
         keys=("cfg_uncond", "text_norm.weight")),
    Kind("infinity", "vae", "an Infinity BSQ VAE",
         "infinity_vae_d32reg.pth (2B) or infinity_vae_d56_f8_14_patchify.pth (8B) of FoundationVision/Infinity",
         keys=("decoder.conv_in.conv.weight",)),
    Kind("infinity", "text_encoder", "a T5 text encoder", "the google/flan-t5-xl folder",
         keys=("shared.weight", "encoder.block.0.*"), model_types=("t5",)),
    Kind("hart", "transformer", "a HART transformer (llm/)", "the llm/ folder of mit-han-lab/hart-0.7b-1024px",
         keys=("context_embed.weight", "word_embed.weight"), model_types=("hart_transformer_t2i",)),
    Kind("hart", "vae", "a HART tokenizer (tokenizer/)", "the tokenizer/ folder of mit-han-lab/hart-0.7b-1024px",
         keys=("vae.quantize.embedding.weight",), model_types=("hart_autoencoder_with_disc",)),
    Kind("hart", "text_encoder", "a Qwen2 text encoder", "the mit-han-lab/Qwen2-VL-1.5B-Instruct folder",
         keys=("*embed_tokens.weight", "*layers.0.self_attn.q_proj.weight"), model_types=("qwen2",)),
)

# A released file of one kind that another role also takes: HART's tokenizer is VAR's VQVAE with a `vae.` prefix.
ALSO_ACCEPTED = {("hart", "vae"): ("var", "vae")}

FAMILY_NAMES = {"var": "a VAR", "infinity": "an Infinity", "hart": "a HART"}


def kind_of(sd: dict) -> Kind | None:
    """The kind of checkpoint a state dict is (Infinity's `{'vae': sd}` wrapping included), None if unknown."""
    if isinstance(sd.get("vae"), dict):
        sd = sd["vae"]
    keys = list(sd)
    for kind in KINDS:
        if all(fnmatch.filter(keys, pattern) for pattern in kind.keys):
            return kind
    return None


def folder_kind(folder: Path) -> Kind | None:
    """The kind of a Hugging Face style folder, from its config.json's `model_type`; None if unknown or unreadable."""
    try:
        model_type = json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return next((k for k in KINDS if model_type in k.model_types), None)


def wanted(family: str, role: str) -> Kind:
    return next(k for k in KINDS if (k.family, k.role) == (family, role))


def _fits(kind: Kind, family: str, role: str) -> bool:
    return (kind.family, kind.role) in ((family, role), ALSO_ACCEPTED.get((family, role)))


def _wrong(found: str, path: Path, family: str, role: str, kind: Kind | None) -> WeightsError:
    want = wanted(family, role)
    where = ""
    if kind is not None and kind.family == family:
        where = f" (it belongs in weights.{kind.role})"
    elif kind is not None:
        where = f" (it belongs to {FAMILY_NAMES[kind.family]} model)"
    return WeightsError(f"{path} is {found}, not {want.what}{where}: weights.{role} of {FAMILY_NAMES[family]} "
                        f"model needs {want.released}")


def expect_kind(sd: dict, family: str, role: str, path: Path) -> None:
    """Raise a WeightsError naming what the checkpoint is when it is not the kind this role needs."""
    kind = kind_of(sd)
    if kind is not None and _fits(kind, family, role):
        return
    if kind is not None:
        raise _wrong(f"{kind.what} checkpoint", path, family, role, kind)
    keys = list(sd)
    nested = [k for k in keys if isinstance(sd[k], dict)]
    if nested:
        found = f"a checkpoint with the weights nested under {nested[0]!r} (extract that state dict)"
    else:
        shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        found = f"no checkpoint ssgen knows (keys: {shown or 'none'})"
    raise _wrong(found, path, family, role, None)


def expect_folder_kind(folder: Path, family: str, role: str) -> None:
    """Raise a WeightsError when a folder's config.json says it is another part (or another family's part)."""
    kind = folder_kind(folder)
    if kind is not None and not _fits(kind, family, role):
        raise _wrong(f"{kind.what} folder", folder, family, role, kind)


def expect_blocks(sd: dict, prefix: str, path: Path, what: str) -> None:
    """A transformer file without its blocks (an incomplete export) is named as such, not by a failing max()."""
    if not any(k.startswith(prefix) for k in sd):
        raise WeightsError(f"{path} is {what} checkpoint without transformer blocks ({prefix}*): an incomplete "
                           "file; download it again")

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
from pathlib import Path

from ..errors import SSGenError, WeightsError
from ..textfile import read_text
from . import families
from .spec import Kind


def all_kinds() -> list[Kind]:
    """Every registered family's checkpoint kinds (each family's spec lists its own)."""
    return [k for spec in families().values() for k in spec.kinds]


def kind_of(sd: dict) -> Kind | None:
    """The kind of checkpoint a state dict is (Infinity's `{'vae': sd}` wrapping included), None if unknown."""
    if isinstance(sd.get("vae"), dict):
        sd = sd["vae"]
    keys = list(sd)
    for kind in all_kinds():
        if all(fnmatch.filter(keys, pattern) for pattern in kind.keys):
            return kind
    return None


def folder_kind(folder: Path) -> Kind | None:
    """The kind of a Hugging Face style folder, from its config.json's `model_type`; None if unknown or unreadable."""
    try:
        model_type = json.loads(read_text(Path(folder) / "config.json", "model folder config", "")).get("model_type")
    except (SSGenError, ValueError, AttributeError):
        return None
    return next((k for k in all_kinds() if model_type in k.model_types), None)


def wanted(family: str, role: str) -> Kind | None:
    """The kind `role` of `family` needs; None when its spec declares none (then nothing is checked)."""
    return next((k for k in all_kinds() if (k.family, k.role) == (family, role)), None)


def _fits(kind: Kind, family: str, role: str) -> bool:
    want = wanted(family, role)
    return want is None or (kind.family, kind.role) in ((family, role), want.also)


def _wrong(found: str, path: Path, family: str, role: str, kind: Kind | None) -> WeightsError:
    want = wanted(family, role)
    where = ""
    if kind is not None and kind.family == family:
        where = f" (it belongs in weights.{kind.role})"
    elif kind is not None:
        where = f" (it belongs to {families()[kind.family].article} model)"
    return WeightsError(f"{path} is {found}, not {want.what}{where}: weights.{role} of {families()[family].article} "
                        f"model needs {want.released}")


def expect_kind(sd: dict, family: str, role: str, path: Path) -> None:
    """Raise a WeightsError naming what the checkpoint is when it is not the kind this role needs."""
    kind = kind_of(sd)
    if wanted(family, role) is None or (kind is not None and _fits(kind, family, role)):
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

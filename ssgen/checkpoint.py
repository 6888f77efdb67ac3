"""Safe checkpoint loading.

- `.pth` / `.bin` / `.pt`: `torch.load(weights_only=True, mmap=True)` (no pickled code runs; tensors
  stay on disk until used).
- `.safetensors`, and sharded checkpoints through their `*.index.json`.
- Keys are checked against the model before anything is assigned: missing and unexpected keys are
  errors that name them, shapes must match; known training-only entries are dropped.
Models are built on the meta device and filled with `load_state_dict(assign=True)`, so weights are
never initialised twice and never held twice in memory.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .errors import WeightsError, first_line


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file (or a sharded index) into a flat {key: tensor} dict on the CPU."""
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"checkpoint {p} does not exist")
    hint = "the file is truncated or corrupted: delete it and download it again"
    if p.name.endswith(".index.json"):
        try:
            index = json.loads(p.read_text())
            shards = sorted(set(index["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise WeightsError(f"cannot read sharded index {p}: {first_line(e)}") from None
        sd: dict[str, torch.Tensor] = {}
        for shard in shards:
            sd.update(read_state_dict(p.parent / shard))
        return sd
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise WeightsError(f"cannot read checkpoint {p} ({first_line(e)}); {hint}") from None
    try:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # legacy (non-zip) files cannot be memory-mapped
                raise
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types here (UnpicklingError, RuntimeError, EOFError, ...)
        if "Weights only load failed" in str(e):
            raise WeightsError(f"{p} holds more than tensors (pickled code); ssgen only loads plain state dicts "
                               "with weights_only=True for safety") from None
        raise WeightsError(f"cannot read checkpoint {p} ({first_line(e)}); {hint}") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{p} is not a state dict (found {type(obj).__name__})")
    return obj


def unwrap(sd: dict, *keys: str) -> dict[str, torch.Tensor]:
    """Return the nested state dict under the first of `keys` present (e.g. Infinity's {'vae': ...})."""
    for k in keys:
        if k in sd and isinstance(sd[k], dict):
            return sd[k]
    return sd


def drop_keys(sd: dict[str, torch.Tensor], patterns: Iterable[str]) -> dict[str, torch.Tensor]:
    """Remove keys matching any fnmatch pattern (known training-only buffers, unused sub-models)."""
    pats = tuple(patterns)
    return {k: v for k, v in sd.items() if not any(fnmatch.fnmatchcase(k, p) for p in pats)}


def _names(keys: list[str], n: int = 6) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_keys(model: nn.Module, sd: dict[str, torch.Tensor], what: str, path: str | Path | None = None) -> None:
    """Raise WeightsError naming missing/unexpected keys or mismatched shapes."""
    where = f"{what} checkpoint {path}" if path else f"{what} checkpoint"
    expected = model.state_dict(keep_vars=True)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing:
        raise WeightsError(f"{where} is missing {len(missing)} key(s): {_names(missing)}; "
                           "is it the right file for this model?")
    if unexpected:
        raise WeightsError(f"{where} has {len(unexpected)} unexpected key(s): {_names(unexpected)}; "
                           "is it the right file for this model?")
    for k, t in expected.items():
        if tuple(sd[k].shape) != tuple(t.shape):
            raise WeightsError(f"{where}: {k} has shape {tuple(sd[k].shape)} but this model expects "
                               f"{tuple(t.shape)}; the checkpoint belongs to another model size")


def load_into(model: nn.Module, sd: dict[str, torch.Tensor], what: str, path: str | Path | None = None) -> None:
    """Check keys and shapes, then assign the tensors (the model may live on the meta device)."""
    check_keys(model, sd, what, path)
    model.load_state_dict(sd, strict=True, assign=True)

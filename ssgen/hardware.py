"""What the CPU can do fast (decides `dtype="auto"` and the bf16 attention path on the CPU)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (bf16 matrix products several times faster than fp32)."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())  # private but stable since torch 2.2
    except (AttributeError, RuntimeError):
        try:
            return "amx_bf16" in Path("/proc/cpuinfo").read_text()
        except OSError:
            return False

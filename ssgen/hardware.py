"""What the CPU is and what it does fast: decides `dtype="auto"` and the bf16 attention path on the CPU, and names
the machine in benchmark and rehearsal reports.

This is the one place that reads /proc/cpuinfo (or `lscpu` where that file is missing), so every caller sees the
same model name and flags and applies the same bf16 rules.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from .errors import SSGenError
from .textfile import read_text


def cuda_visible() -> bool:
    """Whether `device="auto"` will pick a CUDA GPU, answered without importing torch (the CLI plans its calls
    before torch loads): torch's own answer once it is imported, else an NVIDIA driver present and not hidden by
    CUDA_VISIBLE_DEVICES. A driver without a CUDA build of torch guesses wrong, which costs only the default
    batch size (`ssgen.cli.plan.default_batch`)."""
    import os
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.cuda.is_available()
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia/version")


def use_huge_pages() -> None:
    """Ask PyTorch to back its CPU tensors of 2 MB and more with transparent huge pages (`THP_MEM_ALLOC_ENABLE`,
    read once, at its first such allocation: call this before any weights load; a value the user set is kept).

    Every tensor of 32 MB or more is a fresh memory mapping, paid for on first touch with a page fault and a page
    clearing per 4 KiB page. At batch 16 a VAR-d16 block's late-scale activations are 32-128 MB each, allocated
    and freed hundreds of times per image: that cost made large batches slower per image than batch 1 on the CPU
    (scripts/bench.py --profile-ops, README "Performance"). With 2 MB pages it is 512 times fewer faults. Linux
    only, and only where /sys/kernel/mm/transparent_hugepage/enabled allows `madvise` (the usual default)."""
    import os

    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and its feature flags as the kernel lists them (`avx2`, `avx512_bf16`, `amx_bf16`...)."""

    model_name: str
    flags: frozenset[str]


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's CPU, read once: the first processor's `model name` and `flags` from /proc/cpuinfo, else from
    `lscpu`; without either, the platform's processor name and no flags."""
    fields = _parse_fields(_proc_cpuinfo()) or _parse_fields(_lscpu())
    name = fields.get("model name") or platform.processor() or platform.machine()
    return CpuInfo(name, frozenset(fields.get("flags", "").split()))


def _proc_cpuinfo() -> str:
    try:
        return read_text("/proc/cpuinfo", "CPU description", "")
    except SSGenError:
        return ""


def _lscpu() -> str:
    """`lscpu`'s output ("Model name:", "Flags:"), for systems that hide /proc/cpuinfo; "" where it cannot run."""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _parse_fields(text: str) -> dict[str, str]:
    """`key : value` lines -> {lower-cased key: value}, the first occurrence of each key (the first processor)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles: the rule for "bf16 is fast here". With AMX, bf16 matrix products run several
    times faster than fp32, so `dtype="auto"` picks bf16 and attention takes the bf16 path. Without it (AVX512-BF16
    or AVX2 only) PyTorch's bf16 CPU kernels are slower than fp32 (160 vs 250 GFLOP/s measured on an AVX512-BF16
    Xeon), so fp32 stays the default."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())  # private but stable since torch 2.2
    except (AttributeError, RuntimeError):
        return "amx_bf16" in cpu_info().flags


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX) rather than emulating it through fp32. Where
    it does, `--dtype bfloat16` is a real option for users (half the memory) even when slower than fp32; where it
    does not, bf16 is only a slow emulation and not worth measuring."""
    return cpu_has_amx() or "avx512_bf16" in cpu_info().flags


def cpu_has_native_fp16() -> bool:
    """Whether this CPU computes float16 products in hardware (AVX512-FP16 or AMX-FP16). Elsewhere PyTorch's CPU
    float16 kernels convert through fp32 element by element: a 512x512 matmul ran at 2.7 GFLOP/s in float16
    against 97 in float32 on one core of an AVX512-BF16 EPYC (35x slower)."""
    return bool({"avx512_fp16", "amx_fp16"} & cpu_info().flags)

"""Linear layers computed from oneDNN-prepacked weights on the CPU (VAR, Infinity, HART's transformer).

`prepack_linears(model)` gives every nn.Linear of a model a copy of its weight in oneDNN's blocked layout
(what inductor's CPU freezing does) and releases the plain weight; `Linear` / `linear()` then compute from
it. Why:
- speed: the weight is not re-packed at every call. fp32, 16 blocks of VAR-d16-sized weights on 2 Xeon
  cores: 0.84x the time of F.linear at 32 rows, 0.96x at 512 (VAR-d16 whole image: 0.95x); on 2 Zen 5
  cores (Infinity-2B) 2.2-2.5x faster in fp32, ~20% in bf16.
- batch invariance: oneDNN sums every output row in an order its packed weight alone fixes, whatever the
  number of rows (MKL's sgemm behind F.linear picks kernels by the row count and moves a row by ~1e-6),
  except that a single row takes a matrix-vector kernel: one row is computed as two.
A packed model generates but cannot be saved or moved (its `weight`s are empty). Without oneDNN, on
another device, or for a dtype oneDNN fails a probe on, the plain F.linear path runs.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import trim_heap


def linear(m: nn.Linear, x: torch.Tensor, bias: torch.Tensor | None = None, official: bool = False) -> torch.Tensor:
    """m(x), optionally with another bias; from m's packed weight once `prepack_linears` made one.

    `official=True` computes as upstream's nn.Linear: F.linear on the plain weight (MKL's sgemm on the CPU,
    whose summation order depends on the row count, exactly as in the official run; what rng="batch" needs
    where bf16 rounding turns that order into flipped tokens). After prepacking only the packed copy is kept;
    the plain weight is rebuilt from it for this one product (`to_dense()` only moves values back out of
    oneDNN's blocked layout) and freed right after: one weight's memory at a time, where keeping every plain
    weight beside its packed copy would double the linears' memory (Infinity-8B in bf16: 16 GB more)."""
    b = m.bias if bias is None else bias
    packed = m.__dict__.get("packed")
    if packed is None:
        return F.linear(x, m.weight, b)
    return unpacked_linear(x, packed, b) if official else onednn_linear(x, packed, b)


@torch.library.custom_op("ssgen::unpacked_linear", mutates_args=())
def unpacked_linear(x: torch.Tensor, packed: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """F.linear(x, plain weight, bias) with the plain (out, in) weight rebuilt from oneDNN's packed copy.
    A custom op so that torch.compile (ssgen.compile) calls it as it stands: it cannot trace `to_dense()`
    of a oneDNN tensor."""
    return F.linear(x, packed.to_dense(), bias)


@unpacked_linear.register_fake
def _unpacked_fake(x: torch.Tensor, packed: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], packed.shape[0]))  # packed: (out, in)


@torch.library.custom_op("ssgen::onednn_linear", mutates_args=())
def onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """x (..., in) -> (..., out) through oneDNN's matmul with a packed weight. A custom op so that
    torch.compile (ssgen.compile) calls it as it stands: inductor's own lowering of the oneDNN op only
    takes weights its freezing pass packed."""
    if x.numel() == x.shape[-1]:  # one row (a (1, C) condition; bs = 1 at scale 0 without CFG)
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(1, -1).repeat(2, 1), packed, bias, "none", [], "")
        return y[:1].view(*x.shape[:-1], -1)
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


@onednn_linear.register_fake
def _(x: torch.Tensor, packed: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], packed.shape[0]))  # packed: (out, in)


class Linear(nn.Linear):
    """nn.Linear (same parameters and keys) computing through `linear`, so it works after prepacking."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(self, x)


@torch.no_grad()
def prepack_linears(model: nn.Module) -> bool:
    """On the CPU: pack every `Linear` of `model` (this module's class; a plain nn.Linear calls F.linear on
    its weight and is left alone) and release its plain weight, one at a time so that the peak stays the
    model plus one weight. Returns whether every one is packed."""
    lins = [m for m in model.modules() if isinstance(m, Linear)]
    if all("packed" in m.__dict__ for m in lins):
        return True
    if lins[0].weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    ok = {dt: _onednn_works(dt) for dt in {m.weight.dtype for m in lins}}
    for m in lins:
        if ok[m.weight.dtype] and "packed" not in m.__dict__:
            m.packed = torch.ops.mkldnn._reorder_linear_weight(m.weight)
            m.weight = nn.Parameter(m.weight.new_empty(0), requires_grad=False)  # the packed copy replaces it
            trim_heap()  # the freed weight's memory goes back to the OS
    return all(ok.values())


def _onednn_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's prepacked matmul runs in `dtype` on this CPU and agrees with F.linear."""
    if dtype not in (torch.float32, torch.bfloat16):
        return False
    try:
        if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        g = torch.Generator().manual_seed(0)
        w, probe = torch.randn(8, 16, generator=g).to(dtype), torch.randn(3, 16, generator=g).to(dtype)
        packed = torch.ops.mkldnn._reorder_linear_weight(w)
        got = torch.ops.mkldnn._linear_pointwise(probe, packed, None, "none", [], "")
        return torch.allclose(got.float(), F.linear(probe, w).float(), rtol=1e-2, atol=1e-2)
    except (RuntimeError, AttributeError):
        return False

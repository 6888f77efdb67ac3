"""What the families share at run time: a loaded family's contract (`Family`, `Call`, `EditableBackend`), VAR's
CFG combine, per-image VAE work and the preallocated KV cache of VAR and HART. The option checks they
share (torch-free, run before any weights load) are in `checks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from ..config import ModelConfig
from ..loop import Backend
from ..request import Request

# ------------------------------------------------------------------------------------------------
# the contract between the pipeline and a loaded family
# ------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One generation call, started: the backend the loop drives, what the PNGs record, and notes
    the user should see (nearest template, truncated prompt, ...)."""

    backend: Backend
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)


class Family(Protocol):
    """A loaded model with its weights on one device and dtype (`VarFamily`, `InfinityFamily`, `HartFamily`)."""

    config: ModelConfig
    device: torch.device
    dtype: torch.dtype

    @property
    def facts(self) -> dict[str, Any]:
        """`model:` fields read from the files that the config may leave out (HART's `patch_nums`): the
        pipeline completes its config with them, so a request resolves fully against the loaded model."""

    @property
    def step_module(self) -> torch.nn.Module:
        """The module whose `forward_scale` runs one scale and whose `reset_cache(release=True)` empties its
        caches: what `ssgen.compile` compiles."""

    def start(self, request: Request) -> Call:
        """Set up the backend of one resolved call (`request.parsed`: the family's parsed options, trusted as
        they are; `request.rng`: "batch" asks for the official arithmetic where it differs)."""


class EditableBackend(Backend, Protocol):
    """What a family that can edit (`spec.can_edit`) adds to its Backend: the image size and the encoder."""

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) pixels of this call's images."""

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, 3, H, W) float32 in [-1, 1] -> (per-scale tokens in the sampled layout, (B, 3, H, W) recon)."""


# ------------------------------------------------------------------------------------------------
# VAR-style guidance (VAR, HART)
# ------------------------------------------------------------------------------------------------


def cfg_mix(raw: torch.Tensor, t: float) -> torch.Tensor:
    """Raw logits (2B, n, V) (rows [0, B) conditional, [B, 2B) unconditional) -> (1 + t) cond - t uncond."""
    B = raw.shape[0] // 2
    return (1 + t) * raw[:B] - t * raw[B:]  # (B, n, V)


# ------------------------------------------------------------------------------------------------
# batch invariance and the KV cache
# ------------------------------------------------------------------------------------------------


def per_image(fn: Callable[..., torch.Tensor], *xs: torch.Tensor) -> torch.Tensor:
    """Apply fn image by image (each input made contiguous) and concatenate.

    Convolution kernels pick other algorithms for other batch sizes and memory layouts (a (1, l, C)
    token map transposed to (1, C, h, w) is a channels-last view, a (B, ...) one is a copy); running
    the VAE side per image on contiguous inputs makes pixels depend on an image's tokens alone, so a
    batch run writes the same PNGs whatever its batch size."""
    return torch.cat([fn(*(x[i:i + 1].contiguous() for x in xs)) for i in range(xs[0].shape[0])])


class KVCache:
    """Keys and values of one attention layer, appended scale by scale into preallocated
    (R, H, max_len, hd) buffers. The buffers are kept for the next batch of the same shape, dtype and
    device (a batch run reuses them); `reset()` before every new batch, `reset(release=True)` frees."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.n = 0  # tokens cached so far

    def reset(self, release: bool = False) -> None:
        if release:
            self.k = self.v = None
        self.n = 0

    def append(self, k: torch.Tensor, v: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Add this scale's k, v (R, H, l, hd) -> all cached keys and values (R, H, n, hd)."""
        R, H, L, hd = k.shape
        shape = (R, H, max_len, hd)
        if self.n == 0 and (self.k is None or self.k.shape != shape or self.k.dtype != k.dtype
                            or self.k.device != k.device):
            self.k, self.v = k.new_empty(shape), k.new_empty(shape)
        n0, n1 = self.n, self.n + L
        if n1 > max_len or self.k.shape[0] != R:
            raise RuntimeError(f"KV cache holds {n0} tokens of {self.k.shape[0]} rows, got {L} tokens of {R} rows "
                               f"(max {max_len}); call reset_cache() before a new batch")
        self.k[:, :, n0:n1] = k
        self.v[:, :, n0:n1] = v
        self.n = n1
        return self.k[:, :, :n1], self.v[:, :, :n1]

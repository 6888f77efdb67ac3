"""The generic next-scale loop. It drives a backend, applies SSG, filters and samples.

A backend (VAR, Infinity, HART, Switti) is one generation call's worth of model state. Per scale k the loop
asks it for the raw logits (conditional and unconditional rows), has it combine them (CFG and
temperature), applies SSG to the result, filters (top-k/top-p) and samples through the loop-owned
generators, and hands the sampled tokens back so the backend can update its running latent and form
the next scale's input. SSG lives here, not in a backend: it only needs logits on a spatial grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import torch

from .guidance import SSG, prior_operator
from .guidance import ssg as ssg_update
from .sampling import Rng, filter_top_k_top_p_, gumbel_soft


@dataclass
class ScaleSampling:
    """How to sample scale k. `smooth` = (logit multiplier, Gumbel tau) for soft embeddings, or None.
    `soft_only` (Switti): the Gumbel-softmax weights replace the draw: no filtering, no categorical; the
    scale's tokens are the argmax of the soft weights (VAR and HART draw a token and smooth on top)."""

    top_k: int = 0
    top_p: float = 0.0
    smooth: tuple[float, float] | None = None
    soft_only: bool = False


class Backend(Protocol):
    """What the loop needs from a model family for one generation call."""

    grid: list[tuple[int, int]]  # (h, w) of every scale, coarse to fine

    def logits(self, k: int) -> torch.Tensor:
        """Run the transformer for scale k -> raw logits (2B, h*w, C): rows [0, B) cond, [B, 2B) uncond (a family
        that drops its unconditional rows for late scales, Switti, gives (B, h*w, C) there: `guide` knows)."""

    def guide(self, k: int, raw: torch.Tensor) -> torch.Tensor:
        """Combine raw logits (CFG, temperature) -> (B, h*w, C) float32, what the sampler receives."""

    def sampling(self, k: int) -> ScaleSampling:
        """Filtering and smoothing settings of scale k."""

    def categories(self, l: torch.Tensor) -> torch.Tensor:
        """View (B, h*w, C) logits as (B, N, K): one categorical per row (VAR: K = V; Infinity: bits)."""

    def advance(self, k: int, tokens: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        """Take sampled tokens (B, N) (and soft probabilities (B, N, K) when smoothing) for scale k,
        update the running latent, prepare scale k+1's input; return the tokens in the public layout."""

    def decode(self, rng: Rng) -> torch.Tensor:
        """Decode the running latent -> (B, 3, H, W) float32 in [0, 1]. `rng` serves backends whose decode
        is random (HART's residual diffusion draws from `rng.stream()`)."""

    def preview(self) -> torch.Tensor:
        """Decode the running latent as it stands after a scale (for --save-scales) -> (B, 3, H, W)."""


@dataclass
class Edit:
    """Editing a real image: per scale, the positions `keep` selects take the input image's tokens instead of
    the sampled ones (the VAR notebook's `replace_embedding`), so the next scales are predicted around them."""

    tokens: list[torch.Tensor]  # per scale (B, N_k): the input's tokens in the sampled layout (backend.encode)
    keep: list[torch.Tensor | None]  # per scale (B, h*w) bool, True = keep the input's token; None = keep nothing


@dataclass
class LoopOutput:
    tokens: list[torch.Tensor] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)  # only when keep_logits
    pixels: torch.Tensor | None = None


def run(backend: Backend, rng: Rng, ssg: SSG | None = None, *, betas: Sequence[float] | None = None,
        keep_logits: bool = False, on_scale: Callable[[int, Backend], None] | None = None,
        edit: Edit | None = None) -> LoopOutput:
    """Generate one batch: every scale, then the final decode. `betas`: SSG's plan (one beta per scale) when the
    caller has it (a resolved request), else `ssg.plan`. With `edit`, kept positions take the input's tokens
    after sampling (the draws are made as without it, so a keep-nothing edit is plain generation)."""
    grid = backend.grid
    if ssg is None:
        betas = [0.0] * len(grid)
    elif betas is None:
        betas = ssg.plan(len(grid))
    # SSG's prior matrices, built (and cached) before the loop: inside it, building one would copy it to the GPU,
    # a host-device sync. The cache key is the logits' float32 and device as a tensor names it (cuda:0, not cuda).
    dev = torch.empty(0, device=rng.device).device
    for k in range(1, len(grid)):
        if betas[k] != 0.0:
            prior_operator(tuple(grid[k - 1]), tuple(grid[k]), ssg.prior, ssg.interp, ssg.rescale, dev, torch.float32)
    out = LoopOutput()
    prev: torch.Tensor | None = None  # previous scale's logits before SSG, (B, h'*w', C)
    for k, (h, w) in enumerate(grid):
        l = backend.guide(k, backend.logits(k))  # (B, h*w, C)
        if keep_logits:
            out.logits.append(l.clone())
        g = l
        if betas[k] != 0.0 and prev is not None:
            g = ssg_update(l, prev, betas[k], (h, w), grid[k - 1], kind=ssg.prior, interp=ssg.interp,
                           rescale=ssg.rescale)
        prev = l if k + 1 < len(grid) and betas[k + 1] != 0.0 else None  # keep only what SSG will need
        if g is prev:
            g = g.clone()  # the filtering below works in place
        s = backend.sampling(k)
        if s.soft_only:  # one Gumbel draw, no filter: soft (B, N, K), tokens its argmax
            soft = gumbel_soft(backend.categories(g) * s.smooth[0], s.smooth[1], rng)
            tokens = soft.argmax(dim=-1)
        else:
            cat = filter_top_k_top_p_(backend.categories(g), s.top_k, s.top_p)  # (B, N, K)
            tokens = rng.categorical(cat.softmax(dim=-1))  # (B, N)
            soft = gumbel_soft(cat * s.smooth[0], s.smooth[1], rng) if s.smooth is not None else None
        if edit is not None and edit.keep[k] is not None:
            tokens, soft = keep_input(tokens, soft, edit.tokens[k], edit.keep[k])
        out.tokens.append(backend.advance(k, tokens, soft))
        if on_scale is not None:
            on_scale(k, backend)
    out.pixels = backend.decode(rng)
    return out


def keep_input(tokens: torch.Tensor, soft: torch.Tensor | None, given: torch.Tensor,
               keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sampled tokens (B, N) (and soft probabilities (B, N, K)) with the kept positions replaced by the input's
    tokens `given` (B, N). `keep` (B, h*w) is on the scale's grid; a position holds N // (h*w) consecutive
    categories (Infinity: d bits), so it is repeated that many times. All on the loop's device (no copy here)."""
    m = keep.repeat_interleave(tokens.shape[1] // keep.shape[1], dim=1)  # (B, N)
    tokens = torch.where(m, given, tokens)
    if soft is not None:  # a kept position's soft embedding is its input token's own (one-hot)
        hot = torch.zeros_like(soft).scatter_(-1, given[..., None], 1.0)  # (B, N, K); not F.one_hot: it syncs on CUDA
        soft = torch.where(m[..., None], hot, soft)
    return tokens, soft


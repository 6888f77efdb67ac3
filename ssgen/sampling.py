"""Sampling pieces shared by every backend: generators, top-k/top-p filtering, categorical draws,
Gumbel smoothing.

Two RNG modes (docs/architecture.md, Randomness):
- "per-image" (default): image i draws everything from its own generator seeded with seeds[i], so an
  image does not depend on the rest of its batch or on how a batch run is split.
- "batch": one generator seeded with the first seed for the whole batch, drawn in the official code's
  order; reproduces the official implementations' outputs (same device, dtype and batch).

`torch.multinomial(p, 1)` over a (N, V) matrix draws N*V exponentials from its generator in row
order; the batch mode makes exactly that call on the (B*n, V) probabilities, as upstream does.
"""

from __future__ import annotations

import torch

from .errors import ConfigError
from .settings import RNG_MODES


class Rng:
    """The randomness of one generation call."""

    def __init__(self, mode: str, seeds: list[int], device: torch.device | str):
        if mode not in RNG_MODES:
            raise ConfigError(f"unknown rng mode {mode!r}; use one of: {', '.join(RNG_MODES)}")
        self.mode, self.seeds, self.device = mode, list(seeds), torch.device(device)
        n = 1 if mode == "batch" else len(self.seeds)
        self.gens = [self._gen(s) for s in self.seeds[:n]]

    def _gen(self, seed: int) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(int(seed))
        return g

    def stream(self, device: torch.device | str | None = None) -> "Rng":
        """A second set of generators seeded the same way (HART's diffusion noise, as upstream seeds its global
        generator with the sampling seed), on this Rng's device or on `device`. Its numbers are the ones the
        main generators start with: fresh state, not statistical independence."""
        return Rng(self.mode, self.seeds, self.device if device is None else device)

    def categorical(self, probs: torch.Tensor) -> torch.Tensor:
        """probs (B, n, K) -> indices (B, n) int64, one draw per row."""
        B, n, K = probs.shape
        if self.mode == "batch":
            idx = torch.multinomial(probs.reshape(B * n, K), 1, replacement=True, generator=self.gens[0])
            return idx.view(B, n)
        self._rows(B)
        out = [torch.multinomial(probs[i], 1, replacement=True, generator=g).view(n) for i, g in enumerate(self.gens)]
        return torch.stack(out)

    def exponential(self, like: torch.Tensor) -> torch.Tensor:
        """Exp(1) noise of `like`'s shape (B, ...) and dtype."""
        if self.mode == "batch":
            return torch.empty_like(like).exponential_(1, generator=self.gens[0])
        self._rows(like.shape[0])
        return torch.stack([torch.empty_like(like[i]).exponential_(1, generator=g) for i, g in enumerate(self.gens)])

    def normal(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Standard normal noise (B, ...)."""
        if self.mode == "batch":
            return torch.randn(shape, generator=self.gens[0], device=self.device, dtype=dtype)
        self._rows(shape[0])
        return torch.stack([torch.randn(shape[1:], generator=g, device=self.device, dtype=dtype) for g in self.gens])

    def _rows(self, B: int) -> None:
        """Per-image draws need one row per image: another count is a caller's bug, never silently cut."""
        if B != len(self.gens):
            raise ValueError(f"per-image randomness for {len(self.gens)} images asked for {B} rows")


def filter_top_k_top_p_(logits: torch.Tensor, top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Mask logits (..., K) in place with -inf outside the top-k and then the top-p nucleus.

    As upstream VAR: top-k keeps every value tied with the k-th; top-p (on the top-k-masked logits)
    removes the ascending-sorted tail whose cumulative probability is <= 1 - top_p and always keeps
    the most likely entry. top_k <= 0 / top_p <= 0 disable each filter.
    """
    K = logits.shape[-1]
    if 0 < top_k < K:
        thr = logits.topk(top_k, dim=-1, largest=True, sorted=False).values.amin(dim=-1, keepdim=True)
        logits.masked_fill_(logits < thr, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, sorted_idx = logits.sort(dim=-1, descending=False)
        remove = sorted_logits.softmax(dim=-1).cumsum_(dim=-1) <= (1 - top_p)
        remove[..., -1:] = False
        logits.masked_fill_(remove.scatter(-1, sorted_idx, remove), float("-inf"))
    return logits


def gumbel_soft(logits: torch.Tensor, tau: float, rng: Rng) -> torch.Tensor:
    """Gumbel-softmax probabilities (..., K): softmax((logits + g) / tau), g = -log(Exp(1))."""
    g = -torch.log(rng.exponential(logits))
    return ((logits + g) / tau).softmax(dim=-1)

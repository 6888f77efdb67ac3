"""What the three families share: a loaded family's contract (`Family`, `Call`), option checks,
per-scale values, VAR's CFG ramp and combine, the Gumbel smoothing schedule, per-image VAE work and
the preallocated KV cache of VAR and HART.

Each function is the one place a rule lives; the families differ only in which rules they use (VAR
and HART share the CFG ramp and smoothing; Infinity has its own CFG form and per-scale temperature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from ..config import ModelConfig
from ..errors import ConfigError
from ..loop import Backend

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
    """A loaded model (VAR, Infinity or HART) with its weights on one device and dtype."""

    config: ModelConfig
    device: torch.device
    dtype: torch.dtype

    def num_scales(self, options: dict[str, Any]) -> int:
        """Scales a call with these options (the config's defaults merged in) runs."""

    def start(self, classes: list[int] | None, prompts: list[str] | None, options: dict[str, Any]) -> Call:
        """Check the conditions and options of one call and set up its backend."""


# ------------------------------------------------------------------------------------------------
# option checks
# ------------------------------------------------------------------------------------------------


def check_known(options: dict[str, Any], allowed: tuple[str, ...], family: str, hint: str = "") -> None:
    """An option the family does not take is an error naming it (and what the family takes)."""
    unknown = set(options) - set(allowed)
    if unknown:
        raise ConfigError(f"unknown option(s) for {family}: {', '.join(sorted(unknown))}{hint}; {family} takes "
                          + ", ".join(allowed))


def check_classes(classes: list | None, prompts: list | None, num_classes: int, model: str) -> list[int]:
    """Class-conditional families: integer classes in [0, num_classes)."""
    if prompts is not None or classes is None:
        raise ConfigError(f"{model} is class-conditional: pass classes (--class N), not prompts")
    for c in classes:
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < num_classes:
            raise ConfigError(f"class {c!r} is out of range: {model} takes ImageNet classes 0..{num_classes - 1}")
    return list(classes)


def check_text(classes: list | None, prompts: list | None, model: str) -> list[str]:
    """Text-to-image families: prompts, not classes (the text encoder checks emptiness)."""
    if classes is not None or prompts is None:
        raise ConfigError(f"{model} is text-to-image: pass prompts (--prompt TEXT), not classes")
    return list(prompts)


def top_k_top_p(options: dict[str, Any], default_k: int = 0) -> tuple[int, float]:
    """The one-number top_k (>= 0, 0 = off) and top_p (in [0, 1], 0 = off) of a call."""
    top_k, top_p = options.get("top_k", default_k), options.get("top_p", 0.0)
    try:
        k, p = int(top_k), float(top_p)
    except (TypeError, ValueError):
        raise ConfigError(f"top_k must be an integer and top_p a number, got top_k={top_k!r}, top_p={top_p!r}") \
            from None
    if k < 0 or not 0.0 <= p <= 1.0:
        raise ConfigError(f"top_k must be >= 0 and top_p within [0, 1], got top_k={k}, top_p={p}")
    return k, p


def flag(options: dict[str, Any], name: str, default: bool) -> bool:
    """A true/false option."""
    v = options.get(name, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{name} must be true or false, got {v!r}")
    return v


def per_scale(value: Any, K: int, name: str, model: str) -> list[float]:
    """A number or a list of one value per scale -> K finite floats."""
    if isinstance(value, (list, tuple)):
        if len(value) != K:
            raise ConfigError(f"{name} list has {len(value)} values but {model} runs {K} scales; "
                              f"give one number or {K} values")
        vals = value
    else:
        vals = [value] * K
    try:
        if any(isinstance(v, bool) for v in vals):
            raise TypeError
        out = [float(v) for v in vals]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number or a list of numbers, got {value!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return out


def recorded(value: Any) -> Any:
    """A number or per-scale list option as the PNG records it (lists as lists)."""
    return list(value) if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------------------------------------
# VAR-style guidance and smoothing (VAR, HART)
# ------------------------------------------------------------------------------------------------


def cfg_weights(cfg: Any, K: int, model: str, stale_last: bool = False) -> list[float]:
    """Per-scale CFG weights t_k. A number is upstream VAR's ramp t_k = cfg * k / (K - 1); HART's
    (`stale_last`) reuses the previous scale's ratio at the last scale, t = cfg * (K - 2) / (K - 1).
    A list gives every t_k directly (no ramp)."""
    if isinstance(cfg, (list, tuple)):
        return per_scale(cfg, K, "cfg", model)
    (c,) = per_scale(cfg, 1, "cfg", model)
    t = [c * k / (K - 1) for k in range(K)]
    if stale_last:
        t[-1] = c * (K - 2) / (K - 1)
    return t


def cfg_mix(raw: torch.Tensor, t: float) -> torch.Tensor:
    """Raw logits (2B, n, V) (rows [0, B) conditional, [B, 2B) unconditional) -> (1 + t) cond - t uncond."""
    B = raw.shape[0] // 2
    return (1 + t) * raw[:B] - t * raw[B:]  # (B, n, V)


def smoothing(ratio: float) -> tuple[float, float]:
    """Upstream's Gumbel smoothing at progress `ratio` in [0, 1]: (logit multiplier, tau)."""
    return 1 + ratio, max(0.27 * (1 - 0.95 * ratio), 0.005)


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

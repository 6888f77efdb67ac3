"""Scaled Spatial Guidance (SSG) and Discrete Spatial Enhancement (DSE): pure tensor functions.

The method (Shin, Hur, Kim, ICLR 2026), exactly as ssgen implements it (docs/ssg.md). At scale
k with grid h x w, `l` are the logits the sampler would receive (after CFG and temperature, before
top-k/top-p) and `l_prev` those of scale k-1 (before SSG touched them), grid h' x w':

    prior = DSE(l_prev, (h, w))            # per channel, over the spatial grid
    l_ssg = l + beta_k * (l - prior)       # = (1 + beta_k) * l - beta_k * prior

DSE upsamples with an orthonormal DCT-II: interpolate (bilinear or bicubic), take its spectrum, put the
coarse map's own spectrum (times sqrt(h*w / (h'*w')), so the mean is preserved) into the low band, and
transform back. Equal sizes give the input back.

Usable on its own:
    >>> from ssgen.guidance import dse, ssg
    >>> prior = dse(torch.randn(2, 4096, 13, 13), (16, 16))    # (B, C, 16, 16)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .errors import ConfigError

PRIORS = ("dse", "bilinear", "bicubic", "nearest", "area")
INTERPS = ("bilinear", "bicubic")


# ----------------------------------------------------------------------------------------------
# DCT and DSE
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _dct_matrix_f64(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n) in float64 on the CPU: X = D @ x."""
    i = torch.arange(n, dtype=torch.float64)
    d = torch.cos(math.pi * (i[None, :] + 0.5) * i[:, None] / n) * math.sqrt(2.0 / n)  # (k, i)
    d[0] = math.sqrt(1.0 / n)
    return d


@lru_cache(maxsize=256)
def dct_matrix(n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix `D_n[k, i] = sqrt(2/n) cos(pi (i + 0.5) k / n)`, row 0 = sqrt(1/n).

    Built once per size in float64 and cached per (device, dtype).
    """
    return _dct_matrix_f64(n).to(device=device, dtype=dtype)


def _interp(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(x, size=size, mode=mode, align_corners=False)
    return F.interpolate(x, size=size, mode=mode)  # nearest, area


def dse(x: torch.Tensor, size: tuple[int, int], interp: str = "bilinear", rescale: bool = True) -> torch.Tensor:
    """Discrete Spatial Enhancement: upsample `x` (B, C, h', w') to `size` = (h, w) -> (B, C, h, w).

    u = interpolate(x); U = D_h u D_w^T; U[:h', :w'] = D_h' x D_w'^T * s; return D_h^T U D_w,
    with s = sqrt(h w / (h' w')) when `rescale` (the default), else 1.
    """
    if interp not in INTERPS:
        raise ConfigError(f"unknown DSE interpolation {interp!r}; use one of: {', '.join(INTERPS)}")
    h0, w0 = x.shape[-2:]
    h, w = size
    if (h0, w0) == (h, w):
        return x
    if h0 > h or w0 > w:
        raise ValueError(f"DSE upsamples only: {h0}x{w0} -> {h}x{w}")
    dev, dt = x.device, x.dtype
    Dh, Dw = dct_matrix(h, dev, dt), dct_matrix(w, dev, dt)  # (h, h), (w, w)
    Dh0, Dw0 = dct_matrix(h0, dev, dt), dct_matrix(w0, dev, dt)  # (h', h'), (w', w')
    u = _interp(x, (h, w), interp)  # (B, C, h, w)
    U = Dh @ u @ Dw.T  # (B, C, h, w) spectrum of the interpolated map
    X = Dh0 @ x @ Dw0.T  # (B, C, h', w') spectrum of the coarse map
    if rescale:
        X = X * math.sqrt(h * w / (h0 * w0))
    U[..., :h0, :w0] = X  # exact coarse low band
    return Dh.T @ U @ Dw  # (B, C, h, w)


def prior(x: torch.Tensor, size: tuple[int, int], kind: str = "dse", interp: str = "bilinear",
          rescale: bool = True) -> torch.Tensor:
    """The coarse prior for SSG: DSE (default) or a plain interpolation (the paper's ablation)."""
    if kind == "dse":
        return dse(x, size, interp=interp, rescale=rescale)
    if kind not in PRIORS:
        raise ConfigError(f"unknown SSG prior {kind!r}; use one of: {', '.join(PRIORS)}")
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return _interp(x, size, kind)


@lru_cache(maxsize=64)
def prior_operator(prev_size: tuple[int, int], size: tuple[int, int], kind: str = "dse", interp: str = "bilinear",
                   rescale: bool = True, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The prior as one matrix M (h*w, h'*w'): every prior is linear and acts on each channel alike, so
    `prior(x)` of a token-major map (B, h'*w', C) is `M @ x` -> (B, h*w, C), a single matrix product.

    Built once per (sizes, kind, device, dtype) in float64 by applying `prior` to the unit maps, cached.
    """
    h0, w0 = prev_size
    n = h0 * w0
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, h0, w0)  # (n, 1, h', w'): one unit map each
    cols = prior(basis, tuple(size), kind=kind, interp=interp, rescale=rescale)  # (n, 1, h, w)
    return cols.reshape(n, -1).T.contiguous().to(device=device, dtype=dtype)  # (h*w, h'*w')


def ssg(l: torch.Tensor, l_prev: torch.Tensor, beta: float, size: tuple[int, int], prev_size: tuple[int, int],
        kind: str = "dse", interp: str = "bilinear", rescale: bool = True) -> torch.Tensor:
    """The SSG update on token-major logits.

    l: (B, h*w, C) this scale's logits; l_prev: (B, h'*w', C) the previous scale's (pre-SSG) logits.
    Returns (B, h*w, C): l + beta * (l - prior(l_prev)), in the logits' dtype. The prior is one
    cached (h*w, h'*w') matrix product (`prior_operator`): no transposes, a few ms per image.
    """
    M = prior_operator(tuple(prev_size), tuple(size), kind, interp, rescale, l.device, l.dtype)  # (h*w, h'*w')
    p = torch.matmul(M, l_prev.to(l.dtype))  # (B, h*w, C)
    return l + beta * (l - p)


# ----------------------------------------------------------------------------------------------
# Settings: which scales, how strong
# ----------------------------------------------------------------------------------------------


def _beta_value(b: Any) -> float | tuple[float, ...] | str:
    """A beta in any accepted form -> how SSG stores it: a float, a tuple with one float per scale, or
    "linear:START:END" with both ends written exactly (repr), so the ramp keeps its values.

    Text (flags, YAML, job files) may say `0.5`, `0,0,0.2,...` or `linear:1.0:0.2`."""
    if isinstance(b, str):
        s = b.strip()
        try:
            if s.startswith("linear:"):
                _, start, end = s.split(":")  # ValueError unless exactly two values
                ends = [float(start), float(end)]
                _check_finite(ends, b)
                return f"linear:{ends[0]!r}:{ends[1]!r}"
            b = [float(v) for v in s.split(",")] if "," in s else float(s)
        except ValueError:
            raise ConfigError(
                f"malformed SSG beta {b!r}; use a number (0.5), one value per scale (0,0,0.2,...) "
                "or a linear ramp over the active scales (linear:START:END)"
            ) from None
    if isinstance(b, (list, tuple)):
        try:
            vals = tuple(float(v) for v in b)
        except (TypeError, ValueError):
            raise ConfigError(f"SSG beta list must hold numbers, got {list(b)!r}") from None
        _check_finite(vals, str(list(b)))
        return vals
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        _check_finite([float(b)], str(b))
        return float(b)
    raise ConfigError(f"SSG beta must be a number, a list or 'linear:START:END', got {b!r}")


def _check_finite(vals: Sequence[float], text: str) -> None:
    if not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"SSG beta must be finite, got {text!r}")


_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-|:|\.\.)\s*(-?\d+)\s*$")


def _scales_value(sc: Any) -> tuple[int, int]:
    """A scale range in any accepted form -> (start, end): a pair, or text `2-9`, `2:9`, `-4--1`, `5`."""
    if isinstance(sc, str):
        m = _RANGE.match(sc)
        if m:
            return int(m.group(1)), int(m.group(2))
        if re.fullmatch(r"\s*-?\d+\s*", sc):
            return int(sc), int(sc)
        raise ConfigError(f"malformed SSG scale range {sc!r}; use START-END (inclusive, 0-based, e.g. 2-9 or -4--1)")
    if not (isinstance(sc, (list, tuple)) and len(sc) == 2 and all(isinstance(v, int) for v in sc)):
        raise ConfigError(f"SSG scales must be an inclusive [start, end] pair of integers, got {sc!r}")
    return int(sc[0]), int(sc[1])


@dataclass(frozen=True)
class SSG:
    """SSG settings.

    beta: a number, a list with one value per scale (length = the model's number of scales), or a
          linear ramp over the active range written "linear:START:END".
    scales: inclusive (start, end) range of 0-based scale indices; negatives count from the last.
          Scale 0 is never guided (it has no previous scale); a range that includes it is fine.
    prior: "dse" (default) or an ablation prior: "bilinear", "bicubic", "nearest", "area".
    interp: DSE's interpolation, "bilinear" (default) or "bicubic".
    rescale: scale the coarse DCT band by sqrt(h*w / (h'*w')) (mean preserving; default True).
    """

    beta: float | tuple[float, ...] | str = 0.5
    scales: tuple[int, int] = (2, -1)
    prior: str = "dse"
    interp: str = "bilinear"
    rescale: bool = True

    def __post_init__(self):  # normalise every accepted form (values or text), so equal settings compare equal
        object.__setattr__(self, "beta", _beta_value(self.beta))
        object.__setattr__(self, "scales", _scales_value(self.scales))
        a, b = self.scales
        if (a >= 0) == (b >= 0) and a > b:  # same sign: comparable without knowing the number of scales
            raise ConfigError(f"SSG scale range {a}-{b} has start > end; write it as START-END with START <= END")
        if self.prior not in PRIORS:
            raise ConfigError(f"unknown SSG prior {self.prior!r}; use one of: {', '.join(PRIORS)}")
        if self.interp not in INTERPS:
            raise ConfigError(f"unknown DSE interpolation {self.interp!r}; use one of: {', '.join(INTERPS)}")

    def plan(self, n_scales: int) -> list[float]:
        """One beta per scale (0.0 where SSG is off). Validates the range and list length."""
        a, b = self.scales
        ra = a + n_scales if a < 0 else a
        rb = b + n_scales if b < 0 else b
        if not (0 <= ra < n_scales and 0 <= rb < n_scales):
            raise ConfigError(
                f"SSG scale range {a}-{b} is outside this model's scales 0-{n_scales - 1} "
                f"(negatives count from the last, -1 = {n_scales - 1})"
            )
        if ra > rb:
            raise ConfigError(f"SSG scale range {a}-{b} has start > end; write it as START-END with START <= END")
        active = [k for k in range(n_scales) if ra <= k <= rb and k > 0]
        betas = [0.0] * n_scales
        if isinstance(self.beta, tuple):
            if len(self.beta) != n_scales:
                raise ConfigError(
                    f"SSG beta list has {len(self.beta)} values but this model has {n_scales} scales; "
                    "give one value per scale"
                )
            for k in active:
                betas[k] = self.beta[k]
        elif isinstance(self.beta, str):  # linear:START:END over the active scales
            _, s, e = self.beta.split(":")
            s, e = float(s), float(e)
            n = len(active)
            for j, k in enumerate(active):
                betas[k] = s if n == 1 else s + (e - s) * j / (n - 1)
        else:
            for k in active:
                betas[k] = self.beta
        return betas

    def to_dict(self) -> dict:
        beta = list(self.beta) if isinstance(self.beta, tuple) else self.beta
        return {"beta": beta, "scales": list(self.scales), "prior": self.prior, "interp": self.interp,
                "rescale": self.rescale}

    def label(self) -> str:
        """A short human label for grids, e.g. 'SSG beta=0.5\\nscales 2..-1' (multi-line)."""
        beta = ",".join(f"{v:g}" for v in self.beta) if isinstance(self.beta, tuple) else (
            self.beta if isinstance(self.beta, str) else f"{self.beta:g}")
        extra = "" if self.prior == "dse" else f"\nprior {self.prior}"
        return f"SSG beta={beta}\nscales {self.scales[0]}..{self.scales[1]}{extra}"


def ssg_from_config(section: Any) -> SSG | None:
    """An `ssg:` mapping (a model config's section, a batch job's `ssg:`) -> SSG, or None when it is absent,
    `false` or says `enabled: false`. Missing fields take SSG's defaults; an unknown field is a ConfigError."""
    if section is None or section is False:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"ssg: must be a mapping (beta, scales, prior, interp, rescale, enabled), got {section!r}")
    d = dict(section)
    enabled = d.pop("enabled", True)
    known = set(SSG.__dataclass_fields__)
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"unknown field(s) in ssg: section: {', '.join(sorted(unknown))}; known: enabled, "
                          + ", ".join(sorted(known)))
    s = SSG(**d)
    return s if enabled else None

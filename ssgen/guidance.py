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
from functools import lru_cache

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .settings import INTERPS, PRIORS, SSG, ssg_from_config  # noqa: F401  (re-exported)

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

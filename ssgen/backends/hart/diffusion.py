"""HART's residual diffusion head: a small MLP with AdaLN (MAR's SimpleMLPAdaLN) and iDDPM sampling.

At the last scale the discrete tokens miss part of the latent; the head predicts that continuous
residual per token, conditioned on the transformer (see `HART.residual_condition`). Sampling as
upstream (`DiffLoss.sample` + OpenAI's improved-diffusion `SpacedDiffusion.p_sample_loop`):

- a 1000-step cosine schedule (Nichol & Dhariwal), respaced to S steps (8) with `space_timesteps`;
  the kept timesteps for 8 are {0, 143, 285, 428, 571, 714, 856, 999};
- epsilon prediction, learned-range variance (the second half of the output interpolates between
  the posterior and the beta log-variance), x0 clipped to [-1, 1], temperature 1;
- CFG on the noise prediction only: both halves see the conditional half's x,
  eps = (1 + t) * eps_cond - t * eps_uncond; the variance comes from each half (the cond half's is
  what the kept sample uses);
- the sample is scaled by 0.6 (`vae_scale`) at the end.

Randomness (what `noise` supplies, in this order): x_T, then one draw per step, the last one (t = 0)
unused. The MLP works row by row, so only the conditional half of x is tracked here; the caller
draws noise in upstream's shapes (see family.py) to reproduce its random stream.

Parameter names equal upstream's `diffloss.net.*` keys.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VAE_SCALE = 0.6  # the residual target was divided by this in training


# ------------------------------------------------------------------------------------------------
# the schedule
# ------------------------------------------------------------------------------------------------


def cosine_betas(n: int = 1000, max_beta: float = 0.999) -> np.ndarray:
    """betas of the cosine schedule: 1 - abar((i+1)/n) / abar(i/n), abar(t) = cos((t + 0.008)/1.008 * pi/2)^2."""

    def abar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array([min(1 - abar((i + 1) / n) / abar(i / n), max_beta) for i in range(n)], dtype=np.float64)


def space_timesteps(n: int, steps: int) -> list[int]:
    """The kept timesteps of a single-section respacing of n steps to `steps` (improved-diffusion)."""
    if steps > n:
        raise ValueError(f"cannot respace {n} diffusion steps to {steps}")
    stride = (n - 1) / (steps - 1) if steps > 1 else 1
    out, cur = [], 0.0
    for _ in range(steps):
        out.append(round(cur))  # Python's round (half to even), on the accumulated float, as upstream
        cur += stride
    return sorted(set(out))


class Schedule:
    """The respaced schedule's per-step coefficients, computed in float64 and stored as float32."""

    def __init__(self, steps: int, n: int = 1000):
        base = np.cumprod(1.0 - cosine_betas(n))  # alphas_cumprod of the 1000-step process
        self.timesteps = space_timesteps(n, steps)  # original t of each respaced step
        betas, last = [], 1.0
        for t in self.timesteps:
            betas.append(1 - base[t] / last)
            last = base[t]
        b = np.array(betas, dtype=np.float64)
        ac = np.cumprod(1.0 - b)
        ac_prev = np.append(1.0, ac[:-1])
        post_var = b * (1.0 - ac_prev) / (1.0 - ac)
        tables = {
            "recip": np.sqrt(1.0 / ac),  # x0 = recip * x_t - recipm1 * eps
            "recipm1": np.sqrt(1.0 / ac - 1),
            "coef1": b * np.sqrt(ac_prev) / (1.0 - ac),  # posterior mean = coef1 * x0 + coef2 * x_t
            "coef2": (1.0 - ac_prev) * np.sqrt(1.0 - b) / (1.0 - ac),
            "min_log": np.log(np.append(post_var[1], post_var[1:])),  # clipped posterior log-variance
            "max_log": np.log(b),
        }
        self.tables = {k: torch.from_numpy(v).float() for k, v in tables.items()}  # (S,) float32 each

    def __len__(self) -> int:
        return len(self.timesteps)

    def at(self, name: str, i: int, device) -> torch.Tensor:
        return self.tables[name][i].to(device)  # 0-dim float32


# ------------------------------------------------------------------------------------------------
# the network (SimpleMLPAdaLN)
# ------------------------------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding (n,) -> (n, dim) float32: [cos(t f), sin(t f)], f = max_period^(-i/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    ang = t[:, None].float() * freqs[None]
    return torch.cat((ang.cos(), ang.sin()), dim=-1)


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, W)
        return self.mlp(timestep_embedding(t, self.freq_dim).to(self.mlp[0].weight.dtype))


class ResBlock(nn.Module):
    """x + gate * mlp(LN(x) * (1 + scale) + shift), (shift, scale, gate) from y."""

    def __init__(self, W: int):
        super().__init__()
        self.in_ln = nn.LayerNorm(W, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(W, W), nn.SiLU(), nn.Linear(W, W))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(W, 3 * W))

    def forward(self, x, y):  # (n, W), (n, W)
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(self.in_ln(x) * (1 + scale) + shift)


class FinalLayer(nn.Module):
    def __init__(self, W: int, out: int):
        super().__init__()
        self.linear = nn.Linear(W, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(W, 2 * W))

    def forward(self, x, y):
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        return self.linear(F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale) + shift)


class SimpleMLPAdaLN(nn.Module):
    """(x_t (n, Cvae), t (n,), c (n, C)) -> (n, 2*Cvae): [eps, variance interpolation values]."""

    def __init__(self, latent: int, cond: int, width: int, depth: int):
        super().__init__()
        self.time_embed = TimestepEmbedder(width)
        self.cond_embed = nn.Linear(cond, width)
        self.input_proj = nn.Linear(latent, width)
        self.res_blocks = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.final_layer = FinalLayer(width, 2 * latent)

    def forward(self, x, t_emb, c_emb):
        """x (n, Cvae); t_emb (1 or n, W) = time_embed(t); c_emb (n, W) = cond_embed(c)."""
        x = self.input_proj(x)
        y = t_emb + c_emb
        for blk in self.res_blocks:
            x = blk(x, y)
        return self.final_layer(x, y)


class DiffLoss(nn.Module):
    """Upstream's container name (keys `diffloss.net.*`); holds the MLP and its sampling schedule."""

    def __init__(self, latent: int, cond: int, width: int, depth: int, steps: int = 8):
        super().__init__()
        self.latent = latent
        self.net = SimpleMLPAdaLN(latent, cond, width, depth)
        self.schedule = Schedule(steps)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, t: float, x_T: torch.Tensor, noise: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Ancestral iDDPM sampling of the residual.

        z (2N, C): the condition, rows [0, N) conditional, [N, 2N) unconditional (N = B * tokens);
        t: the CFG weight (upstream runs without guidance when t == 1.0 exactly, a MAR convention
        that this keeps); x_T (N, Cvae) float32; noise() -> (N, Cvae) float32, called once per step.
        Returns the conditional residual (N, Cvae) float32, already scaled by 0.6.
        """
        N, Cv = x_T.shape
        guided = t != 1.0
        dt = self.net.input_proj.weight.dtype
        dev = z.device
        c_emb = self.net.cond_embed(z.to(dt) if guided else z[:N].to(dt))  # (2N or N, W)
        x = x_T.float()
        S = len(self.schedule)
        for i in reversed(range(S)):
            t_emb = self.net.time_embed(torch.tensor([self.schedule.timesteps[i]], device=dev))  # (1, W)
            if guided:
                out = self.net(torch.cat((x, x)).to(dt), t_emb, c_emb).float()  # (2N, 2 Cvae)
                eps_c, eps_u = out[:N, :Cv], out[N:, :Cv]
                eps = eps_c * (1 + t) - t * eps_u
                var = out[:N, Cv:]
            else:
                out = self.net(x.to(dt), t_emb, c_emb).float()  # (N, 2 Cvae)
                eps, var = out[:, :Cv], out[:, Cv:]
            s = self.schedule
            frac = (var + 1) / 2
            log_var = frac * s.at("max_log", i, dev) + (1 - frac) * s.at("min_log", i, dev)
            x0 = (s.at("recip", i, dev) * x - s.at("recipm1", i, dev) * eps).clamp(-1, 1)
            mean = s.at("coef1", i, dev) * x0 + s.at("coef2", i, dev) * x
            n = noise()
            x = mean + torch.exp(0.5 * log_var) * n if i > 0 else mean
        return x * VAE_SCALE

"""The Switti transformer (Voronov et al. 2024, yandex-research/switti), inference only.

A clean re-implementation whose module and parameter names equal the official ones (models/switti.py,
models/basic_switti.py), so that a released `model.safetensors` loads with `load_state_dict` once the buffers
listed in `IGNORED_KEYS_SWITTI` are dropped.

Notation: B images, R rows (2B while CFG runs: conditional rows [0, B), unconditional [B, 2B); B after
`cfg_stop`), C = D width (64 * depth), H = depth heads of 64, V = 4096 codes, Cvae = 32 latent channels,
K scales of side `patch_nums` (from `reso`), T = 77 text tokens, Ct = 2048 text channels (CLIP-L 768 +
CLIP-bigG 1280).

What a block does (`AdaLNSelfCrossAttn`, sandwich RMSNorms, eps 1e-6; g/s/b from the AdaLN of the condition):
    x += RMSNorm(SelfAttn(RMSNorm(x) * (1 + s1) + b1)) * g1
    x += RMSNorm(CrossAttn(RMSNorm(x), RMSNorm_y(context)))          # no modulation, no gate
    x += RMSNorm(FFN(RMSNorm(x) * (1 + s2) + b2)) * g2
Attention: q and k LayerNorm over the full width (no affine) before the head split; self-attention adds 2-D
axial RoPE (or, with rope=False, an absolute position table `pos_1LC` is added to the inputs); the
cross-attention's keys are masked by the text's padding. The condition `cond_BD` = text_pooler(pooled CLIP-bigG)
drives every AdaLN and is also scale 0's token; each block adds `crop_cond_scales * crop_cond` to its own
condition (use_crop_cond), the head does not.

Attention across scales: the non-AR models (use_ar=False) were trained with a block-diagonal mask, so a scale
attends only to its own tokens: each scale runs alone, nothing is cached. The AR models (use_ar=True) are
block-causal: a KV cache holds every earlier scale. The text keys/values are computed once per call
(`context`), as upstream caches them at the first scale.

Inference protocol (driven by the generic next-scale loop through family.py):

    model.reset_cache()
    ctx = model.context(text, attn_bias, pooled)     # (2B, ...): text K/V, AdaLN modulations per block
    x = model.first_input(ctx)                       # (2B, 1, C)
    for k in range(K):
        if k == cfg_stop: ctx = model.keep_rows(ctx, B)   # drops the unconditional half (and its KV cache)
        logits = model.forward_scale(x[:R], ctx, k)  # (R, pn_k**2, V) float32
        ... guidance, sampling, VAE update -> next_map (B, Cvae, pn_{k+1}, pn_{k+1}) ...
        x = model.next_input(next_map, k + 1)        # (2B, pn_{k+1}**2, C)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError
from ..common import KVCache
from ..onednn import Linear, prepack_linears
from .options import PATCH_NUMS, patch_nums

# Buffers the official files carry that inference rebuilds or does not need (fnmatch patterns):
#   lvl_1L                 (1, L) int64  the scale of every token       -> from patch_nums
#   attn_bias_for_masking  (1, 1, L, L)  the training mask (341 MB at 1024 px) -> never read: a scale runs alone
#                                        (non-AR) or against its KV cache (AR)
IGNORED_KEYS_SWITTI: tuple[str, ...] = ("lvl_1L", "attn_bias_for_masking")

HEAD_DIM = 64  # SwittiHF: width = 64 * depth, heads = depth
CONTEXT_DIM = 2048  # cat(CLIP-L 768, CLIP-bigG 1280), hard-coded upstream (models/switti.py:81-83)
POOLED_DIM = 1280  # CLIP-bigG's pooler output
TRAIN_IMAGE_SIZE = 512  # the pipeline's crop condition is always [512, 512, 0, 0] (models/pipeline.py:11, 131-138)


@dataclass
class SwittiConfig:
    """The transformer folder's config.json: SwittiHF.__init__'s arguments (models/switti.py:387-397), with
    SwittiHF's defaults. Width, heads and the scale schedule follow from depth and reso."""

    depth: int = 30
    reso: int = 512
    rope: bool = True
    rope_theta: float = 10000
    rope_size: float = 128
    use_swiglu_ffn: bool = True
    use_ar: bool = False
    use_crop_cond: bool = True
    # fixed by Switti's constructor
    vocab_size: int = 4096
    latent_channels: int = 32
    norm_eps: float = 1e-6
    mlp_ratio: float = 4.0  # the GELU FFN of use_swiglu_ffn=False

    def __post_init__(self):
        patch_nums(self.reso)  # 256, 512 or 1024
        if self.depth < 1:
            raise ConfigError(f"Switti depth must be >= 1, got {self.depth}")

    @classmethod
    def from_json(cls, d: dict, where: str = "config.json") -> "SwittiConfig":
        """From a config.json dict: its keys are SwittiHF's arguments; others (a stale `v_patch_nums`, ...) are
        ignored as the Hub mixin ignores them. A value of the wrong type is a ConfigError naming the key."""
        from ...checks import as_kind
        from ...errors import OptionError
        from .options import MODEL_FIELDS

        kw = {}
        for f in fields(cls):
            if f.name in MODEL_FIELDS and d.get(f.name) is not None:
                try:
                    kw[f.name] = as_kind(d[f.name], MODEL_FIELDS[f.name], f.name)
                except OptionError as e:
                    raise ConfigError(f"{where}: {e}") from None
        return cls(**kw)

    @property
    def width(self) -> int:
        return HEAD_DIM * self.depth

    @property
    def heads(self) -> int:
        return self.depth

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return PATCH_NUMS[self.reso]

    @property
    def num_tokens(self) -> int:
        return sum(p * p for p in self.patch_nums)

    def fields(self) -> dict[str, Any]:
        """The config.json fields, as a config's `model:` section names them."""
        from .options import MODEL_FIELDS

        return {k: getattr(self, k) for k in MODEL_FIELDS}


# ------------------------------------------------------------------------------------------------
# pieces
# ------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """x / rms(x) in float32, cast back, times a weight (upstream's vanilla RMSNorm, models/basic_switti.py:27-70)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.float()
        return (f * torch.rsqrt(f.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def qk_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the full width, no affine, eps 1e-6 (upstream's q_norm / k_norm): (..., C)."""
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def heads(x: torch.Tensor, H: int) -> torch.Tensor:
    """(R, l, C) -> (R, H, l, C / H): contiguous head-dim slices."""
    R, L, C = x.shape
    return x.view(R, L, H, C // H).transpose(1, 2)


def axial_rope(pn: int, head_dim: int, theta: float, rope_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (pn*pn, head_dim/2) float32 of a pn x pn scale's 2-D axial RoPE (models/rope.py, switti.py:101-115).

    Token i (raster order) sits at column i % pn, row i // pn; every scale's grid is stretched over
    [0, rope_size]: f_j = (1 / theta^(4j/d)) * rope_size / (pn - 1) (pn = 1: / 1), j < d/4. The first d/4 pairs
    turn with column * f_j, the last d/4 with row * f_j. Computed in float32 in upstream's order."""
    norm_coeff = rope_size / (pn - 1 if pn > 1 else 1)
    base = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim)) * norm_coeff
    t = torch.arange(pn * pn, dtype=torch.float32)
    col, row = t % pn, torch.div(t, pn, rounding_mode="floor")
    ang = torch.cat((torch.outer(col, base), torch.outer(row, base)), dim=-1)  # (pn*pn, d/2)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the interleaved pairs (2i, 2i+1) of x (R, H, l, d) as complex numbers by angles (l, d/2), in
    float32 (upstream's view_as_complex product: real ac - bd, imaginary ad + bc), cast back."""
    f = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = f[..., 0], f[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(3)
    return out.type_as(x)


def fourier(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """diffusers' GaussianFourierProjection(log=False, flip_sin_to_cos=False): x (n,) -> (n, 2m) =
    [sin(2 pi x w), cos(2 pi x w)], always in float32: the arguments reach several thousand, where bf16 would
    move them by tens of radians (upstream's bf16 pipeline does; its training did not). Computed in upstream's
    order, ((x * w) * 2) * float32(pi): float64 moves the embedding by ~3e-4."""
    arg = x.float()[:, None] * w.float()[None, :] * 2 * math.pi
    return torch.cat((arg.sin(), arg.cos()), dim=-1)


class SelfAttention(nn.Module):
    """Parameters as upstream: to_qkv (C -> 3C, bias), proj. Optional KV cache (AR models)."""

    def __init__(self, C: int, H: int):
        super().__init__()
        self.heads, self.scale = H, 1 / math.sqrt(C // H)
        self.to_qkv = Linear(C, 3 * C)
        self.proj = Linear(C, C)
        self.cache = KVCache()

    def forward(self, x: torch.Tensor, rope: tuple | None, cached: bool, max_len: int) -> torch.Tensor:
        R, L, C = x.shape  # (R, l, C)
        q, k, v = self.to_qkv(x).view(R, L, 3, C).unbind(2)  # each (R, l, C)
        q, k, v = heads(qk_norm(q), self.heads), heads(qk_norm(k), self.heads), heads(v, self.heads)  # (R, H, l, d)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cached:  # AR: this scale's keys join every earlier scale's
            k, v = self.cache.append(k, v, max_len)  # (R, H, n, d)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (R, H, l, d)
        return self.proj(out.transpose(1, 2).reshape(R, L, C))


class CrossAttention(nn.Module):
    """Parameters as upstream: to_q (C -> C), to_kv (Ct -> 2C, split [k | v]), proj. No RoPE."""

    def __init__(self, C: int, H: int, context_dim: int):
        super().__init__()
        self.heads, self.scale = H, 1 / math.sqrt(C // H)
        self.to_q = Linear(C, C)
        self.to_kv = Linear(context_dim, 2 * C)
        self.proj = Linear(C, C)

    def text_kv(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised text y (R, T, Ct) -> keys, values (R, H, T, d)."""
        R, T, _ = y.shape
        k, v = self.to_kv(y).view(R, T, 2, -1).unbind(2)  # (R, T, C) each
        return heads(qk_norm(k), self.heads), heads(v, self.heads)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        R, L, C = x.shape
        q = heads(qk_norm(self.to_q(x)), self.heads)  # (R, H, l, d)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)  # bias (R, 1, 1, T)
        return self.proj(out.transpose(1, 2).reshape(R, L, C))


class SwiGLUFFN(nn.Module):
    """down(silu(gate(x)) * up(x)), hidden int(C * 8/3), no biases (use_swiglu_ffn=True)."""

    def __init__(self, C: int):
        super().__init__()
        hidden = int(C * 8 / 3)
        self.up_proj = Linear(C, hidden, bias=False)
        self.down_proj = Linear(hidden, C, bias=False)
        self.gate_proj = Linear(C, hidden, bias=False)

    def forward(self, x):
        g = F.silu(self.gate_proj(x), inplace=True)  # in place: no extra hidden-size tensors (VAR's FFN)
        return self.down_proj(g.mul_(self.up_proj(x)))


class FFN(nn.Module):
    """fc2(gelu_tanh(fc1(x))), hidden round(C * mlp_ratio) (use_swiglu_ffn=False: upstream's FFN)."""

    def __init__(self, C: int, hidden: int):
        super().__init__()
        self.fc1 = Linear(C, hidden)
        self.fc2 = Linear(hidden, C)

    def forward(self, x):
        return self.fc2(torch.ops.aten.gelu_(self.fc1(x), approximate="tanh"))  # in place (VAR's FFN)


class AdaLNSelfCrossAttn(nn.Module):
    def __init__(self, cfg: SwittiConfig):
        super().__init__()
        C, H, eps = cfg.width, cfg.heads, cfg.norm_eps
        self.C = C
        self.attn = SelfAttention(C, H)
        self.cross_attn = CrossAttention(C, H, CONTEXT_DIM)
        self.ffn = SwiGLUFFN(C) if cfg.use_swiglu_ffn else FFN(C, round(C * cfg.mlp_ratio))
        self.self_attention_norm1 = RMSNorm(C, eps)
        self.self_attention_norm2 = RMSNorm(C, eps)
        self.cross_attention_norm1 = RMSNorm(C, eps)
        self.cross_attention_norm2 = RMSNorm(C, eps)
        self.ffn_norm1 = RMSNorm(C, eps)
        self.ffn_norm2 = RMSNorm(C, eps)
        self.attention_y_norm = RMSNorm(CONTEXT_DIM, eps)
        self.ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 6 * C))
        if cfg.use_crop_cond:
            self.crop_cond_scales = nn.Parameter(torch.zeros(1, C))

    def modulation(self, cond: torch.Tensor, crop: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """cond (R, D) (+ crop_cond_scales * crop (R, D)) -> g1, g2, 1 + s1, 1 + s2, b1, b2, each (R, 1, C)."""
        if crop is not None:
            cond = cond + self.crop_cond_scales * crop
        g1, g2, s1, s2, b1, b2 = self.ada_lin(cond).view(-1, 1, 6, self.C).unbind(2)
        return g1, g2, s1.add(1), s2.add(1), b1, b2

    def forward(self, x: torch.Tensor, mod: tuple, text: tuple, rope: tuple | None, cached: bool,
                max_len: int) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = mod  # each (R, 1, C)
        k, v, bias = text
        h = self.self_attention_norm1(x).mul(s1).add(b1)  # (R, l, C)
        x = x + self.self_attention_norm2(self.attn(h, rope, cached, max_len)).mul(g1)
        x = x + self.cross_attention_norm2(self.cross_attn(self.cross_attention_norm1(x), k, v, bias))
        h = self.ffn_norm1(x).mul(s2).add(b2)
        return x + self.ffn_norm2(self.ffn(h)).mul(g2)


class AdaLNBeforeHead(nn.Module):
    def __init__(self, cfg: SwittiConfig):
        super().__init__()
        self.C, self.eps = cfg.width, cfg.norm_eps
        self.ada_lin = nn.Sequential(nn.SiLU(), Linear(cfg.width, 2 * cfg.width))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, self.C).unbind(2)  # order: scale, shift
        return scale.add(1), shift  # (R, 1, C) each

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        s, b = mod
        return F.layer_norm(x, (self.C,), eps=self.eps).mul(s).add(b)


class GaussianFourierProjection(nn.Module):
    """Holds `crop_embed.weight` (D/8,) (N(0,1) at construction, saved, never trained): see `fourier`."""

    def __init__(self, n: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n), requires_grad=False)


@dataclass
class Context:
    """One call's condition, rows [cond; uncond] (R = 2B) or, after `keep_rows`, the conditional rows alone."""

    text: list  # per block: (keys, values (R, H, T, d), bias (R, 1, 1, T)) of the cross-attention
    mods: list  # per block: its AdaLN modulations (R, 1, C) x 6
    head_mod: tuple  # the head's (1 + scale, shift), (R, 1, C) each
    cond: torch.Tensor  # (R, D) cond_BD = text_pooler(pooled): scale 0's token

    @property
    def rows(self) -> int:
        return self.cond.shape[0]


# ------------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------------


class Switti(nn.Module):
    """Text-to-image next-scale transformer (state-dict compatible with upstream's SwittiHF)."""

    def __init__(self, cfg: SwittiConfig):
        super().__init__()
        self.cfg = cfg
        C, K = cfg.width, len(cfg.patch_nums)
        self.patch_nums = cfg.patch_nums
        self.L = cfg.num_tokens
        self.first_l = cfg.patch_nums[0] ** 2
        self.begins = [sum(p * p for p in cfg.patch_nums[:k]) for k in range(K)]

        self.word_embed = Linear(cfg.latent_channels, C)  # VAE latent -> token
        self.text_pooler = Linear(POOLED_DIM, C)  # pooled CLIP-bigG -> cond_BD
        self.pos_start = nn.Parameter(torch.zeros(1, self.first_l, C))
        if not cfg.rope:  # absolute positions instead of RoPE (models/switti.py:89-100)
            self.pos_1LC = nn.Parameter(torch.zeros(1, self.L, C))
        self.lvl_embed = nn.Embedding(K, C)
        self.blocks = nn.ModuleList(AdaLNSelfCrossAttn(cfg) for _ in range(cfg.depth))
        if cfg.use_crop_cond:
            self.crop_embed = GaussianFourierProjection(C // 8)
            self.crop_proj = Linear(C, C)
        self.head_nm = AdaLNBeforeHead(cfg)
        self.head = Linear(C, cfg.vocab_size)
        self._rope: list | None = None  # per scale (cos, sin), built on first use (not saved, as upstream)

    # ------------------------------------------------------------------------------------- state
    def reset_cache(self, release: bool = False):
        """Forget the self-attention KV caches (AR models); call before every new batch. `release=True` frees
        the buffers (else they are kept for the next batch of the same shape)."""
        for b in self.blocks:
            b.attn.cache.reset(release)

    def prepack_cpu(self) -> bool:
        """On the CPU: every Linear computes from a oneDNN-prepacked weight (ssgen/backends/onednn.py): faster,
        and a row's result does not depend on the number of rows (per-image batch invariance). The plain
        weights are released: the model generates but cannot be saved or moved. Returns whether all are packed."""
        return prepack_linears(self)

    def rope(self, k: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """cos, sin (pn_k**2, d/2) float32 of scale k (None with rope=False), on the model's device."""
        if not self.cfg.rope:
            return None
        dev = self.lvl_embed.weight.device
        if self._rope is None or self._rope[0][0].device != dev:
            d, c = HEAD_DIM, self.cfg
            self._rope = [tuple(t.to(dev) for t in axial_rope(pn, d, c.rope_theta, c.rope_size))
                          for pn in self.patch_nums]
        return self._rope[k]

    # --------------------------------------------------------------------------------- inference
    def crop_cond(self, rows: int) -> torch.Tensor | None:
        """The pipeline's crop condition [512, 512, 0, 0] -> crop_proj(Fourier features) (rows, D), or None."""
        if not self.cfg.use_crop_cond:
            return None
        w = self.crop_embed.weight
        x = torch.tensor([TRAIN_IMAGE_SIZE, TRAIN_IMAGE_SIZE, 0, 0], device=w.device)  # (4,)
        emb = fourier(x, w).reshape(1, -1)  # (1, 4 * D/4 = D)
        emb = self.crop_proj(emb.to(self.crop_proj.bias.dtype))  # (1, D)
        return emb.expand(rows, -1)

    def context(self, text: torch.Tensor, attn_bias: torch.Tensor, pooled: torch.Tensor) -> Context:
        """text (R, T, Ct), attn_bias (R, T) 0 / -inf, pooled (R, 1280) -> the call's Context: text keys and
        values per block (upstream caches them at the first scale), AdaLN modulations per block and the head's."""
        dt = self.word_embed.bias.dtype
        text, pooled = text.to(dt), pooled.to(dt)
        bias = attn_bias.to(dt)[:, None, None, :]  # (R, 1, 1, T)
        cond = self.text_pooler(pooled)  # (R, D)
        crop = self.crop_cond(cond.shape[0])
        kvs = [(*b.cross_attn.text_kv(b.attention_y_norm(text)), bias) for b in self.blocks]
        mods = [b.modulation(cond, crop) for b in self.blocks]
        return Context(kvs, mods, self.head_nm.modulation(cond), cond)

    def keep_rows(self, ctx: Context, B: int) -> Context:
        """CFG switched off: the first B rows of everything (the text, the modulations, the KV caches)."""
        for b in self.blocks:
            c = b.attn.cache
            if c.n:
                c.k, c.v = c.k[:B], c.v[:B]
        return Context([tuple(t[:B] for t in kv) for kv in ctx.text], [tuple(t[:B] for t in m) for m in ctx.mods],
                       tuple(t[:B] for t in ctx.head_mod), ctx.cond[:B])

    def lvl_pos(self, k: int) -> torch.Tensor:
        """Level (+ absolute position, rope=False) embedding of scale k: (C,) or (1, pn_k**2, C)."""
        lvl = self.lvl_embed.weight[k]
        if self.cfg.rope:
            return lvl
        b = self.begins[k]
        return lvl + self.pos_1LC[:, b: b + self.patch_nums[k] ** 2]

    def first_input(self, ctx: Context) -> torch.Tensor:
        """Scale 0's input: cond_BD + pos_start + level 0 -> (R, first_l, C)."""
        return (ctx.cond[:, None] + self.pos_start) + self.lvl_pos(0)

    def next_input(self, next_map: torch.Tensor, k: int) -> torch.Tensor:
        """next_map (B, Cvae, pn_k, pn_k), the VAE's area-downsampled f_hat -> scale k's input (2B, pn_k**2, C),
        the same rows for both CFG halves (the caller keeps the first B once CFG is off)."""
        B, Cv = next_map.shape[:2]
        x = next_map.reshape(B, Cv, -1).transpose(1, 2).to(self.word_embed.weight.dtype)  # (B, l, Cvae)
        return (self.word_embed(x) + self.lvl_pos(k)).repeat(2, 1, 1)

    def forward_scale(self, x: torch.Tensor, ctx: Context, k: int) -> torch.Tensor:
        """Run scale k: x (R, l, C) -> raw logits (R, l, V) float32. Non-AR: the scale attends to itself only;
        AR: this scale's keys/values join the cache and the queries attend to every scale <= k."""
        rope = self.rope(k)
        cached = self.cfg.use_ar
        for blk, mod, text in zip(self.blocks, ctx.mods, ctx.text):
            x = blk(x, mod, text, rope, cached, self.L)
        return self.head(self.head_nm(x, ctx.head_mod)).float()

    @torch.no_grad()
    def init_random(self, seed: int | None = 0):
        """Random weights with O(1) effect (tiny test models; real use loads a checkpoint): Linear weights
        N(0, 1/fan_in), small biases, norm weights near 1, embeddings and crop scales N(0, 0.5^2),
        crop_embed N(0, 1) as upstream's constructor draws it."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None

        def rn(shape, std):
            return torch.randn(shape, generator=g) * std

        for name, p in self.named_parameters():
            if name == "crop_embed.weight":
                p.copy_(rn(p.shape, 1.0))
            elif name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("y_norm.weight"):
                p.copy_(1 + rn(p.shape, 0.2))
            elif name in ("pos_start", "pos_1LC", "lvl_embed.weight") or name.endswith("crop_cond_scales"):
                p.copy_(rn(p.shape, 0.5))
            elif p.ndim == 1:
                p.copy_(rn(p.shape, 0.02))
            else:
                p.copy_(rn(p.shape, 1.0 / math.sqrt(p.shape[-1])))
        return self


def fields_from_state_dict(sd: dict) -> dict:
    """Architecture fields readable off a Switti state dict (to check config.json against the file)."""
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}
    return dict(
        depth=1 + max(blocks) if blocks else 0,
        width=sd["word_embed.weight"].shape[0],
        num_scales=sd["lvl_embed.weight"].shape[0],
        rope="pos_1LC" not in sd,
        use_swiglu_ffn="blocks.0.ffn.gate_proj.weight" in sd,
        use_crop_cond="crop_proj.weight" in sd,
    )

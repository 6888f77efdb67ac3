"""The Infinity transformer (Han et al. 2024, FoundationVision/Infinity), inference only.

A clean re-implementation whose module and parameter names equal the official ones, so that the
released `infinity_2b_reg.pth` (a flat state dict) and the 8B safetensors shards load with
`load_state_dict(strict=True)` once the all-zero `zero_k_bias` buffers (`IGNORED_KEYS_INFINITY`) are
dropped.

Notation: B images, bs = 2B rows when CFG is on (conditional rows [0, B), unconditional [B, 2B)) else
B, C width, H heads (head dim 128 in the released models), Ct5 text channels (2048, flan-t5-xl),
d bits per token (32 for 2B; 4*14 = 56 for 8B's spatially patchified tokens), V = 2d logits per
token (one 2-way softmax per bit), K scales (h_k, w_k), L the tokens of one scale.

What differs from a plain VAR: text conditioning (an attentive pool of the T5 tokens gives the
"sos"/AdaLN condition, every block cross-attends to the projected T5 tokens), cosine self-attention
with a learned per-head scale, 2-D RoPE normalised to the 1M grid, a level embedding added once
before the first block, shared AdaLN (one Linear for all blocks plus a learned per-block offset) and
a bitwise head.

Inference protocol (driven by family.InfinityBackend through the generic loop):

    model.reset_cache()
    text = model.prepare_text(packed, lens, official)  # packed (N, Ct5) T5 features of all bs rows
    x = model.first_input(text)                    # (bs, 1, C)              input of scale 0
    for k, (h, w) in enumerate(schedule):
        logits = model.forward_scale(x, text, k, rope_k)   # (bs, h*w, 2d) float32; appends to the KV caches
        ... CFG, sampling, bits -> codes -> running sum -> next map (B, d, h', w') ...
        x = model.next_input(next_map, bs, official)  # (bs, h'*w', C)       input of scale k+1

Precision (mirrors the official inference path): the residual stream, every norm, the AdaLN
modulations, the text modules and the head run in float32; only the blocks' linear layers and
attention use the blocks' dtype (`model.blocks_to(torch.bfloat16)` as upstream's
`block.bfloat16()`; on the CPU `model.prepack_cpu()` then gives oneDNN every Linear's weight prepacked).
Cross-attention (the text pool and every block) rounds q, k, v and its output to bfloat16 even in a
float32 run, as upstream's flash-attn call does: without it, bits flip.

Batch invariance (rng="per-image" promises that an image does not depend on the rest of its batch):
the bf16 rounding turns any 1e-7 difference upstream of it into a 4e-3 one (and then into flipped
bits), so on the CPU an image's numbers are made bit-identical whatever its batch, by construction:
- every Linear computes through oneDNN's prepacked matmul (`prepack_cpu`), whose rows do not depend
  on how many rows there are (MKL's sgemm behind F.linear picks kernels by the row count);
- attention to the text runs per group of rows of one text length, unpadded and unmasked (a masked
  softmax over a longer padding sums in another order), see `text_attention`;
- the T5 encoder runs prompt by prompt (text.py); the VAE decodes image by image (the family).
Self-attention, norms and element-wise ops are already row by row. On GPUs this is not guaranteed.

Official arithmetic (rng="batch" promises upstream's numbers for the same batch): `official=True`
(`prepare_text(..., official=True)`, carried by the TextState to every scale) computes every Linear as
upstream's nn.Linear does, F.linear on the plain weight (MKL on the CPU; `onednn.linear(official=True)`), and the
family encodes the prompts with T5 in one batch padded to 512 tokens, as upstream's `encode_prompt`, and
keeps the running sum of codes in upstream's memory layout (family.InfinityBackend).
Attention to the text is the same in both modes: upstream's flash-attn varlen kernel attends each
row to exactly its own packed tokens (no padding, no mask), and `text_attention` does that too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError
from ..onednn import Linear, linear, prepack_linears

# The K part of every qkv/kv bias is an all-zero buffer upstream (persistent, so it is in the files):
# built at run time instead. The training-only buffers upstream's `load_state_dict` drops when a file
# carries them (the released files do not) are dropped too.
IGNORED_KEYS_INFINITY: tuple[str, ...] = ("*zero_k_bias", "lvl_1L", "attn_bias_for_masking", "Infinity_visible_kvlen",
                                          "Infinity_invisible_qlen")

MAX_SCALE_MUL = math.log(100.0)  # clamp of the learned log attention scale (official: ln 100)
N_LEVELS = 15  # rows of lvl_embed (upstream's constant)
ROPE_BASE = 10000.0

# Constructor arguments of the released models that this implementation fixes (official name -> value).
FIXED_ARCH = {
    "rms_norm": False, "shared_aln": True, "head_aln": True, "cos_attn": True, "swiglu": False, "nm0": False,
    "head_depth": 1, "use_bit_label": 1, "rope2d_each_sa_layer": 1, "rope2d_normalized_by_hw": 2,
    "add_lvl_embeding_only_first_block": 1, "cross_attn_layer_scale": -1.0, "customized_flash_attn": False,
    "use_flex_attn": False,
}


@dataclass
class InfinityConfig:
    """Architecture, under the official constructor names (a goldens `model.json` / config `model:`)."""

    depth: int = 32
    embed_dim: int = 2048
    num_heads: int = 16
    mlp_ratio: float = 4.0
    text_channels: int = 2048  # Ct5
    text_maxlen: int = 512
    block_chunks: int = 8
    norm_eps: float = 1e-6
    codebook_dim: int = 32  # bits of the VAE's latent (2B: 32, 8B: 14)
    apply_spatial_patchify: int = 0  # 8B: 2x2 pixel-unshuffled latents, d = 4 * codebook_dim

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.block_chunks < 1 or self.depth % self.block_chunks:
            raise ConfigError(f"depth {self.depth} is not a multiple of block_chunks {self.block_chunks}")
        if self.text_channels % self.pool_head_dim_t5:
            raise ConfigError(f"text_channels {self.text_channels} must be a multiple of {self.pool_head_dim_t5}")

    @classmethod
    def from_dict(cls, d: dict) -> "InfinityConfig":
        """Build from a dict with the official names; `vae_type` stands for codebook_dim. Settings this
        implementation does not support (see FIXED_ARCH) are a ConfigError; other keys are ignored."""
        for k, want in FIXED_ARCH.items():
            if k in d and d[k] is not None and type(want)(d[k]) != want:
                raise ConfigError(f"{k}={d[k]!r} is not supported (the released models use {want!r})")
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "codebook_dim" not in kw and "vae_type" in d:
            kw["codebook_dim"] = d["vae_type"]
        return cls(**kw)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def d(self) -> int:
        """Bits per transformer token (the word_embed input; the head predicts 2 logits per bit)."""
        return self.codebook_dim * (4 if self.apply_spatial_patchify else 1)

    @property
    def ffn_hidden(self) -> int:
        return round(self.embed_dim * self.mlp_ratio / 256) * 256

    @property
    def pool_head_dim_t5(self) -> int:
        """Upstream's TextAttentivePool: Ct5 // 128 heads (64 when C > 4096)."""
        return 128 if self.embed_dim <= 4096 else 64

    @property
    def pool_heads(self) -> int:
        return self.text_channels // self.pool_head_dim_t5


def fields_from_state_dict(sd: dict) -> dict:
    """Architecture fields readable off an Infinity state dict (to check a config against a file)."""
    blocks = [k.split(".") for k in sd if k.startswith("block_chunks.") and k.endswith(".ada_gss")]
    chunks = 1 + max(int(p[1]) for p in blocks)
    per_chunk = 1 + max(int(p[3]) for p in blocks)
    C = sd["pos_start"].shape[-1]
    return dict(
        depth=len(blocks), block_chunks=chunks, embed_dim=C,
        num_heads=sd["block_chunks.0.module.0.sa.scale_mul_1H11"].shape[1],
        d=sd["word_embed.weight"].shape[1], V=sd["head.weight"].shape[0],
        text_channels=sd["text_norm.weight"].shape[0], text_maxlen=sd["cfg_uncond"].shape[0],
        ffn_hidden=sd["block_chunks.0.module.0.ffn.fc1.weight"].shape[0], per_chunk=per_chunk,
    )


def upstream_cfg_uncond(rows: int, Ct5: int) -> torch.Tensor:
    """The null text upstream's constructor gives `cfg_uncond` (rows, Ct5) float32, before any checkpoint
    loads: a truncated normal (std 1.2, cut at +-2) drawn on the CPU from a generator seeded with 0,
    divided by sqrt(Ct5). Upstream's `load_state_dict` pads a shorter checkpoint's cfg_uncond with these
    rows, so ssgen pads with the same values (deterministic, whatever the machine)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    return nn.init.trunc_normal_(torch.empty(rows, Ct5), std=1.2, generator=g) / Ct5**0.5


# ------------------------------------------------------------------------------------------------
# 2-D RoPE
# ------------------------------------------------------------------------------------------------


def rope_2d(h: int, w: int, full_hw: tuple[int, int], head_dim: int, device=None) -> tuple[torch.Tensor, ...]:
    """cos, sin (h*w, head_dim/2) float32 of the rotation pairs of scale (h, w).

    Positions are normalised to the last scale of the '1M' schedule of the same aspect template,
    `full_hw` (64 x 64 for 1:1), whatever the generated resolution: row i of an h-row scale sits at
    round(i * H/h). The first head_dim/4 pairs rotate with the row, the next head_dim/4 with the column;
    frequencies 1/10000^(2j/(head_dim/2)). (Upstream slices one concatenated cache at the scale's start
    offset; every schedule is a prefix of its template's 1M schedule, so that slice is exactly this.)
    """
    half = head_dim // 2
    inv_freq = 1.0 / (ROPE_BASE ** (torch.arange(0, half, 2, dtype=torch.int64).float() / half))  # (half/2,)
    H, W = full_hw
    rows = (torch.arange(h) * (H / h)).round().int().float()  # (h,) float32 math, as upstream
    cols = (torch.arange(w) * (W / w)).round().int().float()  # (w,)
    fr = torch.outer(rows, inv_freq)[:, None, :].expand(h, w, -1)  # (h, w, half/2)
    fc = torch.outer(cols, inv_freq)[None, :, :].expand(h, w, -1)  # (h, w, half/2)
    f = torch.cat((fr, fc), dim=-1).reshape(h * w, half)  # (h*w, half)
    return f.cos().to(device), f.sin().to(device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (2j, 2j+1) of x (bs, H, L, hd) by the angles of cos/sin (L, hd/2)."""
    x = x.unflatten(-1, (-1, 2))  # (bs, H, L, hd/2, 2)
    x0, x1 = x[..., 0], x[..., 1]
    out = torch.stack((cos * x0 - sin * x1, sin * x0 + cos * x1), dim=-1)  # (bs, H, L, hd/2, 2)
    return out.flatten(-2)  # (bs, H, L, hd)


# ------------------------------------------------------------------------------------------------
# linears: batch-invariant (oneDNN-prepacked) or as upstream (F.linear)
# ------------------------------------------------------------------------------------------------


def lin(m: nn.Linear, x: torch.Tensor, bias: torch.Tensor | None = None, official: bool = False) -> torch.Tensor:
    """m(x) (optionally with another bias): as upstream computes it when `official` (rng="batch"),
    else from the prepacked weight, whose rows do not depend on the batch (rng="per-image")."""
    return linear(m, x, bias, official=official)


# ------------------------------------------------------------------------------------------------
# attention
# ------------------------------------------------------------------------------------------------


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v: q (bs, H, l, d), k/v (bs, H, n, d).

    SDPA, except for bf16/fp16 on the CPU, where two low-precision matmuls around a float32 softmax
    are 2-3x faster than PyTorch's fused CPU kernel for the same model-level accuracy. Either way each
    (row, head) is computed on its own: the result does not depend on bs.
    """
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        s = torch.matmul(q, k.transpose(-2, -1)).float().mul_(scale)  # (bs, H, l, n)
        return torch.matmul(s.softmax(-1).to(v.dtype), v)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def bf16_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Upstream's cross-attention numerics: q, k, v in bfloat16, the output rounded to bfloat16.

    Upstream casts float32 q/kv to bf16 for flash-attn's varlen kernel even in float32 runs; here a
    float32 model computes in float32 on the bf16-rounded values and rounds the result (what the
    goldens were made with); a bf16/fp16 model simply runs in its dtype. Returns the input dtype.
    """
    if q.dtype != torch.float32:
        return attention(q, k.to(q.dtype), v.to(q.dtype), scale)
    bf = torch.bfloat16
    o = attention(q.to(bf).float(), k.to(bf).float(), v.to(bf).float(), scale)
    return o.to(bf).float()


def text_attention(q: torch.Tensor, kv: list[tuple[torch.Tensor, torch.Tensor]], rows: list[torch.Tensor],
                   scale: float) -> torch.Tensor:
    """Attention of q (bs, H, l, hd) to the text, group by group: kv[g] = k, v (rows_g, H, n_g, hd) of
    the rows `rows[g]` (int64 indices into bs), which all have n_g text tokens -> (bs, H, l, hd).

    As upstream's varlen kernel, every row sees exactly its own tokens, with no padding and no mask:
    a row's numbers then do not depend on the lengths of the other prompts in the batch (a masked
    softmax over a longer padding sums in another order, which the bf16 rounding amplifies).
    """
    if len(rows) == 1:  # one text length: the groups' rows are all rows, in order
        return bf16_attention(q, *kv[0], scale)
    out = torch.empty_like(q)
    for idx, (k, v) in zip(rows, kv):
        out[idx] = bf16_attention(q[idx], k, v, scale)
    return out


class SelfAttention(nn.Module):
    """Cosine self-attention with a learned per-head scale, 2-D RoPE and a KV cache.

    Parameters as upstream: mat_qkv (no bias of its own), q_bias, v_bias (the K bias is zero),
    scale_mul_1H11, proj.
    """

    def __init__(self, C: int, H: int):
        super().__init__()
        self.H, self.hd = H, C // H
        self.mat_qkv = Linear(C, 3 * C, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(C))
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, H, 1, 1), math.log(4.0)))
        self.proj = Linear(C, C)
        self.k_cache: torch.Tensor | None = None
        self.v_cache: torch.Tensor | None = None

    def reset_cache(self):
        self.k_cache = self.v_cache = None

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: bool = True,
                official: bool = False) -> torch.Tensor:
        bs, L, C = x.shape  # (bs, L, C) in the blocks' dtype
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))  # (3C,)
        qkv = lin(self.mat_qkv, x, bias, official).view(bs, L, 3, self.H, self.hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (bs, H, L, hd)
        # cosine attention in float32: unit q, k; q scaled by the learned temperature; then RoPE
        scale_mul = self.scale_mul_1H11.float().clamp_max(MAX_SCALE_MUL).exp()  # (1, H, 1, 1)
        q = F.normalize(q.float(), dim=-1, eps=1e-12).mul(scale_mul)
        k = F.normalize(k.float(), dim=-1, eps=1e-12)
        q, k = apply_rope(q, *rope).to(x.dtype), apply_rope(k, *rope).to(x.dtype)
        if self.k_cache is not None:  # attend to every earlier scale and this one (no mask)
            k = torch.cat((self.k_cache, k), dim=2)  # (bs, H, n, hd)
            v = torch.cat((self.v_cache, v), dim=2)
        if cache:
            self.k_cache, self.v_cache = k, v
        out = attention(q, k, v, 1.0)  # (bs, H, L, hd)
        return lin(self.proj, out.transpose(1, 2).reshape(bs, L, C), official=official)


class CrossAttention(nn.Module):
    """Block cross-attention to the projected text tokens: q from x, k/v from the text (no cos attn)."""

    def __init__(self, C: int, H: int):
        super().__init__()
        self.H, self.hd = H, C // H
        self.mat_q = Linear(C, C)
        self.mat_kv = Linear(C, 2 * C, bias=False)
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.proj = Linear(C, C)

    def text_kv(self, text: torch.Tensor, rows: TextRows,
                official: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Packed text tokens (N, C) float32 -> per length group k, v (rows_g, H, n_g, hd)."""
        bias = torch.cat((torch.zeros_like(self.v_bias), self.v_bias))
        kv = lin(self.mat_kv, text.to(bias.dtype), bias, official)  # (N, 2C)
        return [split_kv(g, self.H) for g in rows.split(kv)]

    def forward(self, x: torch.Tensor, kv: list, rows: TextRows, official: bool = False) -> torch.Tensor:
        bs, L, C = x.shape
        q = lin(self.mat_q, x, official=official).view(bs, L, self.H, self.hd).transpose(1, 2)  # (bs, H, L, hd)
        out = text_attention(q, kv, rows.index, 1 / math.sqrt(self.hd))  # (bs, H, L, hd)
        return lin(self.proj, out.transpose(1, 2).reshape(bs, L, C), official=official)


class TextPoolAttention(nn.Module):
    """One learned query per head attending over a prompt's T5 tokens (upstream: for_attn_pool)."""

    def __init__(self, Ct5: int, C: int, H: int):
        super().__init__()
        self.H, self.hd = H, C // H
        self.mat_q = nn.Parameter(torch.zeros(1, H, C // H))
        self.mat_kv = Linear(Ct5, 2 * C, bias=False)
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.proj = Linear(C, C)

    def forward(self, text: torch.Tensor, rows: TextRows, official: bool = False) -> torch.Tensor:
        """Packed normalised T5 tokens (N, Ct5) -> pooled condition (bs, C)."""
        bs, C = len(rows.lens), self.H * self.hd
        bias = torch.cat((torch.zeros_like(self.v_bias), self.v_bias))  # (2C,)
        kv = lin(self.mat_kv, text, bias, official)  # (N, 2C)
        q = self.mat_q.expand(bs, -1, -1).unsqueeze(2).to(kv.dtype)  # (bs, H, 1, hd)
        kv = [split_kv(g, self.H) for g in rows.split(kv)]
        out = text_attention(q, kv, rows.index, 1 / math.sqrt(self.hd))  # (bs, H, 1, hd)
        return lin(self.proj, out.transpose(1, 2).reshape(bs, C), official=official)  # (bs, C)


class TextAttentivePool(nn.Module):
    def __init__(self, Ct5: int, C: int, H: int):
        super().__init__()
        self.ca = TextPoolAttention(Ct5, C, H)

    def forward(self, text: torch.Tensor, rows: TextRows, official: bool = False) -> torch.Tensor:
        return self.ca(text, rows, official)


@dataclass
class TextRows:
    """Where the text tokens of the bs rows lie: `lens` per row (packed one after the other), and the
    rows grouped by length, in order of first appearance (attention to the text runs per group,
    unpadded): `groups[g]` row indices, `index[g]` the same as an int64 tensor."""

    lens: list[int]
    groups: list[list[int]]
    index: list[torch.Tensor]

    @classmethod
    def of(cls, lens: list[int], device=None) -> "TextRows":
        by_len: dict[int, list[int]] = {}
        for i, n in enumerate(lens):
            by_len.setdefault(int(n), []).append(i)
        groups = list(by_len.values())
        return cls([int(n) for n in lens], groups, [torch.tensor(g, device=device) for g in groups])

    def split(self, packed: torch.Tensor) -> list[torch.Tensor]:
        """Packed (sum(lens), X) -> per group (rows_g, n_g, X)."""
        seqs = packed.split(self.lens)
        return [torch.stack([seqs[i] for i in g]) for g in self.groups]


def split_kv(kv: torch.Tensor, H: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, n, 2C) -> k, v (r, H, n, C/H)."""
    k, v = kv.unflatten(-1, (2, H, -1)).permute(2, 0, 3, 1, 4).unbind(0)
    return k, v


# ------------------------------------------------------------------------------------------------
# blocks
# ------------------------------------------------------------------------------------------------


class FFN(nn.Module):
    def __init__(self, C: int, hidden: int):
        super().__init__()
        self.fc1 = Linear(C, hidden)
        self.fc2 = Linear(hidden, C)

    def forward(self, x: torch.Tensor, official: bool = False) -> torch.Tensor:
        h = lin(self.fc1, x, official=official)  # (bs, L, hidden)
        h = torch.ops.aten.gelu_(h, approximate="tanh")  # in place: no second hidden-size tensor (VAR's FFN)
        return lin(self.fc2, h, official=official)  # (bs, L, C)


class CrossAttnBlock(nn.Module):
    """Pre-norm block: AdaLN self-attention, LayerNorm cross-attention (gate 1), AdaLN FFN.

    Modulation = shared AdaLN (computed once from the condition) + this block's `ada_gss`, unbound in
    upstream's order gamma1, gamma2, scale1, scale2, shift1, shift2.
    """

    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        C = cfg.embed_dim
        self.C, self.eps = C, cfg.norm_eps
        self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, C))
        self.sa = SelfAttention(C, cfg.num_heads)
        self.ca = CrossAttention(C, cfg.num_heads)
        self.ffn = FFN(C, cfg.ffn_hidden)
        self.ca_norm = nn.LayerNorm(C, eps=cfg.norm_eps)

    def modulation(self, gss: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """gss (bs, 1, 6, C) float32 from shared_ada_lin -> g1, g2, 1 + s1, 1 + s2, b1, b2, each (bs, 1, C)."""
        g1, g2, s1, s2, b1, b2 = (self.ada_gss.float() + gss).unbind(2)
        return g1, g2, s1.add(1), s2.add(1), b1, b2

    def forward(self, x: torch.Tensor, mod: tuple, text_kv: list, rows: TextRows, rope: tuple,
                cache: bool = True, official: bool = False) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = mod  # each (bs, 1, C) float32
        dt = self.ca_norm.weight.dtype
        C = self.C
        h = F.layer_norm(x, (C,), eps=self.eps).mul(s1).add_(b1)  # (bs, L, C) float32
        x = x + self.sa(h.to(dt), rope, cache, official).float().mul_(g1)
        h = F.layer_norm(x, (C,), self.ca_norm.weight.float(), self.ca_norm.bias.float(), self.eps)
        x = x + self.ca(h.to(dt), text_kv, rows, official).float()
        h = F.layer_norm(x, (C,), eps=self.eps).mul(s2).add_(b2)
        return x + self.ffn(h.to(dt), official).float().mul(g2)


class BlockChunk(nn.Module):
    """Upstream's MultipleLayers: blocks are stored as block_chunks.{i // n}.module.{i % n}."""

    def __init__(self, blocks: list[CrossAttnBlock]):
        super().__init__()
        self.module = nn.ModuleList(blocks)


class AdaLNBeforeHead(nn.Module):
    def __init__(self, C: int, eps: float):
        super().__init__()
        self.C, self.eps = C, eps
        self.ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 2 * C))

    def modulation(self, cond: torch.Tensor, official: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """cond (bs, C) -> 1 + scale, shift, each (bs, 1, C)."""
        act, proj = self.ada_lin
        scale, shift = lin(proj, act(cond), official=official).view(-1, 1, 2, self.C).unbind(2)  # order: scale, shift
        return scale.add(1), shift

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        s, b = mod
        return F.layer_norm(x, (self.C,), eps=self.eps).mul(s).add_(b)


@dataclass
class TextState:
    """Everything derived from the text of one generation call (computed once, used at every scale)."""

    rows: TextRows  # text tokens of each of the bs rows, rows grouped by length
    cond: torch.Tensor  # (bs, C) float32 pooled condition (the "sos")
    kv: list[list[tuple[torch.Tensor, torch.Tensor]]]  # per block, per length group: k, v (rows_g, H, n_g, hd)
    mods: list[tuple[torch.Tensor, ...]]  # per block: AdaLN modulation
    head_mod: tuple[torch.Tensor, torch.Tensor]
    official: bool = False  # every scale computes its linears as upstream does (rng="batch"), see `lin`


class Infinity(nn.Module):
    """Text-conditional next-scale bitwise transformer (state-dict compatible with upstream)."""

    def __init__(self, cfg: InfinityConfig):
        super().__init__()
        self.cfg = cfg
        C, Ct5, d = cfg.embed_dim, cfg.text_channels, cfg.d
        self.cfg_uncond = nn.Parameter(torch.zeros(cfg.text_maxlen, Ct5))  # learned null text (Lmax, Ct5)
        self.pos_start = nn.Parameter(torch.zeros(1, 1, C))
        self.text_norm = RMSNorm(Ct5, cfg.norm_eps)
        self.text_proj_for_sos = TextAttentivePool(Ct5, C, cfg.pool_heads)
        self.text_proj_for_ca = nn.Sequential(Linear(Ct5, C), nn.GELU(approximate="tanh"), Linear(C, C))
        self.lvl_embed = nn.Embedding(N_LEVELS, C)
        self.word_embed = Linear(d, C)  # bits-as-codes of the running latent -> token
        self.shared_ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 6 * C))
        n = cfg.depth // cfg.block_chunks
        blocks = [CrossAttnBlock(cfg) for _ in range(cfg.depth)]
        self.block_chunks = nn.ModuleList(BlockChunk(blocks[i:i + n]) for i in range(0, cfg.depth, n))
        self.head_nm = AdaLNBeforeHead(C, cfg.norm_eps)
        self.head = Linear(C, 2 * d)

    @property
    def blocks(self) -> list[CrossAttnBlock]:
        return [b for chunk in self.block_chunks for b in chunk.module]

    @staticmethod
    def in_blocks(name: str) -> bool:
        """Whether a state-dict entry belongs to the blocks: the tensors that run in the run dtype (blocks_to)."""
        return name.startswith("block_chunks.")

    def blocks_to(self, dtype: torch.dtype) -> "Infinity":
        """Cast only the blocks (upstream runs `block.bfloat16()`; everything else stays float32). Loading
        applies the same policy tensor by tensor (`in_blocks`), so a loaded model never needs this."""
        for chunk in self.block_chunks:
            chunk.to(dtype)
        return self

    def reset_cache(self, release: bool = True):
        """Forget the KV caches. They are always released (each scale's cache is a new torch.cat result);
        `release` is there to be called as VAR's and HART's."""
        for b in self.blocks:
            b.sa.reset_cache()

    @torch.no_grad()
    def prepack_cpu(self) -> bool:
        """On the CPU: every Linear (float32, and the bf16 blocks) computes from a oneDNN-prepacked weight
        (ssgen/backends/onednn.py: faster, and a row's numbers do not depend on its batch, which the
        cross-attention's bf16 rounding would turn into flipped bits). float32 results differ from F.linear's in
        the accumulation order only (~1e-6 relative), which is enough to flip bits: rng="batch" computes from
        the plain weight instead (`onednn.linear(official=True)`, rebuilt from the packed copy). Returns whether
        all are packed."""
        return prepack_linears(self)

    # --------------------------------------------------------------------------------- inference
    def uncond_text(self, lens: list[int]) -> torch.Tensor:
        """The learned null text of each row: cfg_uncond[:len_i], packed -> (sum(lens), Ct5)."""
        return torch.cat([self.cfg_uncond[:n] for n in lens]).float()

    def prepare_text(self, packed: torch.Tensor, lens: list[int], official: bool = False) -> TextState:
        """Packed T5 features (N, Ct5) of all bs rows (cond rows, then uncond rows) -> TextState.
        `official`: this call's linears compute as upstream's (rng="batch"), here and at every scale."""
        rows = TextRows.of(lens, packed.device)
        kv = self.text_norm(packed.float())  # (N, Ct5)
        cond = self.text_proj_for_sos(kv, rows, official).float()  # (bs, C)
        fc1, act, fc2 = self.text_proj_for_ca
        ca = lin(fc2, act(lin(fc1, kv, official=official)), official=official)  # (N, C)
        silu, ada = self.shared_ada_lin
        gss = lin(ada, silu(cond), official=official).view(-1, 1, 6, self.cfg.embed_dim)  # (bs, 1, 6, C)
        blocks = self.blocks
        return TextState(
            rows=rows, cond=cond, kv=[b.ca.text_kv(ca, rows, official) for b in blocks],
            mods=[b.modulation(gss) for b in blocks], head_mod=self.head_nm.modulation(cond, official),
            official=official,
        )

    def first_input(self, text: TextState) -> torch.Tensor:
        """Input of scale 0: the pooled condition + pos_start -> (bs, 1, C)."""
        return text.cond[:, None] + self.pos_start.float()

    def next_input(self, next_map: torch.Tensor, bs: int, official: bool = False) -> torch.Tensor:
        """next_map (B, d, h, w), the running sum resized to scale k's grid -> (bs, h*w, C) float32,
        the same rows for the conditional and unconditional halves (`official`: as upstream's nn.Linear)."""
        B, d = next_map.shape[:2]
        x = next_map.reshape(B, d, -1).transpose(1, 2)  # (B, h*w, d)
        x = lin(self.word_embed, x.to(self.word_embed.weight.dtype), official=official).float()  # (B, h*w, C)
        return x.repeat(bs // B, 1, 1)  # (bs, h*w, C)

    def forward_scale(self, x: torch.Tensor, text: TextState, k: int, rope: tuple, cache: bool = True) -> torch.Tensor:
        """Run scale k: x (bs, L, C) -> raw logits (bs, L, 2d) float32; appends to the KV caches
        (unless `cache=False`, for the last scale). The level embedding is added once, before the first block."""
        x = x.float() + self.lvl_embed.weight[k].float()
        for blk, mod, kv in zip(self.blocks, text.mods, text.kv):
            x = blk(x, mod, kv, text.rows, rope, cache, text.official)
        h = self.head_nm(x, text.head_mod)
        return lin(self.head, h.to(self.head.weight.dtype), official=text.official).float()  # (bs, L, 2d)

    @torch.no_grad()
    def init_random(self, seed: int = 0) -> "Infinity":
        """Random weights with O(1) effect (benchmarks, tiny test models); real use loads a checkpoint.
        Fills every parameter in place in its own dtype (works after `to_empty`)."""
        g = torch.Generator().manual_seed(seed)

        def fill(p: torch.Tensor, std: float, mean: float = 0.0):
            p.copy_(torch.randn(p.shape, generator=g).mul_(std).add_(mean))

        for name, p in self.named_parameters():
            if name.endswith("scale_mul_1H11"):
                fill(p, 0.1, math.log(4.0))
            elif name.endswith("norm.weight") or name.endswith("ca_norm.weight"):
                fill(p, 0.1, 1.0)
            elif name.endswith("bias"):
                fill(p, 0.02)
            elif name.endswith("ada_gss"):
                fill(p, 0.3)
            elif name in ("pos_start", "lvl_embed.weight"):
                fill(p, 0.5)
            elif name in ("cfg_uncond", "word_embed.weight") or name.endswith("mat_q"):
                fill(p, 1.0)
            else:  # Linear weights (out, in)
                fill(p, 1.0 / math.sqrt(p.shape[-1]))
        return self


class RMSNorm(nn.Module):
    """Upstream's FastRMSNorm (text_norm): x * rsqrt(mean(x^2) + eps) * weight, in float32."""

    def __init__(self, C: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(self.eps))) * self.weight

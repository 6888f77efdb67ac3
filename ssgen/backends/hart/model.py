"""The HART transformer (Tang et al. 2024, mit-han-lab/hart), inference only, in plain PyTorch.

A clean re-implementation whose module and parameter names equal the official `HARTForT2I` ones, so
that `llm/ema_model.bin` (and `llm/pytorch_model.bin`) load with `load_state_dict(strict=True)` once
the training-only buffers in `IGNORED_KEYS_HART` are dropped. No CUDA extension: the fused RMSNorm of
upstream is a few lines of PyTorch here, and the fused RoPE kernels are not on upstream's inference
path either.

Architecture as upstream's config allows it (`HARTConfig.from_files` reads `llm/config.json`):
- text conditioning = a prefix of T (`context_token`, 300) projected LLM hidden states
  (`context_embed`, optionally after `context_norm`) **plus** a pooled AdaLN condition;
- `attn_type`: "llama" (RMSNorm with weights, no absolute positions, 1-D RoPE over the text prefix and
  upstream's 2-D RoPE layout over image tokens) or "gpt2" (LayerNorm, absolute position tables, no
  RoPE; upstream's own sampler cannot run this flavour: its gpt2 attention rejects the `m_maskgit`
  argument the block passes, so ssgen implements the evident semantics, untested against upstream);
- `mlp_type`: "llama" (SwiGLU, hidden `int(C*r*2/3 + 255) // 256 * 256`) or "gpt2" (GELU-tanh MLP);
- `attn_l2_norm` (cosine attention with a learned per-head temperature) or scaled dot product
  (scale 0.25/sqrt(head_dim)); q/v biases, zero k bias; no attention mask at inference (the prefix
  attends to itself bidirectionally, padding included; image scales attend to the whole KV cache);
- AdaLN blocks (gamma1, gamma2, scale1, scale2, shift1, shift2) on `sep_aln_pooling_mode` pooling
  ("max" over all T prefix tokens, or "avg" masked mean); the head's AdaLN always takes the max;
  `disable_aln` (no modulation, or with `shared_aln` a `scale_shift_table` + avg pooling);
- a level embedding (`lvl_embed`, or a sinusoidal MLP with `use_timestep_embed`).

Notation: B images, 2B rows (cond rows [0, B), uncond rows [B, 2B)), T prefix tokens, C width,
H heads, hd head dim, V codebook size, Cvae latent channels, K scales (patch_nums), P = patch_nums[-1].

Inference protocol (driven by the generic next-scale loop, see family.py):

    model.reset_cache()
    ctx = model.context(features, mask, position_ids)  # text (B, T, Dt) -> Context with 2B rows
    x = model.first_input(ctx)                          # (2B, T, C)            input of scale 0
    for k in range(K):
        h = model.forward_scale(x, ctx, k)              # (2B, l_k, C) hidden states, appends to KV caches
        logits = model.logits(h[:, -1:] if k == 0 else h, ctx)    # (2B, pn_k**2, V) float32
        ... CFG, sampling, tokenizer update -> next_map (B, Cvae, pn_{k+1}, pn_{k+1}) ...
        x = model.next_input(next_map, k + 1)           # (2B, pn_{k+1}**2, C)
    # last scale: the residual diffusion head (model.diffloss) conditions on h and the sampled codes

Scale 0 has no image token as input: its 1x1 logits come from the last prefix position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError
from ..common import KVCache
from ..onednn import Linear, linear, prepack_linears
from ..var.model import FFN as GeluMLP  # gpt2 MLP: fc2(gelu_tanh(fc1(x))), VAR's FFN
from ..var.model import attention
from .diffusion import DiffLoss

# Training-only entries of the official files (fnmatch patterns over state-dict keys):
#   lvl_1L                    (1, L+T-1) int64  level of every position      -> derived from patch_nums
#   attn_bias_for_masking     (1, 1, L+T-1, L+T-1) fp32 block-causal mask    -> ~380 MB at 1024 px; the
#                             KV cache replaces it. read_state_dict memory-maps the file, so dropping
#                             the key before use means it is never read into memory.
#   blocks.*.attn.zero_k_bias (C,) zeros, the K part of the qkv bias         -> built at run time
IGNORED_KEYS_HART: tuple[str, ...] = ("lvl_1L", "attn_bias_for_masking", "blocks.*.attn.zero_k_bias")

ROPE_THETA = 10000
MAX_SCALE_MUL = torch.log(torch.tensor(100.0)).item()  # clamp of the log attention scale, as upstream (fp32)


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------


@dataclass
class HARTConfig:
    """The architecture: `llm/config.json` (HARTForT2IConfig) + the tokenizer's vocab_size/z_channels."""

    depth: int = 20
    embed_dim: int = 1280
    num_heads: int = 20
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    attn_type: str = "llama"
    mlp_type: str = "llama"
    attn_l2_norm: bool = True
    context_token: int = 300
    context_dim: int = 1536
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 7, 9, 12, 16, 21, 27, 36, 48, 64)
    sep_aln_pooling_mode: str = "max"
    use_context_norm: bool = False
    context_norm_scale: float = 1.0
    shared_aln: bool = False
    disable_aln: bool = False
    use_timestep_embed: bool = False
    use_cross_attn: bool = False
    diff_width: int = 1024
    diff_depth: int = 6
    num_sampling_steps: str = "8"
    sampler: str = "iddpm"
    vocab_size: int = 4096  # from tokenizer/config.json
    latent_channels: int = 32  # tokenizer z_channels
    extra: dict = field(default_factory=dict, repr=False)  # the other config.json fields, kept for reference

    def __post_init__(self):
        self.patch_nums = tuple(int(p) for p in self.patch_nums)
        self.num_sampling_steps = str(self.num_sampling_steps)
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the field and value for anything upstream or ssgen cannot run."""

        def bad(name, value, allowed):
            raise ConfigError(f"llm/config.json: {name}={value!r} is not supported; ssgen supports {allowed}")

        if self.attn_type not in ("llama", "gpt2"):
            bad("attn_type", self.attn_type, "'llama' or 'gpt2' (as upstream)")
        if self.mlp_type not in ("llama", "gpt2"):
            bad("mlp_type", self.mlp_type, "'llama' or 'gpt2' (as upstream)")
        if self.sep_aln_pooling_mode not in ("max", "avg"):
            bad("sep_aln_pooling_mode", self.sep_aln_pooling_mode, "'max' or 'avg' (as upstream)")
        if self.use_cross_attn:
            bad("use_cross_attn", True, "only false (upstream's cross-attention needs xformers and is untrained)")
        if self.use_context_norm and self.attn_type == "gpt2":
            bad("use_context_norm", True, "with attn_type 'llama' only (upstream's LayerNorm rejects it with gpt2)")
        if self.sampler != "iddpm":
            bad("sampler", self.sampler, "'iddpm' (the only sampler upstream implements)")
        if not self.num_sampling_steps.isdigit() or int(self.num_sampling_steps) < 1:
            bad("num_sampling_steps", self.num_sampling_steps, "a positive step count such as \"8\"")
        if self.context_token < 1:
            bad("context_token", self.context_token, "a positive prefix length (HART is text-conditional)")
        if len(self.patch_nums) < 2 or any(p < 1 for p in self.patch_nums):
            bad("patch_nums", list(self.patch_nums), "at least 2 positive scales")
        if self.embed_dim % self.num_heads:
            bad("num_heads", self.num_heads, f"a divisor of embed_dim={self.embed_dim}")
        if self.attn_type == "llama" and (self.embed_dim // self.num_heads) % 4:
            bad("num_heads", self.num_heads, "a head dim divisible by 4 (2-D RoPE)")

    @classmethod
    def from_files(cls, llm: dict, tokenizer: dict) -> "HARTConfig":
        """From the parsed `llm/config.json` and `tokenizer/config.json`; unknown fields are kept in `extra`."""
        names = {f.name for f in fields(cls)} - {"vocab_size", "latent_channels", "extra"}
        kw = {k: v for k, v in llm.items() if k in names}
        extra = {k: v for k, v in llm.items() if k not in names}
        try:
            return cls(**kw, vocab_size=int(tokenizer.get("vocab_size", 4096)),
                       latent_channels=int(tokenizer.get("z_channels", 32)), extra=extra)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"llm/config.json: invalid value ({e})") from None

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        C, r = self.embed_dim, self.mlp_ratio
        return int(C * r * 2 / 3 + 255) // 256 * 256 if self.mlp_type == "llama" else round(C * r)

    @property
    def num_image_tokens(self) -> int:
        return sum(p * p for p in self.patch_nums[1:])  # scale 0 is predicted from the prefix

    @property
    def seq_len(self) -> int:
        return self.context_token + self.num_image_tokens  # = L + T - 1 upstream


# ------------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * weight, statistics in float32 (upstream's fused CUDA rms_norm)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., dim)
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return y.to(x.dtype) * self.weight.to(x.dtype)


def make_norm(cfg: HARTConfig, dim: int, affine: bool) -> nn.Module:
    """llama: RMSNorm, always with a weight (upstream's RMSNorm ignores elementwise_affine=False);
    gpt2: LayerNorm with or without affine parameters."""
    if cfg.attn_type == "llama":
        return RMSNorm(dim, cfg.norm_eps)
    return nn.LayerNorm(dim, eps=cfg.norm_eps, elementwise_affine=affine)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) over the last dim: pairs dim i with dim i + hd/2 (HF convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_1d(pos: torch.Tensor, hd: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Text positions (R, T) -> cos, sin (R, T, hd) float32; angles [p*f, p*f] with f = theta^(-2i/hd)."""
    inv = 1.0 / (ROPE_THETA ** (torch.arange(0, hd, 2, dtype=torch.int64, device=pos.device).float() / hd))
    ang = pos.float()[..., None] * inv  # (R, T, hd/2)
    emb = torch.cat((ang, ang), dim=-1)  # (R, T, hd)
    return emb.cos(), emb.sin()


def rope_2d(pos: torch.Tensor, hd: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image positions (R, l, 2) float (row, col) -> cos, sin (R, l, hd) float32.

    Upstream's layout, kept because the weights were trained with it: hd/4 frequencies
    f = theta^(-4i/hd) per axis and angles [r*f, r*f, c*f, c*f] (each block hd/4 wide), applied with
    the standard `rotate_half` over the full head dim, which rotates a row-angle slot together with a
    column-angle slot (dim i with dim i + hd/2). It looks wrong and it is what the model expects.
    """
    inv = 1.0 / (ROPE_THETA ** (torch.arange(0, hd, 4, dtype=torch.int64, device=pos.device).float() / hd))
    ang = pos.float()[..., None] * inv  # (R, l, 2, hd/4)
    emb = torch.cat((ang, ang), dim=-1).flatten(-2)  # (R, l, 2 * hd/2) = [r f, r f, c f, c f]
    return emb.cos(), emb.sin()


def image_positions(pn: int, P: int, offset: torch.Tensor) -> torch.Tensor:
    """Raster positions of a pn x pn scale on the P x P grid, shifted by each row's last text position.

    offset (R,) int64 -> (R, pn*pn, 2) float32: (i, j) * P / pn + offset, computed as upstream
    (arange / pn * P in float32, then + the integer offset).
    """
    ar = torch.arange(pn, device=offset.device)
    ij = torch.stack(torch.meshgrid(ar, ar, indexing="ij"), dim=-1)  # (pn, pn, 2)
    coords = (ij / pn * P).reshape(1, pn * pn, 2)  # (1, l, 2) float32
    return coords + offset.view(-1, 1, 1)  # (R, l, 2)


class Attention(nn.Module):
    """Multi-head self-attention with q/v biases, optional cosine attention, RoPE and a KV cache.

    Parameter names as upstream: `qkv_proj` (llama) or `mat_qkv` (gpt2), `q_bias`, `v_bias`,
    `scale_mul_1H11` (attn_l2_norm only), `proj`.
    """

    def __init__(self, cfg: HARTConfig):
        super().__init__()
        C = cfg.embed_dim
        self.heads, self.head_dim, self.l2_norm = cfg.num_heads, cfg.head_dim, cfg.attn_l2_norm
        self.qkv_name = "qkv_proj" if cfg.attn_type == "llama" else "mat_qkv"
        self.add_module(self.qkv_name, Linear(C, 3 * C, bias=False))
        self.q_bias = nn.Parameter(torch.zeros(C))
        self.v_bias = nn.Parameter(torch.zeros(C))
        if self.l2_norm:
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, self.heads, 1, 1), math.log(4.0)))
            self.scale = 1.0
        else:
            self.scale = 0.25 / math.sqrt(self.head_dim)
        self.proj = Linear(C, C)
        self.cache = KVCache()

    def reset_cache(self, release: bool = False):
        self.cache.reset(release)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, max_len: int) -> torch.Tensor:
        R, L, C = x.shape  # (2B, l, C)
        H, hd = self.heads, self.head_dim
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))  # (3C,)
        qkv = linear(getattr(self, self.qkv_name), x, bias)  # (2B, l, 3C)
        q, k, v = qkv.view(R, L, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # each (2B, H, l, hd)
        if self.l2_norm:
            scale_mul = self.scale_mul_1H11.clamp_max(MAX_SCALE_MUL).exp()  # (1, H, 1, 1)
            q = F.normalize(q, dim=-1).mul(scale_mul)
            k = F.normalize(k, dim=-1)
        if rope is not None:  # after the L2 normalisation, as upstream
            cos, sin = (t.to(q.dtype).unsqueeze(1) for t in rope)  # (2B, 1, l, hd)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin

        k, v = self.cache.append(k, v, max_len)  # (2B, H, n, hd): the prefix and every scale so far
        out = attention(q, k, v, self.scale)  # (2B, H, l, hd)
        return self.proj(out.transpose(1, 2).reshape(R, L, C))


class SwiGLU(nn.Module):
    """llama MLP: down(silu(gate(x)) * up(x)), no biases."""

    def __init__(self, C: int, hidden: int):
        super().__init__()
        self.gate_proj = Linear(C, hidden, bias=False)
        self.up_proj = Linear(C, hidden, bias=False)
        self.down_proj = Linear(hidden, C, bias=False)

    def forward(self, x):
        g = F.silu(self.gate_proj(x), inplace=True)  # in place: no extra hidden-size tensors (VAR's FFN)
        return self.down_proj(g.mul_(self.up_proj(x)))


def pool_context(cond: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool the prefix (2B, T, C) -> (2B, C): "max" over all T (mask ignored), "avg" masked mean."""
    if mode == "max":
        return cond.max(dim=1).values
    m = mask.unsqueeze(-1).to(cond.dtype)  # (2B, T, 1)
    return (cond * m / mask.sum(1).clamp(min=1).view(-1, 1, 1).to(cond.dtype)).sum(1)


class Block(nn.Module):
    """Pre-norm transformer block with adaptive norm: x += g1*attn(n(x)*(1+s1)+b1); x += g2*ffn(...)."""

    def __init__(self, cfg: HARTConfig):
        super().__init__()
        C = cfg.embed_dim
        self.C, self.cfg = C, cfg
        self.attn = Attention(cfg)
        self.ffn = SwiGLU(C, cfg.mlp_hidden) if cfg.mlp_type == "llama" else GeluMLP(C, cfg.mlp_hidden)
        self.ln_wo_grad = make_norm(cfg, C, affine=False)
        if not cfg.disable_aln:
            self.ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 6 * C))
        elif cfg.shared_aln:
            self.scale_shift_table = nn.Parameter(torch.zeros(6, C))

    def modulation(self, pooled: torch.Tensor, pooled_avg: torch.Tensor):
        """pooled (2B, C) (sep_aln_pooling_mode), pooled_avg (2B, C) -> 6 tensors (2B, 1, C) or None.
        Order gamma1, gamma2, scale1, scale2, shift1, shift2; the scales are returned as 1 + scale."""
        if not self.cfg.disable_aln:
            g1, g2, s1, s2, b1, b2 = self.ada_lin(pooled.unsqueeze(1)).view(-1, 1, 6, self.C).unbind(2)
        elif self.cfg.shared_aln:
            g1, g2, s1, s2, b1, b2 = (self.scale_shift_table[None] + pooled_avg.unsqueeze(1)).chunk(6, dim=1)
        else:
            return None
        return g1, g2, s1.add(1), s2.add(1), b1, b2

    def forward(self, x: torch.Tensor, mod, rope, max_len: int) -> torch.Tensor:  # x (2B, l, C)
        if mod is None:  # disable_aln without a shared table: a plain pre-norm block
            x = x + self.attn(self.ln_wo_grad(x), rope, max_len)
            return x + self.ffn(self.ln_wo_grad(x))
        g1, g2, s1, s2, b1, b2 = mod
        x = x + self.attn(self.ln_wo_grad(x).mul(s1).add_(b1), rope, max_len).mul_(g1)
        return x + self.ffn(self.ln_wo_grad(x).mul(s2).add_(b2)).mul(g2)


class AdaLNBeforeHead(nn.Module):
    """norm(x) * (1 + scale) + shift with (scale, shift) from the max-pooled prefix."""

    def __init__(self, cfg: HARTConfig):
        super().__init__()
        C = cfg.embed_dim
        self.C = C
        self.ln_wo_grad = make_norm(cfg, C, affine=False)
        self.ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 2 * C))

    def modulation(self, cond_max: torch.Tensor):
        scale, shift = self.ada_lin(cond_max.unsqueeze(1)).view(-1, 1, 2, self.C).unbind(2)  # order: scale, shift
        return scale.add(1), shift  # (2B, 1, C) each

    def forward(self, x, mod):
        s, b = mod
        return self.ln_wo_grad(x).mul(s).add_(b)


class LevelMLP(nn.Module):
    """`use_timestep_embed`: the level embedding as an MLP of a sinusoidal embedding of the level."""

    def __init__(self, C: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(Linear(freq_dim, C), nn.SiLU(), Linear(C, C))

    def forward(self, level: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, C)
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=level.device) / half)
        ang = level.float()[:, None] * freqs[None]
        emb = torch.cat((ang.cos(), ang.sin()), dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


@dataclass
class Context:
    """The text condition of one batch, with the CFG rows doubled: cond [0, B), uncond [B, 2B)."""

    cond: torch.Tensor  # (2B, T, C) context_embed(context_norm(features)); uncond rows from zeros
    mask: torch.Tensor  # (2B, T) bool; uncond rows [1, 0, 0, ...]
    position_ids: torch.Tensor  # (2B, T) int64; uncond rows all 0
    mods: list  # per block: the AdaLN modulations (or None)
    head_mod: tuple  # the head's (1 + scale, shift)

    @property
    def last_pos(self) -> torch.Tensor:  # (2B,) the offset of the image positions
        return self.position_ids[:, -1]


# ------------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------------


class HART(nn.Module):
    """Text-to-image next-scale transformer + residual diffusion head (state-dict compatible with upstream)."""

    def __init__(self, cfg: HARTConfig):
        super().__init__()
        self.cfg = cfg
        C, T, K = cfg.embed_dim, cfg.context_token, len(cfg.patch_nums)
        self.patch_nums = cfg.patch_nums
        self.max_len = cfg.seq_len
        # start of every scale in the full sequence [prefix (T), scale 1, ..., scale K-1]
        self.begins = [0]
        cur = T
        for pn in cfg.patch_nums[1:]:
            self.begins.append(cur)
            cur += pn * pn

        self.word_embed = Linear(cfg.latent_channels, C)  # latent -> token
        self.context_embed = Linear(cfg.context_dim, C)  # text features -> prefix tokens
        if cfg.use_context_norm:
            self.context_norm = RMSNorm(cfg.context_dim, cfg.norm_eps)
        if cfg.attn_type == "gpt2":  # absolute positions (upstream's gpt2 flavour)
            self.pos_start = nn.Parameter(torch.zeros(1, T, C))
            self.pos_1LC = nn.Parameter(torch.zeros(1, cfg.seq_len, C))
        self.lvl_embed = LevelMLP(C) if cfg.use_timestep_embed else nn.Embedding(K, C)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.head_nm = AdaLNBeforeHead(cfg)
        self.head = Linear(C, cfg.vocab_size)
        self.decoder_norm = make_norm(cfg, C, affine=True)
        self.diffloss = DiffLoss(cfg.latent_channels, C, cfg.diff_width, cfg.diff_depth, int(cfg.num_sampling_steps))

    # ------------------------------------------------------------------------------------- state
    def reset_cache(self, release: bool = False):
        """Forget the KV caches; call before every new batch (`release=True` also frees the buffers)."""
        for b in self.blocks:
            b.attn.reset_cache(release)

    def prepack_cpu(self) -> bool:
        """On the CPU: the transformer's linears compute from oneDNN-prepacked weights (ssgen/backends/onednn.py;
        the diffusion head's stay plain). The plain weights are released. Returns whether all are packed."""
        return prepack_linears(self)

    def level(self, k: int) -> torch.Tensor:
        """Level embedding of scale k: (1, 1, C)."""
        w = self.head.weight
        if isinstance(self.lvl_embed, nn.Embedding):
            return self.lvl_embed.weight[k].view(1, 1, -1)
        return self.lvl_embed(torch.full((1,), k, device=w.device)).view(1, 1, -1)  # not torch.tensor: no H2D copy

    # --------------------------------------------------------------------------------- inference
    def context(self, features: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor) -> Context:
        """Text features (B, T, Dt) float, mask (B, T) bool, position ids (B, T) -> the CFG-doubled Context.

        The unconditional branch is upstream's: zero features, mask [1, 0, ...], position ids 0.
        """
        B, T, _ = features.shape
        if T != self.cfg.context_token:
            raise ValueError(f"text prefix has {T} tokens but the model expects context_token={self.cfg.context_token}")
        dt = self.context_embed.weight.dtype
        feats = torch.cat((features, torch.zeros_like(features))).to(dt)  # (2B, T, Dt)
        if self.cfg.use_context_norm:
            feats = self.context_norm(feats)
        cond = self.context_embed(feats)  # (2B, T, C)
        umask = torch.zeros_like(mask)
        umask[:, 0] = True
        mask2 = torch.cat((mask, umask))  # (2B, T)
        pos2 = torch.cat((position_ids, torch.zeros_like(position_ids)))  # (2B, T)
        pooled = pool_context(cond, mask2, self.cfg.sep_aln_pooling_mode)  # (2B, C)
        pooled_avg = pool_context(cond, mask2, "avg") if self.cfg.disable_aln else pooled
        mods = [b.modulation(pooled, pooled_avg) for b in self.blocks]
        head_mod = self.head_nm.modulation(cond.max(dim=1).values)
        return Context(cond, mask2, pos2, mods, head_mod)

    def first_input(self, ctx: Context) -> torch.Tensor:
        """Input of scale 0: the prefix tokens + level 0 (+ absolute positions for gpt2) -> (2B, T, C)."""
        x = ctx.cond
        lvl = self.level(0)
        if self.cfg.attn_type == "gpt2":
            return (x + self.pos_start) + (lvl + self.pos_1LC[:, : self.cfg.context_token])
        return x + lvl

    def next_input(self, next_map: torch.Tensor, k: int) -> torch.Tensor:
        """next_map (B, Cvae, pn_k, pn_k), the tokenizer's downsampled f_hat -> input of scale k
        (2B, pn_k**2, C), the same rows for both CFG halves."""
        B, Cv = next_map.shape[:2]
        x = next_map.reshape(B, Cv, -1).transpose(1, 2).to(self.word_embed.weight.dtype)  # (B, l, Cvae)
        lvl = self.level(k)
        if self.cfg.attn_type == "gpt2":
            b = self.begins[k]
            lvl = lvl + self.pos_1LC[:, b: b + x.shape[1]]
        x = self.word_embed(x) + lvl  # (B, l, C)
        return x.repeat(2, 1, 1)  # (2B, l, C)

    def rope(self, ctx: Context, k: int):
        """cos/sin of scale k's inputs (llama only): 1-D over the prefix for k = 0, 2-D after."""
        if self.cfg.attn_type != "llama":
            return None
        hd = self.cfg.head_dim
        if k == 0:
            return rope_1d(ctx.position_ids, hd)
        return rope_2d(image_positions(self.patch_nums[k], self.patch_nums[-1], ctx.last_pos), hd)

    def forward_scale(self, x: torch.Tensor, ctx: Context, k: int) -> torch.Tensor:
        """Run the blocks over scale k's inputs x (2B, l, C) -> hidden states (2B, l, C).

        Appends this scale's keys/values to the KV caches; the queries attend to all cached tokens
        (prefix and scales <= k), with no mask.
        """
        rope = self.rope(ctx, k)
        for blk, mod in zip(self.blocks, ctx.mods):
            x = blk(x, mod, rope, self.max_len)
        return x

    def logits(self, h: torch.Tensor, ctx: Context) -> torch.Tensor:
        """Hidden states (2B, l, C) -> raw logits (2B, l, V) float32."""
        return self.head(self.head_nm(h, ctx.head_mod)).float()

    def residual_condition(self, h_last: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The diffusion head's condition per token: decoder_norm(h + word_embed(code embedding)).

        h_last (2B, l, C) final hidden states of the last scale; codes (B, l, Cvae) the codebook
        vectors of the sampled (hard) indices, shared by both CFG halves -> (2B, l, C).
        """
        d = self.word_embed(codes.to(self.word_embed.weight.dtype))  # (B, l, C)
        return self.decoder_norm(h_last + torch.cat((d, d)))

    @torch.no_grad()
    def init_random(self, seed: int | None = 0):
        """Random weights with O(1) effect (benchmarks, tiny test models): weights N(0, 1/fan_in),
        small biases, norm weights near 1, level embedding N(0, 0.5^2); real use loads a checkpoint."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None

        def rn(shape, std):
            return torch.randn(shape, generator=g) * std

        for name, p in self.named_parameters():
            if name.endswith("scale_mul_1H11"):
                p.copy_(math.log(4.0) + rn(p.shape, 0.1))
            elif p.ndim == 1 and (name.endswith("norm.weight") or name.endswith("ln_wo_grad.weight")
                                  or name.endswith("in_ln.weight")):
                p.copy_(1 + rn(p.shape, 0.2))
            elif name.startswith("lvl_embed") or name == "context_embed.bias":
                p.copy_(rn(p.shape, 0.5))
            elif p.ndim == 1:
                p.copy_(rn(p.shape, 0.02))
            else:
                p.copy_(rn(p.shape, 1.0 / math.sqrt(p.shape[-1])))
        return self


def fields_from_state_dict(sd: dict) -> dict:
    """Architecture fields readable off a HART state dict (to check llm/config.json against the file)."""
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.")}
    out = dict(
        depth=1 + max(blocks) if blocks else 0,
        embed_dim=sd["word_embed.weight"].shape[0],
        latent_channels=sd["word_embed.weight"].shape[1],
        context_dim=sd["context_embed.weight"].shape[1],
        vocab_size=sd["head.weight"].shape[0],
        attn_type="llama" if "blocks.0.attn.qkv_proj.weight" in sd else "gpt2",
        mlp_type="llama" if "blocks.0.ffn.gate_proj.weight" in sd else "gpt2",
        attn_l2_norm="blocks.0.attn.scale_mul_1H11" in sd,
        use_context_norm="context_norm.weight" in sd,
    )
    if "lvl_embed.weight" in sd:
        out["num_scales"] = sd["lvl_embed.weight"].shape[0]
    if out["attn_l2_norm"]:
        out["num_heads"] = sd["blocks.0.attn.scale_mul_1H11"].shape[1]
    return out

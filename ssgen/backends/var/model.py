"""The VAR transformer (Tian et al. 2024, FoundationVision/VAR), inference only.

A clean re-implementation whose module and parameter names equal the official ones, so that the
released `var_d*.pth` files load with `load_state_dict(strict=True)` once the training-only
buffers listed in `IGNORED_KEYS_VAR` are dropped.

Notation: B images, 2B rows (conditional rows [0, B), unconditional rows [B, 2B)), C width,
H heads (head dim is always 64 in the released models), V codebook size, Cvae latent channels,
K scales with side lengths `patch_nums`, L = sum(pn**2) tokens in all.

Inference protocol (driven by the generic next-scale loop):

    model.reset_cache()                     # before every new batch of images
    cond = model.cond_embed(labels)         # (2B, C)
    x = model.first_input(cond)             # (2B, 1, C)            input of scale 0
    for k in range(K):
        logits = model.forward_scale(x, cond)   # (2B, pn_k**2, V) float32, appends to the KV caches
        ... CFG, sampling, VAE update -> next_map (B, Cvae, pn_{k+1}, pn_{k+1}) ...
        x = model.next_input(next_map, k + 1)   # (2B, pn_{k+1}**2, C)  input of scale k+1

Loading: build on any device (also `torch.device("meta")`), then
`load_state_dict(sd, strict=True, assign=True)` with the ignored keys removed from `sd`, then
`.eval()`. Nothing else has to be called: the model has no buffers, and everything derived (the
scale id of a token, the K-bias of zeros, ...) is computed at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError
from ...hardware import cpu_has_amx
from ..common import KVCache
from ..onednn import Linear, linear, prepack_linears

# Training-only buffers stored in the official checkpoints (fnmatch patterns over state-dict keys):
#   lvl_1L                    (1, L) int64   scale id of every token      -> derived from patch_nums
#   attn_bias_for_masking     (1, 1, L, L)   0/-inf block-causal mask     -> inference uses KV caches
#   blocks.*.attn.zero_k_bias (C,)           zeros, the K part of the qkv bias -> built at run time
IGNORED_KEYS_VAR: tuple[str, ...] = ("lvl_1L", "attn_bias_for_masking", "blocks.*.attn.zero_k_bias")

HEAD_DIM = 64
MAX_SCALE_MUL = math.log(100.0)  # clamp of the learned log attention scale (official: ln 100)


@dataclass
class VARConfig:
    depth: int = 16
    width: int | None = None  # default depth*64 (head_dim is always 64 upstream)
    heads: int | None = None  # default depth
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    vocab_size: int = 4096
    latent_channels: int = 32
    num_classes: int = 1000
    shared_aln: bool = False
    attn_l2_norm: bool = True
    norm_eps: float = 1e-6

    def __post_init__(self):
        if self.width is None:
            self.width = self.depth * HEAD_DIM
        if self.heads is None:
            self.heads = self.depth
        self.patch_nums = tuple(int(p) for p in self.patch_nums)
        if self.width % self.heads:
            raise ConfigError(f"VAR width {self.width} is not divisible by heads {self.heads}")

    @classmethod
    def from_dict(cls, d: dict) -> "VARConfig":
        """Build from a dict (e.g. a goldens `model.json` or a config's `model:` section); unknown keys
        (family, vae_ch, resolution, ...) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def num_tokens(self) -> int:
        return sum(p * p for p in self.patch_nums)


def fields_from_state_dict(sd: dict) -> dict:
    """Architecture fields that can be read off a VAR state dict (to check a config against a file).

    Returns depth, width, heads (only readable with attn_l2_norm; else width // 64), vocab_size,
    latent_channels, num_classes, shared_aln, attn_l2_norm, num_tokens (= sum of pn**2) and num_scales.
    """
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    width = sd["pos_start"].shape[-1]
    l2 = "blocks.0.attn.scale_mul_1H11" in sd
    return dict(
        depth=depth,
        width=width,
        heads=sd["blocks.0.attn.scale_mul_1H11"].shape[1] if l2 else width // HEAD_DIM,
        vocab_size=sd["head.weight"].shape[0],
        latent_channels=sd["word_embed.weight"].shape[1],
        num_classes=sd["class_emb.weight"].shape[0] - 1,
        shared_aln="shared_ada_lin.1.weight" in sd,
        attn_l2_norm=l2,
        num_tokens=sd["pos_1LC"].shape[1],
        num_scales=sd["lvl_embed.weight"].shape[0],
    )


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v without a mask: q (B, H, l, d), k/v (B, H, n, d) -> (B, H, l, d).

    SDPA (what upstream runs), except for bf16/fp16 on AMX CPUs: there PyTorch's fused CPU kernel
    was 2.5-3x slower than two low-precision matmuls around a softmax (which accumulates in fp32
    internally). Without AMX it is the other way round (bf16, VAR-d16's last scale on a 2-core
    AVX512-BF16 Xeon: SDPA 24 ms, matmuls 45 ms), so SDPA. The matmul path rounds the scores to bf16
    once more; on the tiny golden the bf16 model's logit error is the same either way (0.7% mean relative).
    """
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16) and cpu_has_amx():
        s = torch.matmul(q, k.transpose(-2, -1))  # (B, H, l, n)
        if scale != 1.0:
            s.mul_(scale)
        return torch.matmul(s.softmax(-1), v)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and a KV cache (inference only).

    Parameters as upstream: mat_qkv (no bias of its own), q_bias, v_bias (the K bias is zero),
    scale_mul_1H11 (only with attn_l2_norm), proj.
    """

    def __init__(self, width: int, heads: int, l2_norm: bool):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.l2_norm = l2_norm
        self.mat_qkv = Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        if l2_norm:  # cosine attention with a learned per-head temperature
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), math.log(4.0)))
            self.scale = 1.0
        else:  # old checkpoints
            self.scale = 0.25 / math.sqrt(self.head_dim)
        self.proj = Linear(width, width)
        self.cache = KVCache()

    def reset_cache(self, release: bool = False):
        self.cache.reset(release)

    def forward(self, x: torch.Tensor, max_len: int) -> torch.Tensor:
        B, L, C = x.shape  # (2B, l, C)
        H, hd = self.heads, self.head_dim
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))  # (3C,)
        qkv = linear(self.mat_qkv, x, bias)  # (2B, l, 3C)
        q, k, v = qkv.view(B, L, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # each (2B, H, l, hd)
        if self.l2_norm:
            scale_mul = self.scale_mul_1H11.float().clamp_max(MAX_SCALE_MUL).exp().to(q.dtype)  # (1, H, 1, 1)
            q = F.normalize(q, dim=-1).mul_(scale_mul)
            k = F.normalize(k, dim=-1)

        k, v = self.cache.append(k, v, max_len)  # (2B, H, n, hd): every scale so far (no mask)
        out = attention(q, k, v, self.scale)  # (2B, H, l, hd)
        out = out.transpose(1, 2).reshape(B, L, C)  # (2B, l, C)
        return self.proj(out)


class FFN(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = Linear(width, hidden)
        self.fc2 = Linear(hidden, width)

    def forward(self, x):
        # GELU in place: the same kernel and bits as F.gelu, without a second (R, l, 4C) tensor. At batch 16 the
        # late scales' hidden is 128 MB in fp32, and a fresh one per block cost more than the GELU itself
        # (page faults of a new mapping, memory traffic): the large-batch loss scripts/bench.py --profile-ops shows
        h = self.fc1(x)  # (R, l, 4C)
        return self.fc2(torch.ops.aten.gelu_(h, approximate="tanh"))


class AdaLNSelfAttn(nn.Module):
    """Pre-norm transformer block with adaptive LayerNorm (no affine LN; scale/shift/gate from cond).

    Modulation order (as upstream): gamma1, gamma2, scale1, scale2, shift1, shift2.
    """

    def __init__(self, cfg: VARConfig):
        super().__init__()
        C = cfg.width
        self.width, self.eps = C, cfg.norm_eps
        self.shared_aln = cfg.shared_aln
        self.attn = SelfAttention(C, cfg.heads, cfg.attn_l2_norm)
        self.ffn = FFN(C, 4 * C)
        if cfg.shared_aln:  # per-block offset added to the shared projection of cond
            self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, C))
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 6 * C))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """cond (2B, C), or (2B, 1, 6, C) from shared_ada_lin -> 6 tensors (2B, 1, C);
        the two scales are returned as (1 + scale)."""
        if self.shared_aln:
            g1, g2, s1, s2, b1, b2 = (self.ada_gss + cond).unbind(2)  # (2B, 1, 6, C) -> 6 x (2B, 1, C)
        else:
            g1, g2, s1, s2, b1, b2 = self.ada_lin(cond).view(-1, 1, 6, self.width).unbind(2)
        return g1, g2, s1.add(1), s2.add(1), b1, b2

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, ...], max_len: int) -> torch.Tensor:
        g1, g2, s1, s2, b1, b2 = mod  # each (2B, 1, C)
        C = self.width
        h = F.layer_norm(x, (C,), eps=self.eps).mul_(s1).add_(b1)  # (2B, l, C)
        x = x + self.attn(h, max_len).mul_(g1)
        h = F.layer_norm(x, (C,), eps=self.eps).mul_(s2).add_(b2)
        x = x + self.ffn(h).mul_(g2)
        return x


class AdaLNBeforeHead(nn.Module):
    def __init__(self, cfg: VARConfig):
        super().__init__()
        self.width, self.eps = cfg.width, cfg.norm_eps
        self.ada_lin = nn.Sequential(nn.SiLU(), Linear(cfg.width, 2 * cfg.width))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, self.width).unbind(2)  # order: scale, shift
        return scale.add(1), shift  # (2B, 1, C) each

    def forward(self, x: torch.Tensor, mod: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        s, b = mod
        return F.layer_norm(x, (self.width,), eps=self.eps).mul_(s).add_(b)


class VAR(nn.Module):
    """Class-conditional next-scale prediction transformer (state-dict compatible with upstream)."""

    def __init__(self, cfg: VARConfig):
        super().__init__()
        self.cfg = cfg
        C, K = cfg.width, len(cfg.patch_nums)
        self.patch_nums = cfg.patch_nums
        self.num_classes = cfg.num_classes
        self.L = cfg.num_tokens
        self.first_l = cfg.patch_nums[0] ** 2
        self.begin_ends: list[tuple[int, int]] = []  # token range of each scale in the full sequence
        cur = 0
        for pn in cfg.patch_nums:
            self.begin_ends.append((cur, cur + pn * pn))
            cur += pn * pn

        self.word_embed = Linear(cfg.latent_channels, C)  # VAE latent -> token
        self.class_emb = nn.Embedding(cfg.num_classes + 1, C)  # last row: the null class
        self.pos_start = nn.Parameter(torch.zeros(1, self.first_l, C))
        self.pos_1LC = nn.Parameter(torch.zeros(1, self.L, C))
        self.lvl_embed = nn.Embedding(K, C)
        if cfg.shared_aln:
            self.shared_ada_lin = nn.Sequential(nn.SiLU(), Linear(C, 6 * C))
        self.blocks = nn.ModuleList(AdaLNSelfAttn(cfg) for _ in range(cfg.depth))
        self.head_nm = AdaLNBeforeHead(cfg)
        self.head = Linear(C, cfg.vocab_size)
        self.reset_cache()

    # ------------------------------------------------------------------------------------- state
    def reset_cache(self, release: bool = False):
        """Forget the KV caches and the cached AdaLN modulations; call before every new batch.

        The cache buffers are kept for reuse by a batch of the same size; `release=True` frees them.
        """
        for b in self.blocks:
            b.attn.reset_cache(release)
        self._cond = None  # the cond tensor whose modulations are cached (checked by identity)
        self._mods = None

    def _modulations(self, cond_BD: torch.Tensor):
        # cond is the same for all scales of an image: project it through the AdaLN linears once
        # (they are a third of the weights) and reuse the result until reset_cache() or a new cond.
        if self._cond is not cond_BD:
            c = cond_BD
            if self.cfg.shared_aln:
                c = self.shared_ada_lin(cond_BD).view(-1, 1, 6, self.cfg.width)  # (2B, 1, 6, C)
            self._mods = ([b.modulation(c) for b in self.blocks], self.head_nm.modulation(cond_BD))
            self._cond = cond_BD
        return self._mods

    def prepack_cpu(self) -> bool:
        """On the CPU: every Linear computes from a oneDNN-prepacked weight (ssgen/backends/onednn.py; VAR-d16
        fp32 on 2 Xeon cores: 0.95x the time of an image). The plain weights are released: the model
        generates but cannot be saved or moved. Returns whether all are packed."""
        return prepack_linears(self)

    # --------------------------------------------------------------------------------- inference
    def cond_embed(self, labels: torch.Tensor) -> torch.Tensor:
        """labels (B,) int64 -> cond (2B, C): rows [0, B) the classes, rows [B, 2B) the null class."""
        labels = labels.to(self.class_emb.weight.device)
        return self.class_emb(torch.cat((labels, torch.full_like(labels, self.num_classes))))

    def lvl_pos(self, k: int) -> torch.Tensor:
        """Level + position embedding of scale k: (1, pn_k**2, C)."""
        b, e = self.begin_ends[k]
        return self.lvl_embed.weight[k] + self.pos_1LC[:, b:e]

    def first_input(self, cond_BD: torch.Tensor) -> torch.Tensor:
        """Input of scale 0: class embedding (the 'sos') + pos_start + level/position -> (2B, first_l, C)."""
        return (cond_BD[:, None] + self.pos_start) + self.lvl_pos(0)

    def next_input(self, next_map: torch.Tensor, k: int) -> torch.Tensor:
        """next_map (B, Cvae, pn_k, pn_k), the VAE's downsampled f_hat -> input of scale k (2B, pn_k**2, C),
        the same rows for the conditional and unconditional halves."""
        B, Cv = next_map.shape[:2]
        x = next_map.reshape(B, Cv, -1).transpose(1, 2).to(self.word_embed.weight.dtype)  # (B, l, Cvae)
        x = self.word_embed(x) + self.lvl_pos(k)  # (B, l, C)
        return x.repeat(2, 1, 1)  # (2B, l, C)

    def forward_scale(self, x: torch.Tensor, cond_BD: torch.Tensor) -> torch.Tensor:
        """Run one scale: x (2B, l, C), cond (2B, C) -> raw logits (2B, l, V) in float32.

        Appends this scale's keys/values to the KV caches; the queries attend to all cached tokens
        (scales <= k), which is what the block-causal training mask allows.
        """
        mods, head_mod = self._modulations(cond_BD)
        for blk, mod in zip(self.blocks, mods):
            x = blk(x, mod, self.L)
        return self.head(self.head_nm(x, head_mod)).float()

    @torch.no_grad()
    def init_random(self, std: float = 0.02, seed: int | None = None):
        """Random weights with O(1) effect (for benchmarks and smoke tests; real use loads a checkpoint)."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        for name, p in self.named_parameters():
            if name.endswith("scale_mul_1H11"):
                p.fill_(math.log(4.0))
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)
        return self

"""VAR's multi-scale VQVAE (FoundationVision/VAR `vae_ch160v4096z32.pth`), generation part only.

Parameter names equal the official ones for everything generation uses: the codebook
`quantize.embedding`, the residual convs `quantize.quant_resi.qresi_ls.{i}` (the "phi" of the paper),
`post_quant_conv` and `decoder.*`. The encoder side (`encoder.*`, `quant_conv.*`: image -> tokens, for
editing) is encoder.py's, loaded from the same file only when an edit needs it (see `IGNORED_KEYS_VAE`).

Latent bookkeeping of one image batch (B images, K scales, f_hat on the last scale's grid):

    f_hat = torch.zeros(B, Cvae, pn_last, pn_last)
    for k, pn in enumerate(patch_nums):
        h = vae.embed(idx_k)                                  # (B, pn*pn, Cvae)
        h = h.transpose(1, 2).reshape(B, Cvae, pn, pn)
        f_hat = vae.add_scale(f_hat, h, k, K)
        if k < K - 1: next_map = vae.next_map(f_hat, patch_nums[k + 1])
    image = vae.decode(f_hat)                                 # (B, 3, 16*pn_last, 16*pn_last) in [0, 1]

Loading: build on any device (also meta), `load_state_dict(sd, strict=True, assign=True)` with the
ignored keys dropped, `.eval()`. Nothing else to call. In bf16 the convolutions run in bf16; f_hat
keeps the dtype the caller gave it (float32 recommended: it is a sum over K scales).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError

# Keys of the official VQVAE checkpoint that generation does not use (fnmatch patterns):
#   encoder.*                 the image -> latent encoder (editing loads it lazily: encoder.py)
#   quant_conv.*              the conv between encoder and quantizer (same)
#   quantize.ema_vocab_hit_SV (K, V) training statistic of codebook usage (a buffer)
IGNORED_KEYS_VAE: tuple[str, ...] = ("encoder.*", "quant_conv.*", "quantize.ema_vocab_hit_SV")


@dataclass
class VQVAEConfig:
    vocab_size: int = 4096
    latent_channels: int = 32
    ch: int = 160
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    share_quant_resi: int = 4
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)

    def __post_init__(self):
        self.ch_mult = tuple(int(m) for m in self.ch_mult)
        self.patch_nums = tuple(int(p) for p in self.patch_nums)
        if self.ch % 32:
            raise ConfigError(f"VQVAE ch={self.ch} must be a multiple of 32 (GroupNorm with 32 groups)")
        if self.share_quant_resi < 2:
            raise NotImplementedError("only partially shared phi (share_quant_resi >= 2) is implemented")

    @classmethod
    def from_dict(cls, d: dict) -> "VQVAEConfig":
        """Build from a dict; `vae_ch` is read as `ch`, unknown keys are ignored."""
        d = dict(d)
        if "vae_ch" in d:
            d.setdefault("ch", d["vae_ch"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def phi_index(k: int, num_scales: int, n_phi: int = 4) -> int:
    """Which of the n_phi shared convs scale k uses: the tick nearest to k/(K-1).

    Computed in float64 exactly like upstream (numpy linspace + argmin): for K=10 and 4 convs this
    gives [0,0,1,1,1,2,2,3,3,3]; scales 2 and 7 are exact ties that float64 rounding breaks.
    """
    if n_phi == 4:
        ticks = np.linspace(1 / 3 / n_phi, 1 - 1 / 3 / n_phi, n_phi)
    else:
        ticks = np.linspace(1 / 2 / n_phi, 1 - 1 / 2 / n_phi, n_phi)
    at = k / (num_scales - 1) if num_scales > 1 else 0.0
    return int(np.argmin(np.abs(ticks - at)))


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H, W)
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = self.conv2(F.silu(self.norm2(h), inplace=True))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return h.add_(skip)


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with one fused 1x1 qkv conv."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = _norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):  # (B, C, H, W)
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)  # each (B, C, HW)
        w = torch.bmm(q.transpose(1, 2), k).mul_(C**-0.5).softmax(dim=-1)  # (B, HW_q, HW_k)
        h = torch.bmm(v, w.transpose(1, 2)).view(B, C, H, W)  # (B, C, HW_q) -> (B, C, H, W)
        return self.proj_out(h).add_(x)


class Upsample2x(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Decoder(nn.Module):
    """Latent (B, Cvae, h, w) -> image (B, 3, h*2**(n-1), w*2**(n-1)) in about [-1, 1].

    Levels run from the coarsest (index n-1, with attention after every block) to the finest (0).
    """

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        n = len(cfg.ch_mult)
        c = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, c, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(c, c)
        self.mid.attn_1 = AttnBlock(c)
        self.mid.block_2 = ResnetBlock(c, c)
        ups = []
        for lvl in reversed(range(n)):
            up = nn.Module()
            cout = cfg.ch * cfg.ch_mult[lvl]
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResnetBlock(c, cout))
                c = cout
            up.block = nn.ModuleList(blocks)
            up.attn = nn.ModuleList(AttnBlock(c) for _ in blocks) if lvl == n - 1 else nn.ModuleList()
            if lvl != 0:
                up.upsample = Upsample2x(c)
            ups.insert(0, up)  # up[lvl]
        self.up = nn.ModuleList(ups)
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for lvl in reversed(range(len(self.up))):
            up = self.up[lvl]
            for j, blk in enumerate(up.block):
                h = blk(h)
                if len(up.attn):
                    h = up.attn[j](h)
            if lvl != 0:
                h = up.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))


class Phi(nn.Conv2d):
    """phi(h) = 0.5*h + 0.5*conv3x3(h): the residual refinement of an upsampled code map."""

    def __init__(self, c: int):
        super().__init__(c, c, 3, padding=1)

    def forward(self, h):
        return h.mul(0.5) + super().forward(h).mul_(0.5)


class PhiPartiallyShared(nn.Module):
    def __init__(self, c: int, n: int):
        super().__init__()
        self.qresi_ls = nn.ModuleList(Phi(c) for _ in range(n))


class Quantizer(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.latent_channels)  # (V, Cvae)
        self.quant_resi = PhiPartiallyShared(cfg.latent_channels, cfg.share_quant_resi)


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.quantize = Quantizer(cfg)
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 3, padding=1)
        self.decoder = Decoder(cfg)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.cfg.ch_mult) - 1)

    def phi_index(self, k: int, num_scales: int) -> int:
        return phi_index(k, num_scales, len(self.quantize.quant_resi.qresi_ls))

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Codebook lookup: idx (B, l) int64 -> (B, l, Cvae) in the codebook's dtype."""
        return F.embedding(idx, self.quantize.embedding.weight)

    def embed_soft(self, probs: torch.Tensor) -> torch.Tensor:
        """Soft lookup: probs (B, l, V) -> probs @ codebook (B, l, Cvae), computed in probs' dtype."""
        return probs @ self.quantize.embedding.weight.to(probs.dtype)

    def add_scale(self, f_hat: torch.Tensor, h_BChw: torch.Tensor, k: int, num_scales: int) -> torch.Tensor:
        """f_hat (B, Cvae, H, W) + phi_k(upsampled h (B, Cvae, pn, pn)) -> new f_hat (same dtype as f_hat).

        Below the last scale h is upsampled bicubically (align_corners=False) to (H, W) before phi;
        the last scale is already on the full grid.
        """
        phi = self.quantize.quant_resi.qresi_ls[self.phi_index(k, num_scales)]
        h = h_BChw.to(phi.weight.dtype)
        if k != num_scales - 1:
            h = F.interpolate(h, size=f_hat.shape[-2:], mode="bicubic", align_corners=False)
        return f_hat + phi(h).to(f_hat.dtype)

    def next_map(self, f_hat: torch.Tensor, pn_next: int) -> torch.Tensor:
        """Area-downsample f_hat to the next scale's grid: (B, Cvae, pn_next, pn_next)."""
        return F.interpolate(f_hat, size=(pn_next, pn_next), mode="area")

    def channels_last(self) -> "VQVAE":
        """Store the decoder's convolutions channels-last (NHWC); `decode` feeds them NHWC inputs. Convolution
        kernels run faster on that layout: the 256 px decode (394 GFLOP) took 0.83x the time on a 2-core
        Xeon, fp32. Called once the weights are loaded (loading assigns contiguous NCHW tensors)."""
        self.post_quant_conv.to(memory_format=torch.channels_last)
        self.decoder.to(memory_format=torch.channels_last)
        return self

    def decode(self, f_hat: torch.Tensor) -> torch.Tensor:
        """f_hat (B, Cvae, h, w) -> image (B, 3, 16h, 16w) float32 in [0, 1]."""
        z = f_hat.to(self.post_quant_conv.weight.dtype).contiguous(memory_format=torch.channels_last)
        z = self.post_quant_conv(z)
        x = self.decoder(z).clamp(-1, 1)
        return x.float().add(1).mul(0.5)

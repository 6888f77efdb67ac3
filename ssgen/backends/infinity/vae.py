"""Infinity's BSQ visual tokenizer (`bsq_vae`), generation part only: bits -> codes and the decoder.

Binary spherical quantisation: a latent vector of d channels is l2-normalised and each channel is
quantised to its sign, so a token is d bits and bit i = 1 stands for latent channel i = +1/sqrt(d),
bit 0 for -1/sqrt(d). Multi-scale: the codes of every scale are upsampled (trilinear on (1, h, w),
i.e. bilinear) to the final grid and summed; the next scale's transformer input is the running sum
resized to that scale's grid.

    latent = 0
    for k, (h, w) in enumerate(vae_schedule):            # 8B: the transformer grid doubled
        codes = bits_to_codes(bits_k)                     # (B, d, 1, h, w)
        latent = latent + upsample(codes) if k < K-1 else latent + codes
        next_map = resize(latent, vae_schedule[k + 1])    # -> transformer input of scale k+1
    image = vae.decode(latent)                            # (B, 3, 16*H, 16*W) in [0, 1]

The decoder is the Flux-style conv decoder of `flux_vqgan.py` with upstream's parameter names
(`decoder.conv_in.conv.weight`, `...norm1.norm.weight`, ...), so `{'vae': state_dict}` files load
once the encoder and quantizer keys (`IGNORED_KEYS_VAE`) are dropped. Its size is read off the
checkpoint (`VAEConfig.from_state_dict`); the released VAEs: base_ch 128, 2 res blocks; d32 "reg"
(Infinity-2B) patch 16, ch_mult [1,2,4,4,4]; d56 = 14 bits f8 (Infinity-8B) patch 8, ch_mult [1,2,4,4].

Spatial patchify (8B): the transformer's token is a 2x2 patch of 14-bit latents (56 bits); bits are
pixel-shuffled to the VAE grid before coding, and the running sum pixel-unshuffled back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# Keys of the official VAE checkpoint that generation does not use (fnmatch patterns):
#   encoder.*     the image -> latent encoder (encoder.py reads it on the first edit)
#   quantizer.*   the BSQ quantizer's buffers (lfq.mask: bit weights for integer labels)
#   quantize.*    the same module under a second name
IGNORED_KEYS_VAE: tuple[str, ...] = ("encoder.*", "quantizer.*", "quantize.*")


@dataclass
class VAEConfig:
    codebook_dim: int = 32
    base_ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4, 4)
    num_res_blocks: int = 2

    def __post_init__(self):
        self.ch_mult = tuple(int(m) for m in self.ch_mult)

    @property
    def patch_size(self) -> int:
        """Pixels per latent cell: one nearest x2 upsample per level but the finest."""
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_state_dict(cls, sd: dict) -> "VAEConfig":
        """Read the decoder's size off its (unwrapped) state dict."""
        d = sd["decoder.conv_in.conv.weight"].shape[1]
        base = sd["decoder.conv_out.conv.weight"].shape[1]  # channels of level 0
        levels = sorted({int(k.split(".")[2]) for k in sd if k.startswith("decoder.up.")})
        mult = [sd[f"decoder.up.{i}.block.0.conv1.conv.weight"].shape[0] // base for i in levels]
        blocks = {int(k.split(".")[4]) for k in sd if k.startswith("decoder.up.0.block.")}
        return cls(codebook_dim=d, base_ch=base, ch_mult=tuple(mult), num_res_blocks=len(blocks) - 1)


class Conv(nn.Module):
    """Upstream wraps nn.Conv2d as `.conv` (keys `....conv.weight`). Stride 2 (the encoder's downsampling) has
    no padding: its caller pads right and bottom only, as upstream."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride == 1 else 0)

    def forward(self, x):
        return self.conv(x)


class Normalize(nn.Module):
    """GroupNorm(32 groups, or 24 when 32 does not divide the channels), wrapped as `.norm`."""

    def __init__(self, c: int):
        super().__init__()
        groups = 32 if c % 32 == 0 else 24
        self.norm = nn.GroupNorm(groups, c, eps=1e-6, affine=True)

    def forward(self, x):
        return self.norm(x)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = Normalize(cin)
        self.conv1 = Conv(cin, cout, 3)
        self.norm2 = Normalize(cout)
        self.conv2 = Conv(cout, cout, 3)
        self.nin_shortcut = Conv(cin, cout, 1) if cin != cout else None

    def forward(self, x):  # (B, cin, H, W) -> (B, cout, H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = Conv(c, c, 3)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Decoder(nn.Module):
    """Latent (B, d, h, w) -> image (B, 3, h*p, w*p) in about [-1, 1] (no attention: cnn_attention 'no').

    Levels run from the coarsest (index n-1) to the finest (0); every level but 0 ends with a x2 upsample.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        n = len(cfg.ch_mult)
        c = cfg.base_ch * cfg.ch_mult[-1]
        self.conv_in = Conv(cfg.codebook_dim, c, 3)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(c, c)
        self.mid.block_2 = ResnetBlock(c, c)
        ups = []
        for lvl in reversed(range(n)):
            up = nn.Module()
            cout = cfg.base_ch * cfg.ch_mult[lvl]
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResnetBlock(c, cout))
                c = cout
            up.block = nn.ModuleList(blocks)
            if lvl != 0:
                up.upsample = Upsample(c)
            ups.insert(0, up)  # up[lvl]
        self.up = nn.ModuleList(ups)
        self.norm_out = Normalize(c)
        self.conv_out = Conv(c, 3, 3)

    def forward(self, z):
        h = self.mid.block_2(self.mid.block_1(self.conv_in(z)))
        for lvl in reversed(range(len(self.up))):
            for blk in self.up[lvl].block:
                h = blk(h)
            if lvl != 0:
                h = self.up[lvl].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class BSQVAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.decoder = Decoder(cfg)

    @property
    def codebook_dim(self) -> int:
        return self.cfg.codebook_dim

    def bits_to_codes(self, bits: torch.Tensor) -> torch.Tensor:
        """bits (B, h, w, d) integers 0/1 -> codes (B, d, 1, h, w) float32, +-1/sqrt(d) l2-normalised.

        Computed as upstream (`bits * 2s - s`, then l2norm, which is ~1 but not exactly 1 in float32),
        so the running latent matches it bit for bit.
        """
        s = 1 / math.sqrt(bits.shape[-1])
        codes = F.normalize(bits.long() * s * 2 - s, dim=-1)  # (B, h, w, d)
        return codes.permute(0, 3, 1, 2).unsqueeze(2)  # (B, d, 1, h, w)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, d, H, W) -> image (B, 3, p*H, p*W) float32 in [0, 1]."""
        w = self.decoder.conv_in.conv.weight
        x = self.decoder(latent.to(w.dtype)).clamp(-1, 1)
        return x.float().add(1).div(2)


def upsample_to(codes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, d, 1, h, w) -> (B, d, 1, H, W): upstream's trilinear resize (align_corners=False) of the
    (t=1, h, w) volume; used both to upsample codes and to resize the running sum to the next scale."""
    return F.interpolate(codes, size=(1, *hw), mode="trilinear")


def unpatchify_bits(bits: torch.Tensor) -> torch.Tensor:
    """8B: (B, h, w, 4d) bits of 2x2 patches -> (B, 2h, 2w, d) (pixel shuffle, as upstream)."""
    return F.pixel_shuffle(bits.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)


def patchify(latent: torch.Tensor) -> torch.Tensor:
    """8B: (B, d, 2h, 2w) -> (B, 4d, h, w) (pixel unshuffle, as upstream)."""
    return F.pixel_unshuffle(latent, 2)

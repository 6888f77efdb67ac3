"""VAR's VQVAE encoder side: image -> latent -> per-scale token maps (upstream `VQVAE.img_to_idxBl`).

Only editing needs it, so it is a module of its own, loaded on the first edit from the same VAE file
(`vae_ch160v4096z32.pth` holds both sides). Its parameter names are the file's: `encoder.*` and
`quant_conv.*`, so the file's keys under those prefixes load with a plain strict `load_state_dict`.

The multi-scale residual quantizer (`f_to_idxBl`), with the codebook and phi convs of the decoder
side (vae.py), as upstream's `VectorQuantizer2.f_to_idxBl_or_fhat`:

    f = quant_conv(encoder(img))                   # (B, Cvae, P, P), P = the last scale's grid
    f_rest, f_hat = f, 0
    for k, pn in enumerate(patch_nums):
        z = area-downsample(f_rest, pn)            # the last scale: f_rest as is
        idx_k = argmin_v |z - e_v|^2               # (B, pn*pn): nearest codebook entry
        d = phi_k(bicubic-upsample(e[idx_k], P))   # what decoding this scale adds
        f_hat += d; f_rest -= d

so decoding the tokens scale by scale (vae.add_scale) rebuilds f_hat.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...checkpoint import empty_model, load_into, read_state_dict
from ...errors import WeightsError
from ..common import per_image
from .vae import VQVAE, AttnBlock, ResnetBlock, VQVAEConfig, _norm

# The VAE file's keys this module reads (fnmatch patterns); generation drops them (IGNORED_KEYS_VAE).
ENCODER_KEYS: tuple[str, ...] = ("encoder.*", "quant_conv.*")


class Downsample2x(nn.Module):
    """Stride-2 3x3 conv after zero-padding right and bottom by one: (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Encoder(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> latent (B, Cvae, H/2**(n-1), W/2**(n-1)).

    Levels run from the finest (0) to the coarsest (n-1, with attention after every block); each level
    but the last halves the grid. The mirror of vae.Decoder, with num_res_blocks blocks per level.
    """

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        n = len(cfg.ch_mult)
        c = cfg.ch
        self.conv_in = nn.Conv2d(3, c, 3, padding=1)
        downs = []
        for lvl in range(n):
            down = nn.Module()
            cout = cfg.ch * cfg.ch_mult[lvl]
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(c, cout))
                c = cout
            down.block = nn.ModuleList(blocks)
            down.attn = nn.ModuleList(AttnBlock(c) for _ in blocks) if lvl == n - 1 else nn.ModuleList()
            if lvl != n - 1:
                down.downsample = Downsample2x(c)
            downs.append(down)
        self.down = nn.ModuleList(downs)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(c, c)
        self.mid.attn_1 = AttnBlock(c)
        self.mid.block_2 = ResnetBlock(c, c)
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, cfg.latent_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lvl, down in enumerate(self.down):
            for j, blk in enumerate(down.block):
                h = blk(h)
                if len(down.attn):
                    h = down.attn[j](h)
            if lvl != len(self.down) - 1:
                h = down.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))


class VQEncoder(nn.Module):
    """`encoder` + `quant_conv` of the official VQVAE (its state-dict keys are the file's)."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 3, padding=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img (B, 3, H, W) in [-1, 1] -> f (B, Cvae, H/16, W/16) in the weights' dtype."""
        return self.quant_conv(self.encoder(img.to(self.quant_conv.weight.dtype)))


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """z (N, C), codebook (V, C) -> (N,) int64: the entry nearest in L2.

    Upstream's exact arithmetic (|z|^2 + |e|^2, then addmm with -2 z e^T) and torch.argmin's tie rule
    (the first minimum), so that near-ties break as upstream's do."""
    d = torch.sum(z.square(), dim=1, keepdim=True) + torch.sum(codebook.square(), dim=1, keepdim=False)  # (N, V)
    d.addmm_(z, codebook.T, alpha=-2, beta=1)
    return torch.argmin(d, dim=1)


def f_to_idxBl(vae: VQVAE, f: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Quantize latent f (B, Cvae, P, P) over vae's scales -> (tokens, f_hat).

    tokens: one (B, pn*pn) int64 per scale; f_hat (B, Cvae, P, P) float32, what decoding them adds up to.
    Computed in float32 (the distances would lose their order in bf16); the phi convs run in their dtype.
    """
    B, C, H, W = f.shape
    pns = vae.cfg.patch_nums
    K = len(pns)
    if pns[-1] != H or pns[-1] != W:
        raise ValueError(f"latent grid {H}x{W} is not the last scale's {pns[-1]}x{pns[-1]}")
    codebook = vae.quantize.embedding.weight.float()  # (V, C)
    f_rest = f.float().clone()
    f_hat = torch.zeros_like(f_rest)
    tokens = []
    for k, pn in enumerate(pns):
        z = f_rest if k == K - 1 else F.interpolate(f_rest, size=(pn, pn), mode="area")  # (B, C, pn, pn)
        idx = nearest_code(z.permute(0, 2, 3, 1).reshape(-1, C), codebook)  # (B*pn*pn,)
        # As upstream (memory layouts included: kernels may round differently on them): (B, pn, pn, C)
        # viewed as (B, C, pn, pn), upsampled bicubically (all scales but the last), made contiguous, phi.
        h = F.embedding(idx.view(B, pn, pn), codebook).permute(0, 3, 1, 2)
        if k != K - 1:
            h = F.interpolate(h, size=(H, W), mode="bicubic", align_corners=False)
        phi = vae.quantize.quant_resi.qresi_ls[vae.phi_index(k, K)]
        d = phi(h.contiguous().to(phi.weight.dtype)).to(f_hat.dtype)  # (B, C, H, W)
        f_hat.add_(d)
        f_rest.sub_(d)
        tokens.append(idx.reshape(B, pn * pn))
    return tokens, f_hat


def img_to_idxBl(enc: VQEncoder, vae: VQVAE, img: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """img (B, 3, 16P, 16P) in [-1, 1] -> (tokens per scale (B, pn*pn) int64, f_hat (B, Cvae, P, P) float32)."""
    return f_to_idxBl(vae, enc(img))


def encode_images(enc: VQEncoder, vae: VQVAE, x: torch.Tensor, size: tuple[int, int],
                  num_scales: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """x (B, 3, H, W) float32 in [-1, 1], (H, W) = `size` -> (tokens, recon): per scale the input's (B, pn*pn) int64
    codes (upstream's img_to_idxBl) and (B, 3, H, W) float32 in [0, 1], their decoding. Image by image, as the
    decoder runs, so an image's tokens do not depend on its batch (VAR, and Switti on VAR's VQVAE)."""
    if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(f"encode takes (B, 3, {size[0]}, {size[1]}) images, got {tuple(x.shape)}")
    per = [img_to_idxBl(enc, vae, x[i:i + 1].contiguous()) for i in range(x.shape[0])]
    tokens = [torch.cat([t[k] for t, _ in per]) for k in range(num_scales)]  # each (B, pn*pn)
    f_hat = torch.cat([f for _, f in per])  # (B, Cvae, P, P) float32
    return tokens, per_image(vae.decode, f_hat).float()


def load_encoder(path: str | Path, cfg: VQVAEConfig, dtype: torch.dtype, device: torch.device) -> VQEncoder:
    """Read `encoder.*` and `quant_conv.*` from the VAE file (memory-mapped: the decoder's tensors stay on disk)
    into a VQEncoder on `device`, every tensor cast to `dtype`. Strict: a key missing or of another shape is a
    WeightsError naming it."""
    sd = read_state_dict(path, "vae")
    sd = {k: v for k, v in sd.items() if any(fnmatch.fnmatchcase(k, p) for p in ENCODER_KEYS)}
    with empty_model():
        enc = VQEncoder(cfg)
    missing = [k for k in enc.state_dict() if k not in sd]
    if missing:
        shown = ", ".join(missing[:4]) + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")
        raise WeightsError(f"VAE checkpoint {path} has no encoder weights (a decoder-only file?): {len(missing)} "
                           f"key(s) missing: {shown}; editing needs the full VAE file (the official "
                           "vae_ch160v4096z32.pth holds both sides)")
    load_into(enc, sd, "vae", path, dtype=dtype, device=device)
    return enc.eval()

"""Infinity's BSQ encoder side: image -> per-scale bits on the transformer grid, for editing.

No official release edits with Infinity: editing is ssgen's own. What is official is how training turns
an image into the bits the transformer learns to predict (the ground truth of every scale), and that
is what this module reproduces: `vae.encode_for_raw_features` (the conv encoder, float32) followed by
`BitwiseSelfCorrection.flip_requant` with its noise off (upstream's `infinity/utils` and
`models/bsq_vae`), a multi-scale residual loop over the VAE's latent grid:

    f = encoder(image)                                   # (B, d, 1, H, W): the raw features, float32
    cum = 0
    for k, (h, w) in enumerate(vae_schedule):            # 8B: the transformer grid doubled
        r = f - cum                                      # what the scales so far have not explained
        r = area-downsample(r, (1, h, w))                # the last scale: r as is
        x = l2norm(r over d)                             # BSQ: the sphere ...
        q = x + (sign(x) / sqrt(d) - x)                  # ... and its nearest corner, as upstream computes it
        bits_k = q > 0                                   # (B, h, w, d)
        cum = cum + trilinear-upsample(q, (1, H, W))

The bits are then laid out as the generation loop samples them (`InfinityBackend.categories` views the
(B, h*w, 2d) logits as (B, h*w*d, 2): index p*d + j is bit j of grid position p, row-major), and, with
spatial patchify (8B), first pixel-unshuffled 2x2 to the transformer grid (d = 4 x 14 = 56), the exact
inverse of `advance`'s pixel shuffle. The reconstruction is decoded from those bits through the same
sums `advance` makes (vae.bits_to_codes, upsample, add), so an edit that keeps every token ends on
exactly this latent and image. (Upstream's residual loop adds `x + (sign - x)`, which is within an ulp
of the codes decoding uses; the bits are what counts, and they are upstream's.)

Weights: the `encoder.*` keys of the same VAE file (`infinity_vae_d32reg.pth` / the 8B's), read only
on the first edit (`InfinityFamily.encoder()`), checked strictly (a file without them, or with other
shapes, is a WeightsError naming the keys). The encoder runs in float32 whatever the run's dtype, as
upstream's (`encoder_dtype='fp32'`, quantisation forced to float32): a bit is a sign, and bf16 features
would flip the bits of near-zero residuals.

Reference: tests/data/infinity_edit (upstream's training labels of two images on the goldens' tiny VAE; equal).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...checkpoint import empty_model, load_into, read_state_dict, unwrap
from ...errors import WeightsError
from .vae import BSQVAE, Conv, Normalize, ResnetBlock, VAEConfig, patchify, upsample_to

ENCODER_KEYS = "encoder."  # the VAE file's keys this module reads


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then a stride-2 3x3 conv: (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = Conv(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Encoder(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> raw features (B, d, H/p, W/p) (no attention: cnn_attention 'no').

    Levels run from the finest (0) to the coarsest (n-1), num_res_blocks blocks each; every level but the
    last halves the grid (p = 2**(n-1), the decoder's patch size). Upstream's parameter names.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        n = len(cfg.ch_mult)
        c = cfg.base_ch
        self.conv_in = Conv(3, c, 3)
        downs = []
        for lvl in range(n):
            down = nn.Module()
            cout = cfg.base_ch * cfg.ch_mult[lvl]
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(c, cout))
                c = cout
            down.block = nn.ModuleList(blocks)
            if lvl != n - 1:
                down.downsample = Downsample(c)
            downs.append(down)
        self.down = nn.ModuleList(downs)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(c, c)
        self.mid.block_2 = ResnetBlock(c, c)
        self.norm_out = Normalize(c)
        self.conv_out = Conv(c, cfg.codebook_dim, 3)

    def forward(self, x):
        h = self.conv_in(x)
        for down in self.down:
            for blk in down.block:
                h = blk(h)
            if hasattr(down, "downsample"):
                h = down.downsample(h)
        h = self.mid.block_2(self.mid.block_1(h))
        return self.conv_out(F.silu(self.norm_out(h)))


class BSQEncoder(nn.Module):
    """The VAE file's encoder under its own key names (`encoder.*`), so the file's entries load as they are."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> raw features (B, d, H/p, W/p) float32."""
        w = self.encoder.conv_in.conv.weight
        return self.encoder(x.to(w.dtype)).float()


def load_encoder(path: str | Path, cfg: VAEConfig, device: torch.device) -> BSQEncoder:
    """Read only the `encoder.*` entries of the VAE file at `path` into a float32 BSQEncoder on `device`.

    Strict: every key the encoder needs must be there with its shape (WeightsError naming what is not);
    the decoder and quantizer entries are not read (the file is memory-mapped). Its weights are plain tensors
    without gradients even when the first edit runs under inference_mode (they outlive it)."""
    sd = unwrap(read_state_dict(path, "vae"), "vae")
    enc = {k: v for k, v in sd.items() if k.startswith(ENCODER_KEYS)}
    del sd
    if not enc:
        raise WeightsError(f"VAE checkpoint {path} has no encoder weights (encoder.*), which editing needs; "
                           "use the full official VAE file as weights.vae")
    with torch.inference_mode(False):
        with empty_model():
            model = BSQEncoder(cfg)
        load_into(model, enc, "vae encoder", path, dtype=torch.float32, device=device)
    return model.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------------
# multi-scale bitwise quantisation (upstream's flip_requant without noise)
# ------------------------------------------------------------------------------------------------


def bsq(residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One BSQ step: residual (B, d, 1, h, w) -> (quantized (B, d, 1, h, w), bits (B, h, w, d) int64).

    As upstream's `BSQ.forward` with new_quant: l2-normalise each position's d channels (on the same
    channels-last view upstream's `pack` makes, so the norm is summed in upstream's order), snap to the
    corner sign/sqrt(d) through `x + (corner - x)`, bit = the corner's sign (a zero residual gives bit 0)."""
    B, d, t, h, w = residual.shape
    x = F.normalize(residual.permute(0, 2, 3, 4, 1).reshape(B, t * h * w, d), dim=-1)  # (B, h*w, d), a view
    s = 1.0 / d**0.5
    corner = torch.where(x > 0, torch.ones_like(x), -torch.ones_like(x)) * s
    q = x + (corner - x)
    # contiguous, as the loop's sampled bits are: the codes' memory layout picks the upsampling kernel's rounding
    bits = (q > 0).long().reshape(B, h, w, d).contiguous()
    return q.view(B, t, h, w, d).permute(0, 4, 1, 2, 3), bits


def multiscale_bits(features: torch.Tensor, vae_grid: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Raw features (B, d, H, W) float32 -> per scale the bits (B, h, w, d) int64 on the VAE grid
    (`vae_grid[-1]` must be (H, W)): upstream's ground-truth loop (module docstring)."""
    f = features.float().unsqueeze(2)  # (B, d, 1, H, W)
    full = (1, *vae_grid[-1])
    K = len(vae_grid)
    cum: torch.Tensor | float = 0.0
    out = []
    for k, (h, w) in enumerate(vae_grid):
        r = f - cum
        if k != K - 1:
            r = F.interpolate(r, size=(1, h, w), mode="area")
        q, bits = bsq(r)
        out.append(bits)
        if k != K - 1:  # the last scale's sum is never used
            cum = cum + F.interpolate(q, size=full, mode="trilinear")
    return out


def to_sampled(bits: torch.Tensor, spatial_patchify: bool) -> torch.Tensor:
    """VAE-grid bits (B, h', w', d_vae) -> the loop's sampled layout (B, h*w*d) int64 on the transformer grid:
    what `categories` + `advance` read back (8B: pixel-unshuffled 2x2 first, d = 4 d_vae, as upstream's
    training labels)."""
    B = bits.shape[0]
    if spatial_patchify:
        bits = patchify(bits.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, h, w, 4 d_vae)
    return bits.reshape(B, -1).long()


def latent_from_bits(vae: BSQVAE, vbits: list[torch.Tensor], vae_grid: list[tuple[int, int]]) -> torch.Tensor:
    """Per-scale VAE-grid bits (B, h', w', d) -> the latent (B, d, H', W') they decode to, summed in the order and
    with the operations of `InfinityBackend.advance` (so generation that keeps every bit ends on this latent)."""
    B, d = vbits[0].shape[0], vbits[0].shape[-1]
    summed = torch.zeros(B, d, 1, *vae_grid[-1], device=vbits[0].device)  # (B, d, 1, H', W')
    for k, bits in enumerate(vbits):
        codes = vae.bits_to_codes(bits)  # (B, d, 1, h', w')
        summed += upsample_to(codes, vae_grid[-1]) if k < len(vbits) - 1 else codes
    return summed.squeeze(2)


def encode_image(encoder: BSQEncoder, vae: BSQVAE, x: torch.Tensor, vae_grid: list[tuple[int, int]],
                 spatial_patchify: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
    """x (B, 3, H, W) in [-1, 1] -> (per scale the bits in the sampled layout (B, h*w*d) int64, the latent
    (B, d_vae, H/p, W/p) those bits decode to)."""
    with torch.no_grad():
        vbits = multiscale_bits(encoder.features(x), vae_grid)
        latent = latent_from_bits(vae, vbits, vae_grid)
    return [to_sampled(b, spatial_patchify) for b in vbits], latent

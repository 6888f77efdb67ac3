"""A tiny random-weight VAR in the official checkpoint formats (`torch.save(state_dict)` with the
official key names and the training-only buffers the released files carry), with its YAML config.
Made with ssgen's own modules; the images are noise. `python -m ssgen.tiny var OUT_DIR`."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml


def var_training_buffers(sd: dict, patch_nums: tuple[int, ...], depth: int, width: int) -> dict:
    """Add the buffers the official VAR files carry (lvl_1L, attn_bias_for_masking, zero_k_bias)."""
    lvl = torch.cat([torch.full((pn * pn,), i) for i, pn in enumerate(patch_nums)]).view(1, -1)  # (1, L)
    mask = torch.where(lvl.view(-1, 1) >= lvl.view(1, -1), 0.0, float("-inf")).view(1, 1, lvl.shape[1], -1)
    sd = dict(sd, lvl_1L=lvl, attn_bias_for_masking=mask)
    for i in range(depth):
        sd[f"blocks.{i}.attn.zero_k_bias"] = torch.zeros(width)
    return sd


def encoder_weights(cfg, seed: int) -> dict:
    """Random weights of the VAE's encoder side (`encoder.*`, `quant_conv.*`, as the official files carry),
    drawn from a generator of their own (the global RNG is not touched): convs N(0, 1/fan_in), biases 0,
    GroupNorms the identity."""
    from ...checkpoint import empty_model
    from .encoder import VQEncoder

    with empty_model():
        enc = VQEncoder(cfg)
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, t in enc.state_dict().items():
        if ".norm" in name:  # GroupNorm: norm1, norm2, norm, norm_out
            sd[name] = torch.ones(t.shape) if name.endswith("weight") else torch.zeros(t.shape)
        elif name.endswith("bias"):
            sd[name] = torch.zeros(t.shape)
        else:  # a conv kernel (cout, cin, kh, kw)
            fan_in = t.shape[1] * t.shape[2] * t.shape[3]
            sd[name] = torch.randn(t.shape, generator=g) / fan_in**0.5
    return sd


def make_tiny_var(out_dir: str | Path, seed: int = 0, patch_nums: tuple[int, ...] = (1, 2, 3, 4),
                  depth: int = 2, width: int = 128, heads: int = 2, vae_ch: int = 32,
                  name: str = "var-tiny") -> Path:
    """Write transformer.pth, vae.pth and NAME.yaml into `out_dir`; return the YAML path."""
    from .model import VAR, VARConfig
    from .vae import VQVAE, VQVAEConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    vcfg = VARConfig(depth=depth, width=width, heads=heads, patch_nums=patch_nums)
    var = VAR(vcfg).init_random(std=0.3 / width**0.5 * 4, seed=seed)
    vae = VQVAE(VQVAEConfig(ch=vae_ch, patch_nums=patch_nums))
    with torch.no_grad():
        vae.quantize.embedding.weight.normal_(0, 1.0)
    sd = var_training_buffers(var.state_dict(), patch_nums, depth, vcfg.width)
    torch.save(sd, out / "transformer.pth")
    vsd = dict(vae.state_dict(), **{"quantize.ema_vocab_hit_SV": torch.zeros(len(patch_nums), 4096)})
    vsd.update(encoder_weights(vae.cfg, seed))  # last: the decoder side above is drawn as before
    torch.save(vsd, out / "vae.pth")
    cfg = {
        "name": name, "family": "var", "description": "tiny random-weight VAR (noise images; for tests and demos)",
        "weights": {"transformer": {"path": "transformer.pth"}, "vae": {"path": "vae.pth"}},
        "model": {"depth": depth, "width": width, "heads": heads, "patch_nums": list(patch_nums),
                  "shared_aln": False, "attn_l2_norm": True, "vae_ch": vae_ch},
        "defaults": {"cfg": 4.0, "top_k": 900, "top_p": 0.95, "more_smooth": False},
        "ssg": {"enabled": True, "beta": 0.5, "scales": [2, -1], "prior": "dse", "interp": "bilinear", "rescale": True},
    }
    p = out / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p
